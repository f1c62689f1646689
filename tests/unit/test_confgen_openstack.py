"""``render`` for OpenStack groups: seed 000's Prometheus side generated from the policy file.

An ``openstack-heat`` group addressed by alert labels reads the stack identity from its alerts, so the
alert rules routed to it copy those labels from the firing series (seed 000 wrote them by hand in every
rule); the ``openstack_sd_configs`` job turns the servers' metadata into those labels and, for servers the
``openstack-nova`` provider creates, into the ``alertscaler_group`` label. promtool checks the result when
it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertscaler.confgen import render_all, write_files
from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError

POLICY = """
server: {listen: 127.0.0.1:8080, auth: {bearer_token: render-openstack-token}}
groups:
  tenants:
    provider:
      type: openstack-heat
      auth: {auth_type: none, endpoint_override: {orchestration: "http://127.0.0.1:8004/v1/admin"}}
      stack_from_labels: true
      allowed_projects: [f611f36fff8545fb8c5048fff60126ba]
    min_size: 1
    max_size: 3
    scale_out: {matchers: ['alertname="HighBandwidth"', 'alertscaler_group="tenants"'], adjustment: 1}
  workers:
    provider:
      type: openstack-nova
      auth: {auth_type: none, endpoint_override: {compute: "http://127.0.0.1:8774/v2.1"}}
      image: 5b9e2a3c-0000-4000-8000-000000000001
      flavor: m1.small
    min_size: 1
    max_size: 4
    scale_out: {matchers: ['alertname="HighLoad"', 'alertscaler_group="workers"'], adjustment: 1}
rules:
  groups:
    - name: autoscaling
      rules:
        - alert: HighBandwidth   # seed 000, without the hand-written tenant_* labels
          expr: rate(node_network_receive_bytes_total{device="ens3"}[1m]) / 1024 / 1024 > 1.0
          for: 1m
          group: tenants
          labels: {severity: upscale}
        - alert: HighLoad
          expr: avg by (alertscaler_group) (rate(node_cpu_seconds_total{mode!="idle"}[1m])) > 0.8
          group: workers
          carry: [instance]
scrape:
  openstack: {region: RegionOne, port: 9100}
"""


def render(text: str = POLICY) -> dict[str, Any]:
    policy = load_policy(text, source="openstack.yml")
    files = render_all(policy.render_input("openstack.yml"))
    return {name: yaml.safe_load(body) for name, body in files.items()}


def rules_by_name(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (group,) = rendered["rules/alertscaler.rules.yml"]["groups"]
    return {r["alert"]: r for r in group["rules"]}


def test_heat_alert_rules_carry_the_stack_identity_from_the_series() -> None:
    rules = rules_by_name(render())
    assert rules["HighBandwidth"]["labels"] == {
        "alertscaler_group": "tenants", "severity": "upscale",
        "tenant_project_id": "{{ $labels.tenant_project_id }}",
        "tenant_stack_id": "{{ $labels.tenant_stack_id }}",
        "tenant_stack_name": "{{ $labels.tenant_stack_name }}",
    }
    # a group whose provider reads nothing from labels gets only what the rule asks to carry
    assert rules["HighLoad"]["labels"] == {"alertscaler_group": "workers", "instance": "{{ $labels.instance }}"}


def test_custom_label_names_of_the_heat_provider_are_carried() -> None:
    text = POLICY.replace("      stack_from_labels: true\n",
                          "      stack_from_labels: true\n      stack_id_label: heat_stack\n"
                          "      stack_name_label: heat_stack_name\n      project_label: heat_project\n")
    labels = rules_by_name(render(text))["HighBandwidth"]["labels"]
    assert {k for k in labels if k.startswith("heat_")} == {"heat_stack", "heat_stack_name", "heat_project"}
    assert not any(k.startswith("tenant_") for k in labels)


def test_a_stack_addressed_by_configuration_carries_nothing() -> None:
    text = POLICY.replace("      stack_from_labels: true\n      allowed_projects: [f611f36fff8545fb8c5048fff60126ba]\n",
                          "      stack: web\n")
    assert rules_by_name(render(text))["HighBandwidth"]["labels"] == {"alertscaler_group": "tenants",
                                                                      "severity": "upscale"}


def test_openstack_scrape_job_relabels_seed_000_metadata_and_the_group() -> None:
    (job,) = [j for j in render()["prometheus.yml"]["scrape_configs"] if j["job_name"] == "openstack"]
    relabel = job["relabel_configs"]
    assert relabel[0] == {"source_labels": ["__meta_openstack_tag_prometheus_autoscaling"], "regex": "true",
                          "action": "keep"}
    targets = {r["target_label"]: r["source_labels"][0] for r in relabel if "target_label" in r}
    assert targets == {
        "instance": "__meta_openstack_instance_name",
        "openstack_id": "__meta_openstack_instance_id",
        "openstack_status": "__meta_openstack_instance_status",
        "tenant_project_id": "__meta_openstack_tag_project_id",
        "tenant_stack_id": "__meta_openstack_tag_stack_id",
        "tenant_stack_name": "__meta_openstack_tag_stack_name",
        "alertscaler_group": "__meta_openstack_tag_alertscaler_group",  # what openstack-nova servers carry
    }
    (group_rule,) = [r for r in relabel if r.get("target_label") == "alertscaler_group"]
    assert group_rule["regex"] == "(.+)"  # a server without the key keeps no empty group label


def test_a_fixed_group_replaces_the_metadata_relabel() -> None:
    text = POLICY.replace("openstack: {region: RegionOne, port: 9100}",
                          "openstack: {region: RegionOne, port: 9100, group: workers}")
    (job,) = [j for j in render(text)["prometheus.yml"]["scrape_configs"] if j["job_name"] == "openstack"]
    group_rules = [r for r in job["relabel_configs"] if r.get("target_label") == "alertscaler_group"]
    assert group_rules == [{"target_label": "alertscaler_group", "replacement": "workers"}]


def test_carry_and_labels_of_the_same_name_are_refused_with_the_path() -> None:
    text = POLICY.replace("          carry: [instance]", "          carry: [instance]\n          labels: {instance: x}")
    with pytest.raises(ConfigError) as err:
        load_policy(text, source="openstack.yml")
    assert any("rules.groups[0].rules[1]" in p.path and "carry" in str(p) for p in err.value.problems), \
        err.value.problems


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)")
def test_promtool_accepts_the_generated_openstack_side(tmp_path: Path) -> None:
    policy = load_policy(POLICY, source="openstack.yml")
    write_files(tmp_path, render_all(policy.render_input("openstack.yml")))
    for args in (["check", "rules", "rules/alertscaler.rules.yml"], ["check", "config", "prometheus.yml"]):
        result = subprocess.run(["promtool", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
