"""openstack-heat configuration: defaults, and every incoherent combination reported with its path in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError
from alertscaler.providers.base import ProviderContext
from alertscaler.providers.openstack.heat.provider import HeatConfig, create

AUTH = "{auth_type: none, endpoint_override: {orchestration: 'http://127.0.0.1:8004/v1/admin'}}"


def _policy(provider: str) -> str:
    return ("server: {auth: {insecure_no_auth: true}}\ngroups:\n  g:\n"
            f"    provider: {{type: openstack-heat, auth: {AUTH}, {provider}}}\n    min_size: 1\n    max_size: 3\n")


def _problems(provider: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(_policy(provider))
    return {p.path: p.message for p in info.value.problems}


def test_minimal_group_gets_the_seed_defaults() -> None:
    config = load_policy(_policy("stack: web")).groups["g"].provider
    assert isinstance(config, HeatConfig)
    assert (config.stack, config.group_resource, config.scale_out_policy, config.scale_in_policy) == (
        "web", "asg", "scaleup_policy", "scaledown_policy")
    assert (config.mode, config.capacity_parameter, config.stack_from_labels) == ("signal", None, False)
    assert (config.stack_id_label, config.stack_name_label, config.project_label) == (
        "tenant_stack_id", "tenant_stack_name", "tenant_project_id")
    assert (config.poll_interval, config.decline_after, config.timeout) == (1.0, 10.0, 300.0)
    assert config.auth.endpoint_override == {"orchestration": "http://127.0.0.1:8004/v1/admin"}


def test_label_addressed_group_with_an_allowlist_loads() -> None:
    config = load_policy(_policy("stack_from_labels: true, allowed_projects: [p1], allowed_stacks: [web], "
                                 "mode: capacity, capacity_parameter: desired_capacity, poll_interval: 250ms"))
    provider = config.groups["g"].provider
    assert provider.allowlist.projects == frozenset({"p1"}) and provider.allowlist.stacks == frozenset({"web"})
    assert provider.poll_interval == 0.25 and provider.stack is None


@pytest.mark.parametrize(
    ("provider", "path", "fragment"),
    [
        ("mode: capacity, stack: web", "capacity_parameter", "required with mode: capacity"),
        ("mode: scale", "mode", "'signal' or 'capacity'"),
        ("group_resource: asg", "stack", "required unless stack_from_labels is true"),
        ("stack_from_labels: true", "allowed_stacks", "needs an allowlist"),
        ("stack: web, allowed_projects: [p1]", "allowed_projects", "only used with stack_from_labels: true"),
        ("stack: web, allowed_stacks: [web]", "allowed_stacks", "only used with stack_from_labels: true"),
        ("stack_from_labels: true, allowed_stacks: ['']", "allowed_stacks[0]", "at least 1 character"),
        ("stack: web, scale_in_policy: scaleup_policy", "scale_in_policy", "must differ from scale_out_policy"),
        ("stack: web, stack_id_label: tenant-stack", "stack_id_label", "not a Prometheus label name"),
        ("stack: web, project_label: tenant_stack_id", "project_label", "must differ from stack_id_label"),
        ("stack: web, stack_name_label: tenant_stack_id", "stack_name_label", "must differ from stack_id_label"),
        ("stack: web, poll_interval: 0s", "poll_interval", "longer than 0s"),
        ("stack: web, decline_after: soon", "decline_after", "must be a duration like 60s"),
        ("stack: web, decline_after: 30s, timeout: 20s", "timeout", "at least decline_after (30s)"),
        ("stack: web, poll_interval: 2m, timeout: 1m", "timeout", "at least poll_interval (2m)"),
        ("stack: web, polices: x", "polices", "unknown key"),
        ("stack: ''", "stack", "at least 1 character"),
    ],
    ids=["capacity-without-parameter", "unknown-mode", "no-stack", "labels-without-allowlist",
         "allowed-projects-without-labels", "allowed-stacks-without-labels", "empty-allowlist-entry",
         "same-policies", "bad-label-name", "duplicate-label-project", "duplicate-label-name", "zero-poll",
         "bad-duration", "timeout-below-decline", "timeout-below-poll", "unknown-key", "empty-stack"],
)
def test_problems_have_paths(provider: str, path: str, fragment: str) -> None:
    problems = _problems(provider)
    assert fragment in problems.get(f"groups.g.provider.{path}", ""), problems


def test_auth_problems_are_reported_under_auth() -> None:
    text = _policy("stack: web").replace(AUTH, "{auth_type: none}")
    with pytest.raises(ConfigError) as info:
        load_policy(text)
    problems = {p.path: p.message for p in info.value.problems}
    assert "endpoint_override" in problems["groups.g.provider.auth"], problems


@pytest.mark.parametrize(
    ("provider", "idempotent"),
    [("stack: web", False), ("stack: web, mode: capacity, capacity_parameter: desired_capacity", True),
     ("stack: web, capacity_parameter: desired_capacity", False)],
    ids=["signal", "capacity", "signal-with-exact-parameter"],
)
def test_idempotent_only_in_capacity_mode(provider: str, idempotent: bool, tmp_path: Path) -> None:
    config = load_policy(_policy(provider)).groups["g"].provider
    heat = create(config, ProviderContext("g", tmp_path))
    try:
        assert heat.idempotent is idempotent
    finally:
        heat.close()


def test_label_addressed_status_without_a_stack_is_unknown_without_calling_heat(tmp_path: Path) -> None:
    # The endpoint is a closed port: any call would raise TemporaryProviderError.
    config = HeatConfig.model_validate({
        "type": "openstack-heat", "stack_from_labels": True, "allowed_projects": ["p1"],
        "auth": {"auth_type": "none", "endpoint_override": {"orchestration": "http://127.0.0.1:9/v1/admin"}}})
    heat = create(config, ProviderContext("g", tmp_path))
    try:
        status = heat.status()
    finally:
        heat.close()
    assert status.current is None
    assert "no stack acted on yet" in status.detail
