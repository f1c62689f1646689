"""``examples/openstack-heat``: seed 000's Heat autoscaling setup translated to alertscaler.

The example's policy file must load; the committed ``generated/`` files must be exactly what ``alertscaler
render`` writes for it today (so they never go stale); and the HOT templates must have what the policy and the
generated scrape job refer to: the group resource, the two scaling policies, the capacity parameter, the
bounds, and on each server exactly the metadata keys Prometheus relabels.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertscaler.confgen import render_all
from alertscaler.config import PolicyFile, load_policy_file
from alertscaler.providers.openstack.heat.config import HeatConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "openstack-heat"
POLICY = EXAMPLE / "alertscaler.yml"
GENERATED = EXAMPLE / "generated"
TEMPLATES = EXAMPLE / "templates"
SOURCE = "examples/openstack-heat/alertscaler.yml"  # the -c argument, as render's headers name it
REGENERATE = f".venv/bin/alertscaler render -c {SOURCE} --out examples/openstack-heat/generated"
GROUP = "web"
META = "__meta_openstack_tag_"


@pytest.fixture(scope="module")
def policy() -> PolicyFile:
    return load_policy_file(POLICY)


@pytest.fixture(scope="module")
def heat(policy: PolicyFile) -> HeatConfig:
    provider = policy.groups[GROUP].provider
    assert isinstance(provider, HeatConfig)
    return provider


def template(name: str) -> dict[str, Any]:
    data = yaml.safe_load((TEMPLATES / name).read_text())
    assert isinstance(data, dict), name
    return data


def default(tpl: dict[str, Any], parameter: str) -> Any:
    return tpl["parameters"][parameter].get("default")


def test_the_policy_loads_with_one_label_addressed_heat_group(policy: PolicyFile, heat: HeatConfig) -> None:
    assert list(policy.groups) == [GROUP]
    assert heat.stack_from_labels and heat.stack is None
    assert heat.allowed_projects, "stack_from_labels needs an allowlist"
    assert heat.auth.cloud == "mycloud"
    # one mode per group: signal mode, no stack parameter set by alertscaler (the README shows mode: capacity)
    assert heat.mode == "signal" and heat.capacity_parameter is None
    assert policy.scrape.openstack is not None and not policy.scrape.http_sd


def test_generated_files_are_a_fresh_render(policy: PolicyFile) -> None:
    fresh = render_all(policy.render_input(SOURCE))
    committed = sorted(p.relative_to(GENERATED).as_posix() for p in GENERATED.rglob("*") if p.is_file())
    hint = f"examples/openstack-heat/generated is stale: regenerate it from the repository root with\n  {REGENERATE}"
    assert committed == sorted(fresh), hint
    stale = [name for name, text in fresh.items() if (GENERATED / name).read_bytes() != text.encode("utf-8")]
    assert not stale, f"{', '.join(stale)} differ from a fresh render; {hint}"


def test_templates_are_hot_with_parameters_resources_and_outputs() -> None:
    for name in ("server.yaml", "autoscaling.yaml"):
        tpl = template(name)
        assert tpl["heat_template_version"] == datetime.date(2018, 8, 31), name  # YAML reads it as a date
        assert {"parameters", "resources", "outputs"} <= set(tpl), name
    assert "current_size" in template("autoscaling.yaml")["outputs"]


def test_the_policy_names_resources_and_parameters_of_the_template(policy: PolicyFile, heat: HeatConfig) -> None:
    tpl = template("autoscaling.yaml")
    resources = tpl["resources"]
    group = policy.groups[GROUP]
    asg = resources[heat.group_resource]
    assert asg["type"] == "OS::Heat::AutoScalingGroup"
    for name, direction in ((heat.scale_out_policy, group.scale_out), (heat.scale_in_policy, group.scale_in)):
        props = resources[name]["properties"]
        assert resources[name]["type"] == "OS::Heat::ScalingPolicy", name
        assert props["auto_scaling_group_id"] == {"get_resource": heat.group_resource}, name
        assert direction is not None
        # signal mode: Heat's policy sets the step, so alertscaler's must be the same
        assert (props["adjustment_type"], props["scaling_adjustment"]) == (
            direction.adjustment_type.value, direction.adjustment), name
    capacity_parameter = "desired_capacity"  # what the README's mode: capacity variant sets
    assert capacity_parameter in tpl["parameters"]
    assert asg["properties"]["desired_capacity"] == {"get_param": capacity_parameter}
    assert asg["properties"]["min_size"] == {"get_param": "min_size"}
    assert asg["properties"]["max_size"] == {"get_param": "max_size"}
    assert (default(tpl, "min_size"), default(tpl, "max_size"), default(tpl, capacity_parameter)) == (
        group.min_size, group.max_size, group.initial_desired)
    assert default(tpl, "alertscaler_group") == GROUP


def test_the_member_template_gets_exactly_its_parameters() -> None:
    member = template("autoscaling.yaml")["resources"]["asg"]["properties"]["resource"]
    assert (TEMPLATES / member["type"]).is_file()
    assert set(member["properties"]) == set(template("server.yaml")["parameters"])
    assert member["properties"]["stack_id"] == {"get_param": "OS::stack_id"}  # the stack holding the policies


def test_the_environment_sets_every_parameter_without_a_default() -> None:
    env = yaml.safe_load((TEMPLATES / "environment.yaml").read_text())["parameters"]
    params = template("autoscaling.yaml")["parameters"]
    assert set(env) <= set(params)
    assert {name for name, p in params.items() if "default" not in p} <= set(env)


def test_server_metadata_is_exactly_what_the_scrape_job_relabels(policy: PolicyFile, heat: HeatConfig) -> None:
    server = next(r for r in template("server.yaml")["resources"].values() if r["type"] == "OS::Nova::Server")
    metadata: dict[str, Any] = server["properties"]["metadata"]
    prometheus = yaml.safe_load((GENERATED / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if "openstack_sd_configs" in j]
    relabel = job["relabel_configs"]
    read = {s[len(META):] for rule in relabel for s in rule.get("source_labels", []) if s.startswith(META)}
    assert {re.sub(r"[^a-zA-Z0-9_]", "_", key) for key in metadata} == read
    # the ownership tag the job keeps on
    scrape = policy.scrape.openstack
    assert scrape is not None
    assert re.fullmatch(scrape.tag_value, metadata[scrape.tag_key])
    # the labels the provider reads from alerts are made from this metadata
    targets = {rule["target_label"] for rule in relabel if "target_label" in rule}
    assert set(heat.carried_labels()) <= targets
    assert "alertscaler_group" in targets


def test_no_secrets_in_the_example() -> None:
    token = (EXAMPLE / "token").read_text().strip()
    assert token.startswith("REPLACE-ME"), "the shipped token must stay an obvious placeholder"
    for path in (p for p in EXAMPLE.rglob("*") if p.is_file() and p.name != "token"):
        text = path.read_text()
        assert token not in text, path
        if path.suffix in (".yml", ".yaml"):  # literal secrets as YAML keys (README shows clouds.yaml's shape)
            assert not re.search(r"^\s*(passwd|password|application_credential_secret)\s*:", text, re.M), path
