"""The ``openstack-heat`` provider against a REAL OpenStack Heat 27 (fixture ``heat``), through openstacksdk.

Nothing of Heat is mocked: stacks are created from ``tests/heat/templates/asg.yaml`` and every result is read
back from Heat itself (the group's members, the ``current_size`` output, the policy's events, the stack
parameters, Heat's own log). Covered: status of a new stack; scale out and in by signalling the policies;
Heat's cooldown and min/max turning a signal into ``ProviderDeclined`` (cross-checked with the no-op line Heat
logs under the signal's request id); exact capacity by stack update; label-addressed stacks inside and outside
the allowlist (refused ones are never signalled: no event, no request in Heat's log); missing policy, group,
stack and an invalid capacity as ``PermanentProviderError`` with Heat's message; an unreachable Heat as
``TemporaryProviderError``. Policies use cooldown 0 unless a test needs one; polling every 100 ms.
"""

from __future__ import annotations

import itertools
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alertscaler.model.errors import PermanentProviderError, ProviderDeclined, TemporaryProviderError
from alertscaler.model.groups import MemberState
from alertscaler.providers.base import Provider, ProviderContext, ScaleRequest
from alertscaler.providers.openstack.heat.provider import HeatConfig, HeatProvider
from alertscaler.providers.registry import config_model
from alertscaler.providers.registry import create as registry_create
from tests.integration.heat_fixtures import ASG_TEMPLATE, HeatServer, HeatStack

pytest_plugins = ["tests.integration.heat_fixtures"]

pytestmark = [
    pytest.mark.integration,
    # openstacksdk 4.x warns about its own internals; nothing alertscaler can act on
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]

GROUP = "web"
SIGNAL_BOUND = 20.0  # seconds a one-member change may take here (measured: about 2.5-4 s)
_ids = itertools.count(1000)

Make = Callable[..., HeatProvider]


@pytest.fixture
def make(heat: HeatServer, tmp_path: Path) -> Iterator[Make]:
    """``make(state=..., **provider keys)``: a provider built through the registry, closed after the test."""
    made: list[Provider] = []

    def build(state: str = GROUP, **keys: Any) -> HeatProvider:
        data = {"type": "openstack-heat",
                "auth": {"auth_type": "none", "endpoint_override": {"orchestration": heat.base_url}},
                "poll_interval": "100ms", "decline_after": "2s", "timeout": "60s", **keys}
        config = config_model("openstack-heat").model_validate(data)
        provider = registry_create(config, ProviderContext(group=GROUP, state_dir=tmp_path / state)).inner
        assert isinstance(provider, HeatProvider) and isinstance(config, HeatConfig)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def want(desired: int, *, exact: bool = False, alerts: list[dict[str, Any]] | None = None) -> ScaleRequest:
    action = next(_ids)
    return ScaleRequest(group=GROUP, from_capacity=0, desired=desired, action_id=action, decision_id=action,
                        alerts=alerts or [], exact=exact)


def labelled(stack: HeatStack, project: str | None = "admin") -> list[dict[str, Any]]:
    """An alert as seed 000's Prometheus relabelling makes it (labels from the instance's tags)."""
    labels = {"alertname": "HighNetwork", "tenant_stack_id": stack.id, "tenant_stack_name": stack.name}
    if project is not None:
        labels["tenant_project_id"] = project
    return [{"status": "firing", "labels": labels, "annotations": {}, "fingerprint": "a1b2c3"}]


def signal_events(stack: HeatStack, policy: str = "scaleup_policy") -> list[dict[str, Any]]:
    return stack.events(resource_name=policy, resource_action="SIGNAL")


def signal_requests(heat: HeatServer, stack_id: str) -> list[str]:
    """Request ids of the signal POSTs Heat's API logged for a stack."""
    lines = heat.log_lines("Processing request: POST", f"{stack_id}/resources/", "/signal")
    return [m.group(0) for line in lines if (m := re.search(r"req-[0-9a-f-]{36}", line))]


def timed(call: Callable[[], str]) -> tuple[str, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# -- status ---------------------------------------------------------------------------------------------------


def test_status_of_a_new_stack(heat_stack: HeatStack, make: Make) -> None:
    status = make(stack=heat_stack.name).status()
    assert status.current == 1 == heat_stack.current_size()
    (member,) = status.members
    (heat_member,) = heat_stack.members()
    assert member.id == heat_member["physical_resource_id"] and member.state is MemberState.RUNNING
    assert member.labels["stack_name"] == heat_stack.name and member.labels["stack_id"] == heat_stack.id
    assert member.labels["resource_name"] == heat_member["resource_name"]
    assert member.created_at is not None
    assert f"stack {heat_stack.name}/{heat_stack.id} CREATE_COMPLETE" in status.detail
    by_id = make(stack=heat_stack.id)
    assert [m.id for m in by_id.members()] == [member.id]


# -- signals --------------------------------------------------------------------------------------------------


def test_signal_scales_out_then_in(heat_stacks: Callable[..., HeatStack], make: Make,
                                   record_property: Callable[[str, object], None]) -> None:
    stack = heat_stacks({"cooldown": 0})
    provider = make(stack=stack.name)
    assert provider.idempotent is False
    out = want(2)
    result, took_out = timed(lambda: provider.scale(out))
    assert result == f"signalled scaleup_policy of stack {stack.name}/{stack.id}: asg 1 -> 2"
    assert stack.current_size() == 2 and len(stack.members()) == 2
    (event,) = signal_events(stack)  # Heat recorded our signal, with our action id, and nothing else
    assert event["resource_status"] == "SIGNAL_COMPLETE"
    assert f"alertscaler group {GROUP} action {out.action_id}:" in event["resource_status_reason"]
    assert provider.status().current == 2

    result, took_in = timed(lambda: provider.scale(want(1)))
    assert result == f"signalled scaledown_policy of stack {stack.name}/{stack.id}: asg 2 -> 1"
    assert stack.current_size() == 1 and provider.status().current == 1
    assert len(signal_events(stack, "scaledown_policy")) == 1
    record_property("signal_out_seconds", round(took_out, 2))
    record_property("signal_in_seconds", round(took_in, 2))
    assert took_out < SIGNAL_BOUND and took_in < SIGNAL_BOUND


def test_nothing_to_do_makes_no_call(heat: HeatServer, heat_stack: HeatStack, make: Make) -> None:
    result = make(stack=heat_stack.name).scale(want(1))
    assert result == f"stack {heat_stack.name}/{heat_stack.id}: asg already has 1 member(s); nothing to do"
    assert signal_requests(heat, heat_stack.id) == []


def test_exact_size_in_signal_mode_without_a_parameter_is_refused(heat: HeatServer, heat_stack: HeatStack,
                                                                   make: Make) -> None:
    """Heat's policies decide each step in signal mode: an exact size cannot be reached by signalling."""
    with pytest.raises(PermanentProviderError, match="needs a stack parameter to set"):
        make(stack=heat_stack.name).scale(want(3, exact=True))
    assert signal_requests(heat, heat_stack.id) == []
    assert heat_stack.current_size() == 1


def test_second_signal_inside_heats_cooldown_is_declined(heat: HeatServer, heat_stacks: Callable[..., HeatStack],
                                                         make: Make) -> None:
    stack = heat_stacks({"cooldown": 60})
    provider = make(stack=stack.name)
    provider.scale(want(2))
    with pytest.raises(ProviderDeclined) as info:
        provider.scale(want(3))
    message = str(info.value)
    assert f"Heat did not act on scaleup_policy of stack {stack.name}/{stack.id}" in message
    assert "asg is in Heat's cooldown until" in message and "last scaling: change_in_capacity : 1" in message
    assert "asg stays at 2" in message and info.value.current == 2
    assert stack.current_size() == 2 and len(signal_events(stack)) == 1
    # Heat did receive the second signal and declined it for the cooldown: its log says so under the request
    # id the message points to
    _first, second = signal_requests(heat, stack.id)
    assert message.endswith(f"its engine log has the reason under request {second})")
    assert heat.log_lines(second, "Can not perform scaling action: resource asg is in cooldown (60)")


@pytest.mark.parametrize(
    ("parameters", "desired", "policy", "reason"),
    [({"max_size": 1, "cooldown": 0}, 2, "scaleup_policy", "asg is at its max_size 1"),
     ({"cooldown": 0}, 0, "scaledown_policy", "asg is at its min_size 1")],
    ids=["at-max-size", "at-min-size"],
)
def test_signal_at_a_size_limit_is_declined(heat: HeatServer, heat_stacks: Callable[..., HeatStack], make: Make,
                                            parameters: dict[str, int], desired: int, policy: str,
                                            reason: str) -> None:
    stack = heat_stacks(parameters)
    with pytest.raises(ProviderDeclined) as info:
        make(stack=stack.name).scale(want(desired))
    assert f"Heat did not act on {policy} of stack {stack.name}/{stack.id}: {reason}; asg stays at 1" in str(info.value)
    assert info.value.current == 1 and stack.current_size() == 1
    assert signal_events(stack, policy) == []
    (signal,) = signal_requests(heat, stack.id)
    assert f"under request {signal})" in str(info.value)
    assert heat.log_lines(signal, "asg NOT performing scaling adjustment, as there is no change in capacity")


def test_signal_heat_drops_is_declined_without_a_reason(heat: HeatServer, heat_stacks: Callable[..., HeatStack],
                                                        make: Make) -> None:
    # Heat 27 (this standalone one at least) fails a policy signal after two stack updates of the group: the
    # engine logs "Property min_size not assigned", records nothing, and the group stays as it is. The
    # provider must not report success, and must point at the log line.
    stack = heat_stacks({"cooldown": 0})
    provider = make(stack=stack.name, capacity_parameter="desired_capacity")
    provider.scale(want(3, exact=True))
    provider.scale(want(1, exact=True))
    with pytest.raises(ProviderDeclined) as info:
        provider.scale(want(2))
    assert "neither a size limit nor a cooldown explains it; asg stays at 1" in str(info.value)
    assert info.value.current == 1 and stack.current_size() == 1
    (signal,) = signal_requests(heat, stack.id)
    assert f"under request {signal})" in str(info.value)
    assert heat.log_lines(signal, "Property min_size not assigned")


# -- exact capacity -------------------------------------------------------------------------------------------


def _parameter(heat: HeatServer, stack: HeatStack, name: str) -> str:
    value: str = heat.get_json(stack.url, resolve_outputs="false")["stack"]["parameters"][name]
    return value


def test_exact_capacity_by_stack_update(heat: HeatServer, heat_stack: HeatStack, make: Make,
                                        record_property: Callable[[str, object], None]) -> None:
    provider = make(stack=heat_stack.name, capacity_parameter="desired_capacity")
    result, took = timed(lambda: provider.scale(want(3, exact=True)))
    assert result == (f"updated stack {heat_stack.name}/{heat_stack.id} parameter desired_capacity 1 -> 3: "
                      "asg 1 -> 3")
    assert heat_stack.current_size() == 3 and _parameter(heat, heat_stack, "desired_capacity") == "3"
    assert signal_requests(heat, heat_stack.id) == []  # no policy was signalled
    record_property("update_1_to_3_seconds", round(took, 2))

    converging = make(state="capacity", stack=heat_stack.id, mode="capacity", capacity_parameter="desired_capacity")
    assert converging.idempotent is True
    assert converging.scale(want(2)).endswith("parameter desired_capacity 3 -> 2: asg 3 -> 2")
    updated = heat.get_json(heat_stack.url, resolve_outputs="false")["stack"]["updated_time"]
    assert converging.scale(want(2)).endswith("asg already has 2 member(s); nothing to do")
    assert heat.get_json(heat_stack.url, resolve_outputs="false")["stack"]["updated_time"] == updated
    assert heat_stack.current_size() == 2


def test_exact_capacity_after_a_signal_moved_the_group(heat: HeatServer, heat_stacks: Callable[..., HeatStack],
                                                       make: Make) -> None:
    # The parameter still says 1 while a signal made the group 2: Heat resizes on every stack update anyway.
    stack = heat_stacks({"cooldown": 0})
    provider = make(stack=stack.name, capacity_parameter="desired_capacity")
    provider.scale(want(2))
    assert _parameter(heat, stack, "desired_capacity") == "1"
    result = provider.scale(want(1, exact=True))
    assert result == f"updated stack {stack.name}/{stack.id} parameter desired_capacity 1 -> 1: asg 2 -> 1"
    assert stack.current_size() == 1


# -- label-addressed stacks -------------------------------------------------------------------------------------


def test_label_addressed_stack_inside_the_allowlist(heat: HeatServer, heat_stacks: Callable[..., HeatStack],
                                                    make: Make) -> None:
    stack = heat_stacks({"cooldown": 0})
    keys = {"stack_from_labels": True, "allowed_projects": ["admin"], "allowed_stacks": [stack.name]}
    provider = make(**keys)
    assert provider.status().current is None
    result = provider.scale(want(2, alerts=labelled(stack)))
    assert result == f"signalled scaleup_policy of stack {stack.name}/{stack.id}: asg 1 -> 2"
    assert stack.current_size() == 2
    status = provider.status()
    assert status.current == 2 and "(the last stack acted on)" in status.detail
    restarted = make(**keys)  # same state directory: remembers the stack across a restart
    assert restarted.status().current == 2
    # a manual decision has no alerts: it acts on the stack acted on last
    assert restarted.scale(want(1)).endswith("asg 2 -> 1")
    assert stack.current_size() == 1


@pytest.fixture
def foreign_stack(heat: HeatServer) -> Iterator[HeatStack]:
    """A stack of ANOTHER project ("evil"), created with noauth's ``X-Auth-Project``; alertscaler's admin
    credentials can still read it by id, as a cloud admin's would."""
    headers = {"X-Auth-Project": "evil"}
    name = f"as-evil-{uuid.uuid4().hex[:8]}"
    body = {"stack_name": name, "template": ASG_TEMPLATE.read_text(), "parameters": {"cooldown": 0}}
    url = f"{heat.root_url}/v1/evil/stacks"
    stack_id = heat.request("POST", url, json=body, headers=headers).json()["stack"]["id"]
    stack_url = f"{url}/{name}/{stack_id}"

    def settled() -> str | None:
        status: str = heat.request("GET", stack_url, headers=headers).json()["stack"]["stack_status"]
        return None if status.endswith("_IN_PROGRESS") else status

    assert heat.wait_for(settled, 60, what=f"foreign stack {name}") == "CREATE_COMPLETE"
    yield HeatStack(heat, name, stack_id)
    heat.request("DELETE", stack_url, headers=headers)


@pytest.mark.parametrize(
    ("case", "refusal"),
    [("stack-not-allowed", "refused: label tenant_stack_id='{id}', tenant_stack_name='{name}' is not in "
                           "allowed_stacks; Heat was not called"),
     ("project-not-allowed", "refused: label tenant_project_id='p-other' is not in allowed_projects; "
                             "Heat was not called"),
     ("project-lied-about", "refused: tenant_project_id='admin' but Heat reports stack {name}/{id} in project "
                            "'evil'"),
     ("project-from-heat", "refused: Heat reports stack {name}/{id} in project 'evil', which is not in "
                           "allowed_projects")],
    ids=["stack-not-allowed", "project-not-allowed", "project-lied-about", "project-from-heat"],
)
def test_label_outside_the_allowlist_is_refused_and_never_signalled(
        heat: HeatServer, heat_stacks: Callable[..., HeatStack], make: Make, case: str, refusal: str,
        request: pytest.FixtureRequest) -> None:
    allowed = heat_stacks({"cooldown": 0})
    if case == "stack-not-allowed":
        target, alerts = heat_stacks({"cooldown": 0}), None
        provider = make(stack_from_labels=True, allowed_stacks=[allowed.name, allowed.id])
    elif case == "project-not-allowed":
        target, alerts = allowed, labelled(allowed, project="p-other")
        provider = make(stack_from_labels=True, allowed_projects=["admin"])
    else:  # another project's stack; the labels claim an allowed project, or name none
        target = request.getfixturevalue("foreign_stack")
        alerts = labelled(target, project=None if case == "project-from-heat" else "admin")
        provider = make(stack_from_labels=True, allowed_projects=["admin"])
    with pytest.raises(PermanentProviderError) as info:
        provider.scale(want(2, alerts=alerts or labelled(target)))
    assert type(info.value) is PermanentProviderError
    assert str(info.value) == refusal.format(id=target.id, name=target.name)
    assert signal_requests(heat, target.id) == []  # Heat never saw a signal for it
    assert heat.get_json(f"{heat.root_url}/v1/admin/stacks/{target.name}/{target.id}/events",
                         resource_action="SIGNAL")["events"] == []
    assert len(target.members()) == 1
    assert provider.status().current is None  # nothing acted on: nothing remembered


# -- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "desired", "message"),
    [({"scale_out_policy": "nope"}, 2,
      "signalling nope of stack {name}/{id}: HTTP 404: The Resource (nope) could not be found in Stack {name}."),
     ({"group_resource": "web_group"}, 2,
      "stack {name}/{id} has no resource 'web_group' (group_resource); it has: asg, scaledown_policy, "
      "scaleup_policy"),
     ({"stack": "no-such-stack"}, 2, "Heat has no stack 'no-such-stack' (looked up by id, then by name)"),
     ({"capacity_parameter": "desired_capacity", "mode": "capacity"}, 5,
      "updating stack {name}/{id} (desired_capacity 1 -> 5): HTTP 400: "),
     ({"capacity_parameter": "size", "mode": "capacity"}, 2,
      "stack {name}/{id} has no parameter 'size' (capacity_parameter); its parameters: cooldown, "
      "desired_capacity, max_size, min_size")],
    ids=["missing-policy", "missing-group", "missing-stack", "capacity-above-max", "missing-parameter"],
)
def test_missing_things_are_permanent_with_heats_message(heat_stack: HeatStack, make: Make, keys: dict[str, str],
                                                         desired: int, message: str) -> None:
    provider = make(**{"stack": heat_stack.name, **keys})
    with pytest.raises(PermanentProviderError) as info:
        provider.scale(want(desired))
    assert type(info.value) is PermanentProviderError
    assert str(info.value).startswith(message.format(name=heat_stack.name, id=heat_stack.id)), str(info.value)
    if desired == 5:
        assert "DesiredCapacity must be between MinSize and MaxSize" in str(info.value)
    assert heat_stack.current_size() == 1


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it any more


def test_unreachable_heat_is_temporary(tmp_path: Path) -> None:
    config = HeatConfig.model_validate({
        "type": "openstack-heat", "stack": "web", "timeout": "5s", "decline_after": "1s",
        "auth": {"auth_type": "none", "endpoint_override": {"orchestration": f"http://127.0.0.1:{_closed_port()}/v1/a"}}})
    provider = HeatProvider(config, ProviderContext(group=GROUP, state_dir=tmp_path))
    try:
        for call in (provider.status, lambda: provider.scale(want(2))):
            with pytest.raises(TemporaryProviderError) as info:
                call()
            assert "finding stack 'web': ConnectFailure" in str(info.value)
            assert info.value.delay is not None and info.value.delay > 0
    finally:
        provider.close()
