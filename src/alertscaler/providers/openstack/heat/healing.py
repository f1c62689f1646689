"""Heal action ``replace`` of the ``openstack-heat`` provider: Heat replaces a member marked unhealthy.

How Heat heals (verified against the real Heat 27 of the test suite, ``tests/integration/test_heat_healing.py``):

1. ``PATCH {nested stack}/resources/{member resource name}`` with ``{"mark_unhealthy": true,
   "resource_status_reason": "alertscaler: ..."}`` (200, empty body) puts the member resource of the group's
   NESTED stack into ``CHECK_FAILED`` with that reason. Marking the group resource itself (in the parent stack)
   would make Heat replace the whole group, so only the nested stack's member resource is ever marked. An
   unknown resource answers 404 ``ResourceNotFound``; the provider checks membership before that anyway.
2. A stack update of the PARENT stack that changes nothing (``PATCH {stack}`` keeping the template and the
   parameters; Heat answers 202 with the stack already ``UPDATE_IN_PROGRESS``) makes Heat visit the group, which
   resizes its nested stack, where the ``CHECK_FAILED`` member is replaced (``UpdateReplace``): same resource
   name, new ``physical_resource_id``, the other members untouched. Convergence creates the replacement first
   and deletes the old resource afterwards (the nested stack's events: ``CREATE_COMPLETE`` of the new one before
   ``DELETE_IN_PROGRESS`` of the old one). Measured here with ``OS::Heat::TestResource`` members: the new id is
   listed after ~0.5 s, the update is ``UPDATE_COMPLETE`` after 3-4 s (this Heat walks the nested stack one
   resource per second); a real server adds its boot time.

Heat's trap: EVERY stack update resizes the group to its ``desired_capacity`` property, and when the group has
none, to the number of its members NOT in a failed state (``grouputils.get_size``) — which drops the member
just marked unhealthy: measured, a group of 2 without ``desired_capacity`` came out of the update with 1
member, the unhealthy one deleted and not replaced. So before anything is marked, the provider works out the
size the update will leave (``plan_update``): the group's current size (members not being deleted, the
unhealthy one included) is sent as ``capacity_parameter`` when one is configured; then the template's
``desired_capacity`` (a literal or ``get_param``, with the parameters the update will have) must equal the
current size and lie within ``min_size``/``max_size``. Otherwise the heal is refused with
``PermanentProviderError`` and nothing is marked: a template without ``desired_capacity``, a
``desired_capacity`` that alertscaler cannot read, or one that differs from the current size.

Signal mode (``mode: signal``): Heat's policies change the size WITHOUT changing the ``desired_capacity``
parameter, so a stack update undoes what the signals did (measured: parameter 3, a scale-in signal to 2, a
no-change update: back to 3). With ``capacity_parameter`` configured the heal sends the current size and the
signal-made size is kept (the parameter is rewritten to it, as an exact decision does); without it, a heal is
refused once signals have moved the group away from the parameter's value, and works while they agree. The
update also rewrites the group's ``cooldown_end`` metadata (``ExactCapacity : <size>``, until the group's own
``cooldown`` property, unset in the test template); the policies' cooldowns are their own, and a scale-out
signal right after a heal scaled the group as usual (measured).

After the update the provider reads the group again: ``UPDATE_COMPLETE``, the old id gone, the member's
resource name carrying a new id, and the size unchanged — otherwise ``PermanentProviderError`` (an update that
failed or a size Heat changed is not retried blindly). A stack or group already being changed, or Heat still
scaling, is ``TemporaryProviderError`` (busy). Only ``replace`` is offered: Heat has no generic restart of a
member, and no way to take a member out of a group while keeping it (abandoning it would delete it at the next
update). The I/O is the provider's (``openstack.heat.provider.HeatProvider.heal`` passes its calls in as
``HeatCalls``); the rest of this module is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.openstack.heat.events import (
    GroupView,
    Judgement,
    Limits,
    StackInfo,
    Verdict,
    group_limits,
    scaling_metadata,
    stack_info,
)

__all__ = ["HeatCalls", "Planned", "find_member", "judge_heal_update", "plan_update", "replace_member",
           "template_desired"]

_NO_OUTPUTS = {"resolve_outputs": "false"}
_BUSY_DELAY = 5.0
_REASON_LIMIT = 255


@dataclass(frozen=True)
class HeatCalls:
    """What ``replace_member`` needs from the provider: its request (relative to the orchestration endpoint,
    errors translated, the decoded JSON returned), its group reads and its wait loop."""

    call: Callable[..., Any]
    group: Callable[[StackInfo], GroupView]
    group_after: Callable[[StackInfo], GroupView]
    wait: Callable[[str, Callable[[float], Judgement]], Judgement]


# ------------------------------------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class Desired:
    """The group's ``desired_capacity`` as the template sets it: ``value`` when alertscaler can read it;
    ``absent`` when the template has none; otherwise ``source`` says what it is."""

    value: int | None
    absent: bool = False
    source: str = ""


def template_desired(template: Mapping[str, Any], parameters: Mapping[str, Any], resource: str) -> Desired:
    """The ``desired_capacity`` (HOT) / ``DesiredCapacity`` (CFN) property of ``resource``: a literal or a
    ``get_param`` / ``Ref`` of a parameter (read from ``parameters``)."""
    resources = template.get("resources") or template.get("Resources") or {}
    body = resources.get(resource) or {}
    props = (body.get("properties") or body.get("Properties") or {}) if isinstance(body, Mapping) else {}
    key = next((k for k in ("desired_capacity", "DesiredCapacity") if k in props), None)
    if key is None:
        return Desired(None, absent=True, source="no desired_capacity property")
    raw, source = props[key], "a literal"
    if isinstance(raw, Mapping):
        ref = raw.get("get_param", raw.get("Ref"))
        if isinstance(ref, list) and len(ref) == 1:
            ref = ref[0]
        if not isinstance(ref, str):
            return Desired(None, source=f"{key}: {raw!r}")
        raw, source = parameters.get(ref), f"parameter {ref}"
    if raw is None or isinstance(raw, bool):
        return Desired(None, source=source)
    try:
        return Desired(int(float(raw)), source=source)
    except (TypeError, ValueError):
        return Desired(None, source=f"{source} = {raw!r}")


@dataclass(frozen=True)
class Planned:
    """The parameters the healing stack update sends, and the size it will leave."""

    parameters: dict[str, int]
    size: int


def plan_update(*, template: Mapping[str, Any], parameters: Mapping[str, str], resource: str, current: int,
                capacity_parameter: str | None) -> Planned:
    """What the no-change stack update must send so that Heat keeps ``current`` members (see the module
    docstring); ``PermanentProviderError`` saying why when that cannot be made sure."""
    sent: dict[str, int] = {}
    if capacity_parameter is not None:
        if capacity_parameter not in parameters:
            shown = ", ".join(sorted(k for k in parameters if not k.startswith("OS::"))) or "none"
            raise PermanentProviderError(
                f"the stack has no parameter {capacity_parameter!r} (capacity_parameter); its parameters: {shown}")
        sent[capacity_parameter] = current
    after = {**parameters, **{k: str(v) for k, v in sent.items()}}
    desired = template_desired(template, after, resource)
    hint = ("set capacity_parameter to the stack parameter behind it" if capacity_parameter is None
            else f"make it get_param {capacity_parameter}")
    if desired.absent:
        raise PermanentProviderError(
            f"{resource} has no desired_capacity: on a stack update Heat sizes such a group to its healthy members, "
            f"so the member marked unhealthy would be deleted, not replaced (add desired_capacity: {{get_param: "
            f"...}} to the group and set capacity_parameter)")
    if desired.value is None:
        raise PermanentProviderError(
            f"cannot tell the size a stack update would give {resource} (its desired_capacity is "
            f"{desired.source}); {hint}")
    if desired.value != current:
        raise PermanentProviderError(
            f"a stack update would resize {resource} from {current} to {desired.value} (desired_capacity from "
            f"{desired.source}, e.g. after scaling signals); {hint}")
    limits: Limits = group_limits(template, after, resource)
    if (limits.min_size is not None and current < limits.min_size) or (
            limits.max_size is not None and current > limits.max_size):
        raise PermanentProviderError(
            f"{resource} has {current} member(s), outside its min_size/max_size {limits.min_size}/"
            f"{limits.max_size}: a stack update would resize it")
    return Planned(parameters=sent, size=current)


def find_member(group: GroupView, member_id: str) -> Member | None:
    """The member with this id (Heat's ``physical_resource_id``), unless it is being deleted."""
    return next((m for m in group.members if m.id == member_id and m.state is not MemberState.STOPPING), None)


def judge_heal_update(before: StackInfo, now: StackInfo, *, was_active: bool, replaced: bool) -> Judgement:
    """Where the healing stack update stands. A terminal status counts once the update has been seen running,
    the stack's ``updated_time`` moved, or the member was already seen replaced (an update that ran and ended
    within one second of the previous one leaves ``updated_time`` as it was); ``*_FAILED``/``ROLLBACK_*``:
    failed."""
    if now.status.endswith("_IN_PROGRESS"):
        return Judgement(Verdict.IN_PROGRESS, now.status, True)
    if not (was_active or replaced or now.updated_time != before.updated_time):
        return Judgement(Verdict.WAITING, now.status)
    if now.status == "UPDATE_COMPLETE":
        return Judgement(Verdict.COMPLETED, now.status_reason, True)
    return Judgement(Verdict.FAILED, f"{now.status}: {now.status_reason}", True)


def replacement(before: GroupView, after: GroupView, old: Member) -> Member:
    """The member that took ``old``'s place; ``PermanentProviderError`` when Heat kept it, changed the size, or
    no replacement can be told."""
    res = before.resource
    if any(m.id == old.id for m in after.members):
        kept = next(m for m in after.members if m.id == old.id)
        raise PermanentProviderError(
            f"Heat finished the stack update but kept {old.id} ({kept.labels.get('resource_status', '?')}); "
            f"{res} was not healed")
    if after.current != before.current:
        raise PermanentProviderError(
            f"Heat removed {old.id} but changed {res} from {before.current} to {after.current} member(s)")
    name = old.labels.get("resource_name")
    same_name = [m for m in after.members if name and m.labels.get("resource_name") == name]
    known = {m.id for m in before.members}
    new = same_name or [m for m in after.members if m.id not in known]
    if len(new) != 1:
        raise PermanentProviderError(
            f"Heat removed {old.id} but no single replacement can be told in {res} (new: "
            f"{', '.join(m.id for m in new) or 'none'})")
    return new[0]


# ---------------------------------------------------------------------------------------------- the heal


def replace_member(heat: HeatCalls, stack: StackInfo, member_id: str, *, group_name: str,
                   capacity_parameter: str | None) -> str:
    """Mark ``member_id`` unhealthy in the group's nested stack, update ``stack`` without changes, wait until
    Heat has replaced it (see the module docstring); returns ``Heat replaced <old> by <new> ...``."""
    group = heat.group(stack)
    res = group.resource
    old = find_member(group, member_id)
    if old is None:
        shown = ", ".join(m.id for m in group.members) or "none"
        raise PermanentProviderError(f"stack {stack}: {member_id} is not a member of {res} (members: {shown})")
    if stack.status.endswith("_IN_PROGRESS") or group.status.endswith("_IN_PROGRESS"):
        raise TemporaryProviderError(f"stack {stack} is {stack.status} ({res} {group.status}); cannot heal now",
                                     delay=_BUSY_DELAY)
    metadata = heat.call("GET", f"{stack.path}/resources/{res}/metadata", f"reading the metadata of {res}")
    if scaling_metadata(metadata or {}).in_progress:
        raise TemporaryProviderError(f"stack {stack}: Heat is scaling {res} (scaling_in_progress); cannot heal now",
                                     delay=_BUSY_DELAY)
    if group.nested_path is None or not old.labels.get("resource_name"):
        raise PermanentProviderError(f"stack {stack}: Heat reports no nested stack for {res}; cannot mark "
                                     f"{member_id} unhealthy")
    template = heat.call("GET", f"{stack.path}/template", f"reading the template of stack {stack}")
    try:
        plan = plan_update(template=template if isinstance(template, Mapping) else {},
                           parameters=stack.parameters, resource=res, current=group.current,
                           capacity_parameter=capacity_parameter)
    except PermanentProviderError as exc:
        raise PermanentProviderError(f"stack {stack}: not healing {member_id}: {exc}") from None
    name = old.labels["resource_name"]
    reason = f"alertscaler: group {group_name} replaces this member (heal)"[:_REASON_LIMIT]
    heat.call("PATCH", f"{group.nested_path}/resources/{name}", f"marking {name} ({member_id}) of {res} unhealthy",
              json_body={"mark_unhealthy": True, "resource_status_reason": reason})
    shown = ", ".join(f"{k}={v}" for k, v in plan.parameters.items()) or "no parameter changed"
    doing = f"stack {stack}: updating ({shown}) so that Heat replaces {name} ({member_id}), marked unhealthy"
    heat.call("PATCH", stack.path, doing, json_body={"parameters": plan.parameters} if plan.parameters else {})
    state = Judgement(Verdict.WAITING)

    def step(waited: float) -> Judgement:
        nonlocal state
        now = stack_info(heat.call("GET", stack.path, f"reading stack {stack}", params=_NO_OUTPUTS) or {})
        replaced = False
        if not (state.active or now.status.endswith("_IN_PROGRESS") or now.updated_time != stack.updated_time):
            replaced = find_member(heat.group(stack), member_id) is None
        state = judge_heal_update(stack, now, was_active=state.active, replaced=replaced)
        return state

    outcome = heat.wait(doing, step)
    if outcome.verdict is Verdict.FAILED:
        raise PermanentProviderError(f"{doing}: {outcome.reason}")
    new = replacement(group, heat.group_after(stack), old)
    return (f"Heat replaced {member_id} by {new.id} ({name} in stack {stack}); {res} keeps {group.current} "
            "member(s)")
