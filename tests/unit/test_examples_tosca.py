"""``examples/tosca``: seed 001's xOpera autoscaling (RADON), translated to alertscaler.

The example's policy file must load (with its placeholder token file) and its provider settings must fit its
service template; the committed ``generated/`` files must be exactly what ``alertscaler render`` writes for it
today (so they never go stale); and the generated rules and route must still be seed 001's: InstanceDown,
HighCpuLoad (> 80) and LowCpuLoad (< 20), each for 1 minute, grouped by alert name, 10 s / 10 s / 1 h. That
the service template really deploys, scales and heals with opera is tested in
``tests/integration/test_tosca_provider.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from alertscaler.confgen import render_all
from alertscaler.config import PolicyFile, load_policy_file
from alertscaler.providers import registry
from alertscaler.providers.tosca.provider import ToscaConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "tosca"
POLICY = EXAMPLE / "alertscaler.yml"
GENERATED = EXAMPLE / "generated"
SOURCE = "examples/tosca/alertscaler.yml"  # the -c argument, as render's headers name it
REGENERATE = f".venv/bin/alertscaler render -c {SOURCE} --out examples/tosca/generated"
GROUP = "web"


@pytest.fixture(scope="module")
def policy() -> PolicyFile:
    return load_policy_file(POLICY)


@pytest.fixture(scope="module")
def tosca(policy: PolicyFile) -> ToscaConfig:
    provider = policy.groups[GROUP].provider
    assert isinstance(provider, ToscaConfig)
    return provider


def generated(name: str) -> Any:
    return yaml.safe_load((GENERATED / name).read_text())


def test_the_policy_loads_with_one_tosca_group(policy: PolicyFile, tosca: ToscaConfig) -> None:
    assert list(policy.groups) == [GROUP]
    assert tosca.service_template == str(EXAMPLE / "service" / "service.yaml")
    assert tosca.opera == str(REPO / ".opera-venv" / "bin" / "opera"), "make opera-venv's opera, from the repo"
    assert (tosca.count_input, tosca.members_output, tosca.heal_event, tosca.heal_action) == (
        "instance_count", "members", "instance_down", "reboot")
    assert registry.heal_actions(tosca) == {"reboot"}
    group = policy.groups[GROUP]
    assert (group.min_size, group.max_size, group.initial_desired) == (1, 4, 1)
    assert group.heal is not None and group.heal.action.value == "reboot"
    assert "placeholder" in (EXAMPLE / "token").read_text()
    assert policy.scrape.http_sd, "Prometheus scrapes the members alertscaler lists"


def test_scaling_and_healing_follow_seed_001s_alerts(policy: PolicyFile) -> None:
    group = policy.groups[GROUP]
    assert group.scale_out is not None and group.scale_in is not None and group.heal is not None
    assert 'alertname="HighCpuLoad"' in group.scale_out.matchers and group.scale_out.adjustment == 1
    assert 'alertname="LowCpuLoad"' in group.scale_in.matchers and group.scale_in.adjustment == -1
    assert 'alertname="InstanceDown"' in group.heal.matchers


def test_generated_files_are_a_fresh_render(policy: PolicyFile) -> None:
    fresh = render_all(policy.render_input(SOURCE))
    committed = sorted(p.relative_to(GENERATED).as_posix() for p in GENERATED.rglob("*") if p.is_file())
    hint = f"{GENERATED.relative_to(REPO)} is stale: regenerate it from the repository root with\n  {REGENERATE}"
    assert committed == sorted(fresh), hint
    stale = [name for name, text in fresh.items() if (GENERATED / name).read_bytes() != text.encode("utf-8")]
    assert not stale, f"{', '.join(stale)} differ from a fresh render; {hint}"


def test_the_rules_are_seed_001s() -> None:
    (group,) = generated("rules/alertscaler.rules.yml")["groups"]
    rules = {rule["alert"]: rule for rule in group["rules"]}
    assert sorted(rules) == ["HighCpuLoad", "InstanceDown", "LowCpuLoad"]
    assert all(rule["for"] == "1m" and rule["labels"] == {"alertscaler_group": GROUP} for rule in rules.values())
    assert rules["InstanceDown"]["expr"] == 'up{job="alertscaler", alertscaler_group="web"} == 0'
    assert rules["HighCpuLoad"]["expr"].endswith("* 100 > 80")
    assert rules["LowCpuLoad"]["expr"].endswith("* 100 < 20")


def test_the_route_and_scrape_job_are_seed_001s() -> None:
    route = generated("alertmanager-route.yml")
    text = yaml.safe_dump(route)
    assert "group_wait: 10s" in text and "group_interval: 10s" in text and "repeat_interval: 1h" in text
    prometheus = generated("prometheus.yml")
    assert prometheus["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}
    (job,) = prometheus["scrape_configs"]
    assert job["job_name"] == "alertscaler"
    assert job["http_sd_configs"][0]["url"] == "http://127.0.0.1:8080/api/v1/targets"


def test_the_service_template_declares_what_the_policy_uses(tosca: ToscaConfig) -> None:
    template = yaml.safe_load(Path(tosca.service_template).read_text())
    assert template["tosca_definitions_version"] == "tosca_simple_yaml_1_3"
    topology = template["topology_template"]
    assert set(tosca.inputs) | {tosca.count_input} <= set(topology["inputs"])
    assert topology["node_templates"]["web_host"]["type"] == "tosca.nodes.Compute"
    web = topology["node_templates"]["web"]
    assert web["properties"]["instance_count"] == {"get_input": "instance_count"}
    assert "delete" not in str(template["node_types"]["alertscaler.nodes.WebServers"]["interfaces"]), (
        "opera update deletes and recreates the changed node: the count's node must not stop servers on delete")
