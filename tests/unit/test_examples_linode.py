"""``examples/linode-nodebalancer``: seed 002's Nanodes behind a NodeBalancer, translated to alertscaler.

The example's policy file must load (with its placeholder token files); the committed ``generated/`` files must
be exactly what ``alertscaler render`` writes for it today (so they never go stale); and the generated scrape
job and rules must still be seed 002's: the tag kept, the public IPv6 as the address, the label as
``instance`` (plus the Linode id as ``alertscaler_member``, the provider's member id), the recording rule
``avg_cpu_load5`` and ``HighLoad`` for 5 minutes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from alertscaler.confgen import render_all
from alertscaler.config import PolicyFile, load_policy_file
from alertscaler.providers.linode.config import LinodeConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "linode-nodebalancer"
POLICY = EXAMPLE / "alertscaler.yml"
GENERATED = EXAMPLE / "generated"
SOURCE = "examples/linode-nodebalancer/alertscaler.yml"  # the -c argument, as render's headers name it
REGENERATE = f".venv/bin/alertscaler render -c {SOURCE} --out examples/linode-nodebalancer/generated"
GROUP = "nginx"


@pytest.fixture(scope="module")
def policy() -> PolicyFile:
    return load_policy_file(POLICY)


@pytest.fixture(scope="module")
def linode(policy: PolicyFile) -> LinodeConfig:
    provider = policy.groups[GROUP].provider
    assert isinstance(provider, LinodeConfig)
    return provider


def generated(name: str) -> Any:
    return yaml.safe_load((GENERATED / name).read_text())


def test_the_policy_loads_with_one_linode_group_behind_a_nodebalancer(policy: PolicyFile,
                                                                      linode: LinodeConfig) -> None:
    assert list(policy.groups) == [GROUP]
    assert linode.nodebalancer is not None and linode.nodebalancer.port == 80 and linode.private_ip
    assert linode.group_tag(GROUP) == "autoscale-nginx" and linode.linode_type == "g6-nanode-1"
    assert linode.user_data_text is not None and linode.user_data_text.startswith("#cloud-config\n")
    # the shipped token files are placeholders, said so in their content
    assert "placeholder" in linode.token.get_secret_value()
    assert "placeholder" in (EXAMPLE / "token").read_text()
    scrape = policy.scrape.linode
    assert scrape is not None and not policy.scrape.http_sd
    assert scrape.tag == linode.group_tag(GROUP), "Prometheus scrapes the group's members"
    assert scrape.group == GROUP


def test_generated_files_are_a_fresh_render(policy: PolicyFile) -> None:
    fresh = render_all(policy.render_input(SOURCE))
    committed = sorted(p.relative_to(GENERATED).as_posix() for p in GENERATED.rglob("*") if p.is_file())
    hint = f"{GENERATED.relative_to(REPO)} is stale: regenerate it from the repository root with\n  {REGENERATE}"
    assert committed == sorted(fresh), hint
    stale = [name for name, text in fresh.items() if (GENERATED / name).read_bytes() != text.encode("utf-8")]
    assert not stale, f"{', '.join(stale)} differ from a fresh render; {hint}"


def test_the_scrape_job_is_seed_002s(linode: LinodeConfig) -> None:
    (job,) = generated("prometheus.yml")["scrape_configs"]
    assert job["job_name"] == "linode"
    assert job["linode_sd_configs"] == [{"authorization": {"credentials_file": "/etc/prometheus/linode-token"},
                                         "port": 9100, "refresh_interval": "1m"}]
    keep, address, instance, member, group = job["relabel_configs"]
    assert keep == {"source_labels": ["__meta_linode_tags"], "regex": f".*,{linode.group_tag(GROUP)},.*",
                    "action": "keep"}
    assert address == {"source_labels": ["__meta_linode_public_ipv6"], "regex": "(.+)",
                       "target_label": "__address__", "replacement": "[$1]:9100"}
    assert instance == {"source_labels": ["__meta_linode_instance_label"], "action": "replace",
                        "target_label": "instance"}
    assert member == {"source_labels": ["__meta_linode_instance_id"], "target_label": "alertscaler_member"}
    assert group == {"target_label": "alertscaler_group", "replacement": GROUP}


def test_the_rules_are_seed_002s_and_reach_the_group(policy: PolicyFile) -> None:
    rules = {r.get("record") or r.get("alert"): r
             for g in generated("rules/alertscaler.rules.yml")["groups"] for r in g["rules"]}
    assert set(rules) == {"avg_cpu_load5", "HighLoad", "LowLoad"}
    assert 'node_cpu_seconds_total{job="linode", mode="idle"}' in rules["avg_cpu_load5"]["expr"]
    high = rules["HighLoad"]
    assert high["expr"] == 'avg_cpu_load5{alertscaler_group="nginx"} > 0.7' and high["for"] == "5m"
    assert high["labels"] == {"alertscaler_group": GROUP, "severity": "critical"}
    group = policy.groups[GROUP]
    assert group.scale_out is not None and group.scale_in is not None
    out = {"alertname": "HighLoad", **high["labels"]}
    low = {"alertname": "LowLoad", **rules["LowLoad"]["labels"]}
    assert group.scale_out.matcher_set.matches(out) and not group.scale_out.matcher_set.matches(low)
    assert group.scale_in.matcher_set.matches(low) and not group.scale_in.matcher_set.matches(out)
