"""Heal action ``replace`` of the ``openstack-heat`` provider against a REAL OpenStack Heat 27 (fixture ``heat``).

Nothing of Heat is mocked: stacks come from ``tests/heat/templates/asg.yaml`` (or a copy without
``desired_capacity``), the provider talks to Heat through openstacksdk, and every result is read back from Heat
itself: the group's member resources and their physical ids, the nested stack's events, the stack parameters,
the requests in Heat's own log. Covered: a member marked unhealthy is replaced by Heat (new id, same resource
name, other members untouched, size unchanged, the replacement created before the old one is deleted); in signal
mode a heal keeps the size signals made when ``capacity_parameter`` is set, and is refused (nothing marked)
when an update would undo them; Heat's trap without ``desired_capacity`` (measured on Heat directly, then refused
by the provider); an id that is not a member → ``PermanentProviderError`` and nothing touched.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alertscaler.model.errors import PermanentProviderError
from alertscaler.providers.base import Healer, ProviderContext, ScaleRequest
from alertscaler.providers.openstack.heat.provider import HeatConfig, HeatProvider
from alertscaler.providers.registry import config_model, heal_actions
from alertscaler.providers.registry import create as registry_create
from tests.integration.heat_fixtures import ASG_TEMPLATE, HeatServer, HeatStack

pytest_plugins = ["tests.integration.heat_fixtures"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
]

GROUP = "web"
HEAL_BOUND = 30.0  # seconds a heal may take here (measured: about 3-4 s with TestResource members)
_ids = itertools.count(5000)
_DESIRED_LINE = "      desired_capacity: {get_param: desired_capacity}\n"

Make = Callable[..., HeatProvider]


@pytest.fixture
def make(heat: HeatServer, tmp_path: Path) -> Iterator[Make]:
    """``make(**provider keys)``: a provider built through the registry, closed after the test."""
    made: list[HeatProvider] = []

    def build(**keys: Any) -> HeatProvider:
        data = {"type": "openstack-heat",
                "auth": {"auth_type": "none", "endpoint_override": {"orchestration": heat.base_url}},
                "poll_interval": "100ms", "decline_after": "2s", "timeout": "60s", **keys}
        config = config_model("openstack-heat").model_validate(data)
        guarded = registry_create(config, ProviderContext(group=GROUP, state_dir=tmp_path / GROUP))
        provider = guarded.inner  # the tests read HeatProvider's own attributes
        assert isinstance(provider, HeatProvider) and isinstance(guarded, Healer)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


def want(desired: int) -> ScaleRequest:
    action = next(_ids)
    return ScaleRequest(group=GROUP, from_capacity=0, desired=desired, action_id=action, decision_id=action)


def members(stack: HeatStack) -> dict[str, str]:
    """resource name -> physical id of the group's members, as Heat lists them."""
    return {m["resource_name"]: m["physical_resource_id"] for m in stack.members()}


def nested_url(stack: HeatStack) -> str:
    (first, *_) = stack.members()
    return str(next(link["href"] for link in first["links"] if link["rel"] == "stack"))


def parameter(heat: HeatServer, stack: HeatStack, name: str) -> str:
    value: str = heat.get_json(stack.url, resolve_outputs="false")["stack"]["parameters"][name]
    return value


def updated_time(heat: HeatServer, stack: HeatStack) -> str | None:
    value: str | None = heat.get_json(stack.url, resolve_outputs="false")["stack"]["updated_time"]
    return value


def patches(heat: HeatServer, stack: HeatStack) -> list[str]:
    """PATCH requests Heat's API logged for this stack or its nested stack (marks and updates)."""
    return heat.log_lines("Processing request: PATCH", f"/stacks/{stack.name}")


def unhealthy(stack: HeatStack) -> list[str]:
    return [m["resource_name"] for m in stack.members() if m["resource_status"] == "CHECK_FAILED"]


def no_desired_capacity() -> str:
    text = ASG_TEMPLATE.read_text()
    assert _DESIRED_LINE in text
    return text.replace(_DESIRED_LINE, "")


def wait_scaled(heat: HeatServer, stack: HeatStack, size: int) -> None:
    """Heat's signal-made scaling has finished at ``size`` (``scaling_in_progress`` false again)."""
    def done() -> bool:
        meta = heat.get_json(f"{stack.url}/resources/asg/metadata")["metadata"]
        return not meta.get("scaling_in_progress") and stack.current_size() == size

    heat.wait_for(done, 30.0, what=f"{stack.name} scaled to {size}")


# -- the heal -------------------------------------------------------------------------------------------------


def test_heal_replaces_the_member_marked_unhealthy(heat: HeatServer, heat_stacks: Callable[..., HeatStack],
                                                   make: Make, record_property: Callable[[str, object], None]) -> None:
    stack = heat_stacks({"desired_capacity": 3, "max_size": 4, "cooldown": 0})
    provider = make(stack=stack.name, capacity_parameter="desired_capacity")
    before = members(stack)
    victim_name = sorted(before)[1]
    victim = before[victim_name]
    assert victim in {m.id for m in provider.members()}

    started = time.monotonic()
    result = provider.heal(victim)
    took = time.monotonic() - started

    after = members(stack)
    new = after[victim_name]
    assert result == (f"Heat replaced {victim} by {new} ({victim_name} in stack {stack.name}/{stack.id}); "
                      "asg keeps 3 member(s)")
    assert new != victim and victim not in after.values()
    assert {k: v for k, v in after.items() if k != victim_name} == {k: v for k, v in before.items()
                                                                     if k != victim_name}
    assert stack.current_size() == 3 and len(after) == 3 and unhealthy(stack) == []
    assert parameter(heat, stack, "desired_capacity") == "3"
    assert provider.status().current == 3 and new in {m.id for m in provider.members()}
    # Heat's own record: our mark with its reason, then the replacement created BEFORE the old one is deleted
    events = heat.get_json(f"{nested_url(stack)}/events", resource_name=victim_name, sort_dir="asc")["events"]
    seen = [(e["resource_status"], e["physical_resource_id"]) for e in events]
    (mark,) = [e for e in events if e["resource_status"] == "CHECK_FAILED"]
    assert mark["physical_resource_id"] == victim
    assert mark["resource_status_reason"] == f"alertscaler: group {GROUP} replaces this member (heal)"
    assert seen.index(("CREATE_COMPLETE", new)) < seen.index(("DELETE_IN_PROGRESS", victim)), seen
    record_property("heat_replace_seconds", round(took, 2))
    assert took < HEAL_BOUND


def test_heal_without_capacity_parameter_when_the_parameter_agrees(
        heat: HeatServer, heat_stacks: Callable[..., HeatStack], make: Make) -> None:
    stack = heat_stacks({"desired_capacity": 2, "cooldown": 0})
    provider = make(stack=stack.id)  # found by id as well
    before = members(stack)
    victim = before[sorted(before)[0]]
    assert provider.heal(victim).startswith(f"Heat replaced {victim} by ")
    after = members(stack)
    assert victim not in after.values() and set(after) == set(before) and stack.current_size() == 2
    assert parameter(heat, stack, "desired_capacity") == "2"


def test_signal_mode_heal_keeps_the_size_signals_made(heat: HeatServer, heat_stacks: Callable[..., HeatStack],
                                                      make: Make) -> None:
    stack = heat_stacks({"cooldown": 0})  # desired_capacity parameter 1
    provider = make(stack=stack.name, capacity_parameter="desired_capacity")  # mode: signal
    provider.scale(want(2))
    wait_scaled(heat, stack, 2)
    assert parameter(heat, stack, "desired_capacity") == "1"  # signals do not touch the parameter
    victim = members(stack)[sorted(members(stack))[0]]
    assert provider.heal(victim).endswith("asg keeps 2 member(s)")
    assert stack.current_size() == 2 and victim not in members(stack).values()
    assert parameter(heat, stack, "desired_capacity") == "2"  # the heal wrote the size it kept
    # and the policies still act afterwards
    provider.scale(want(3))
    wait_scaled(heat, stack, 3)


def test_heal_that_would_undo_signals_is_refused_and_nothing_marked(
        heat: HeatServer, heat_stacks: Callable[..., HeatStack], make: Make) -> None:
    stack = heat_stacks({"cooldown": 0})
    provider = make(stack=stack.name)  # signal mode, no capacity_parameter
    provider.scale(want(2))
    wait_scaled(heat, stack, 2)
    before, updated, marks = members(stack), updated_time(heat, stack), len(patches(heat, stack))
    victim = before[sorted(before)[0]]
    with pytest.raises(PermanentProviderError) as info:
        provider.heal(victim)
    message = str(info.value)
    assert f"not healing {victim}: a stack update would resize asg from 2 to 1" in message
    assert "desired_capacity from parameter desired_capacity" in message and "set capacity_parameter" in message
    assert members(stack) == before and unhealthy(stack) == [] and stack.current_size() == 2
    assert updated_time(heat, stack) == updated and len(patches(heat, stack)) == marks


# -- Heat's trap without desired_capacity ---------------------------------------------------------------------


def test_heats_update_drops_an_unhealthy_member_of_a_group_without_desired_capacity(
        heat: HeatServer, heat_stacks: Callable[..., HeatStack]) -> None:
    """Why the provider refuses such groups: measured on Heat itself, without alertscaler."""
    stack = heat_stacks({"cooldown": 0}, template=no_desired_capacity())
    stack.signal("scaleup_policy")
    wait_scaled(heat, stack, 2)
    before = members(stack)
    name = sorted(before)[0]
    heat.request("PATCH", f"{nested_url(stack)}/resources/{name}", json={"mark_unhealthy": True})
    assert unhealthy(stack) == [name]
    heat.request("PATCH", stack.url, json={})
    status, _ = heat.wait_for_stack(stack.id)
    assert status == "UPDATE_COMPLETE"
    assert members(stack) == {k: v for k, v in before.items() if k != name}  # deleted, not replaced
    assert stack.current_size() == 1


def test_heal_of_a_group_without_desired_capacity_is_refused(heat: HeatServer, heat_stacks: Callable[..., HeatStack],
                                                              make: Make) -> None:
    stack = heat_stacks({"cooldown": 0}, template=no_desired_capacity())
    provider = make(stack=stack.name)
    (victim,) = members(stack).values()
    with pytest.raises(PermanentProviderError, match="asg has no desired_capacity: on a stack update Heat sizes "
                                                     "such a group to its healthy members"):
        provider.heal(victim)
    assert unhealthy(stack) == [] and list(members(stack).values()) == [victim] and patches(heat, stack) == []


# -- not a member ---------------------------------------------------------------------------------------------


def test_unknown_member_is_permanent_and_nothing_is_marked(heat: HeatServer, heat_stacks: Callable[..., HeatStack],
                                                           make: Make) -> None:
    stack = heat_stacks({"desired_capacity": 2, "cooldown": 0})
    other = heat_stacks({"desired_capacity": 2, "cooldown": 0})
    provider = make(stack=stack.name, capacity_parameter="desired_capacity")
    before, others, updated = members(stack), members(other), updated_time(heat, stack)
    foreign = next(iter(others.values()))  # a member of ANOTHER stack's group
    for member_id in ("not-a-member", foreign, next(iter(before))):  # the last: a resource NAME, not an id
        with pytest.raises(PermanentProviderError, match=f"{member_id} is not a member of asg"):
            provider.heal(member_id)
    assert members(stack) == before and members(other) == others
    assert unhealthy(stack) == [] and unhealthy(other) == []
    assert updated_time(heat, stack) == updated and patches(heat, stack) == patches(heat, other) == []
    assert parameter(heat, stack, "desired_capacity") == "2"


def test_registry_offers_replace_only() -> None:
    config = config_model("openstack-heat").model_validate({"type": "openstack-heat", "stack": "s"})
    assert isinstance(config, HeatConfig)
    assert heal_actions(config) == frozenset({"replace"})
