"""What Heat's JSON says about a scaling group: pure interpretation for the ``openstack-heat`` provider.

Owns: reading Heat's resource list (the group, its nested stack, its members), the group's scaling metadata,
the policy's ``SIGNAL`` events and the stack's status, and deciding from two snapshots (before / now) whether
a signal or a stack update has completed, is still running, failed, or was declined. No I/O: the provider
(``openstack.heat.provider``) fetches, this module judges; unit tests feed it JSON recorded from Heat 27.

What Heat 27 really records (verified against a real Heat, ``tests/integration/test_heat_provider.py``):

- a signal that scales: the group's metadata goes ``scaling_in_progress: true`` within ~0.5 s, then gets a new
  ``cooldown_end`` key (``{"<UTC ISO time>": "change_in_capacity : 1"}``) and ``scaling_in_progress: false``;
  after that the policy gets ONE event ``SIGNAL_COMPLETE`` whose reason is built from the signal body — with
  a Ceilometer-shaped body ``{"previous", "current", "reason"}`` it reads ``alarm state changed from ok to
  alarm (<reason>)``, which is how alertscaler's action id ends up in Heat's event list;
- a signal that Heat declines (cooldown, already at min_size/max_size, group not COMPLETE, another scaling
  running): NOTHING — no event, no metadata change (Heat raises ``NoActionRequired`` and "doesn't log an
  event as it just spams the user"); the reason is only in Heat's engine log. A decline is therefore
  concluded from the absence of any activity for ``decline_after`` seconds, and its reason is inferred
  from the state read before the signal (``decline_reason``): limits first, then cooldown, as Heat checks;
- a member being removed shows ``DELETE_COMPLETE`` for a moment before it disappears from the list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlparse

from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.common.parsing import EARLIEST, parse_timestamp

SIGNAL_COMPLETE = "SIGNAL_COMPLETE"
_REASON_LIMIT = 200  # characters of the reason sent in a signal body (Heat stores it in the event)
_STACK_PATH = re.compile(r"/stacks/([^/]+)/([^/]+)/?$")


# ------------------------------------------------------------------------------------------------ stacks


@dataclass(frozen=True)
class StackInfo:
    """A stack as Heat reports it (``GET /stacks/{name}/{id}``)."""

    id: str
    name: str
    project: str | None = None
    status: str = ""
    status_reason: str = ""
    updated_time: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """``/stacks/{name}/{id}``: signals and most calls need both."""
        return f"/stacks/{self.name}/{self.id}"

    def __str__(self) -> str:
        return f"{self.name}/{self.id}"


def stack_info(body: Mapping[str, Any]) -> StackInfo:
    """A ``StackInfo`` from ``{"stack": {...}}`` or the stack object itself.

    The project comes from the ``OS::project_id`` pseudo-parameter, else from the ``self`` link
    (``.../v1/<project>/stacks/<name>/<id>``); None when Heat reports neither."""
    stack = body.get("stack", body)
    parameters = {str(k): str(v) for k, v in (stack.get("parameters") or {}).items()}
    project = parameters.get("OS::project_id") or stack.get("project") or _project_from_links(stack.get("links"))
    return StackInfo(
        id=str(stack.get("id", "")),
        name=str(stack.get("stack_name", "")),
        project=str(project) if project else None,
        status=str(stack.get("stack_status") or ""),
        status_reason=str(stack.get("stack_status_reason") or ""),
        updated_time=stack.get("updated_time"),
        parameters=parameters,
    )


def _project_from_links(links: Any) -> str | None:
    for link in links or []:
        if isinstance(link, Mapping) and link.get("rel") == "self":
            parts = urlparse(str(link.get("href", ""))).path.split("/")
            if "stacks" in parts and parts.index("stacks") >= 1:
                return unquote(parts[parts.index("stacks") - 1]) or None
    return None


# ------------------------------------------------------------------------------------------------ groups


_STATE_BY_SUFFIX = (
    ("_FAILED", MemberState.FAILED),
    ("_IN_PROGRESS", MemberState.STARTING),
    ("_COMPLETE", MemberState.RUNNING),
)


def member_state(resource_status: str) -> MemberState:
    """Heat's ``resource_status`` of a member as a ``MemberState``.

    ``DELETE_*`` → STOPPING (on its way out, not counted), ``INIT_COMPLETE`` (declared, not created yet) →
    STARTING, ``SUSPEND_COMPLETE`` → UNKNOWN; otherwise ``*_FAILED`` → FAILED, ``*_IN_PROGRESS`` → STARTING,
    ``*_COMPLETE`` → RUNNING; anything else → UNKNOWN."""
    status = resource_status.upper()
    if status.startswith("DELETE_"):
        return MemberState.STOPPING
    if status == "INIT_COMPLETE":
        return MemberState.STARTING
    if status.startswith("SUSPEND_") and status.endswith("_COMPLETE"):
        return MemberState.UNKNOWN
    for suffix, state in _STATE_BY_SUFFIX:
        if status.endswith(suffix):
            return state
    return MemberState.UNKNOWN


@dataclass(frozen=True)
class GroupView:
    """The group resource of a stack and its members (``GET .../resources?nested_depth=1``)."""

    resource: str
    status: str
    status_reason: str
    nested_path: str | None  # ``/stacks/{nested name}/{nested id}`` of the group's own stack
    members: tuple[Member, ...]

    @property
    def current(self) -> int:
        """Members not being deleted."""
        return sum(1 for m in self.members if m.state is not MemberState.STOPPING)

    @property
    def settled(self) -> bool:
        """The group resource is ``*_COMPLETE`` (Heat's policies only act on a COMPLETE group)."""
        return self.status.endswith("_COMPLETE")


class MissingGroup(LookupError):
    """The stack has no resource of the configured name; ``resources`` lists what it has."""

    def __init__(self, resource: str, resources: Sequence[str]) -> None:
        self.resource = resource
        self.resources = tuple(resources)
        super().__init__(resource)


def group_view(body: Mapping[str, Any], resource: str, stack: StackInfo) -> GroupView:
    """The group ``resource`` of ``stack`` and its members, from a ``resources?nested_depth=1`` answer.

    Members are the resources whose ``parent_resource`` is the group AND whose ``stack`` link is the group's
    nested stack (when Heat gives one), so resources of other nested stacks are never counted. Raises
    ``MissingGroup`` when the stack has no such resource."""
    rows = [r for r in body.get("resources") or [] if isinstance(r, Mapping)]
    top = [r for r in rows if not r.get("parent_resource")]
    group = next((r for r in top if r.get("resource_name") == resource), None)
    if group is None:
        raise MissingGroup(resource, sorted(str(r.get("resource_name")) for r in top))
    nested = _link(group, "nested")
    nested_id = nested[1] if nested else str(group.get("physical_resource_id") or "") or None
    members = []
    for row in rows:
        if row.get("parent_resource") != resource:
            continue
        home = _link(row, "stack")
        if nested_id is not None and home is not None and home[1] != nested_id:
            continue
        members.append(_member(row, stack, resource))
    members.sort(key=lambda m: (m.created_at or EARLIEST, m.id))
    return GroupView(
        resource=resource,
        status=str(group.get("resource_status") or ""),
        status_reason=str(group.get("resource_status_reason") or ""),
        nested_path=f"/stacks/{nested[0]}/{nested[1]}" if nested else None,
        members=tuple(members),
    )


def _link(row: Mapping[str, Any], rel: str) -> tuple[str, str] | None:
    """``(stack name, stack id)`` of a resource's ``stack``/``nested`` link."""
    for link in row.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == rel:
            match = _STACK_PATH.search(urlparse(str(link.get("href", ""))).path)
            if match:
                return unquote(match.group(1)), unquote(match.group(2))
    return None


def _member(row: Mapping[str, Any], stack: StackInfo, group: str) -> Member:
    name = str(row.get("resource_name") or row.get("logical_resource_id") or "")
    status = str(row.get("resource_status") or "")
    return Member(
        id=str(row.get("physical_resource_id") or "") or name,
        address=None,
        state=member_state(status),
        created_at=parse_timestamp(row.get("creation_time")),
        labels={
            "stack_name": stack.name,
            "stack_id": stack.id,
            "group_resource": group,
            "resource_name": name,
            "resource_type": str(row.get("resource_type") or ""),
            "resource_status": status,
        },
    )


# --------------------------------------------------------------------------------------- signal bodies


def signal_marker(group: str, action_id: int) -> str:
    """The text that identifies alertscaler's signal for one action in Heat's event reason."""
    return f"alertscaler group {group} action {action_id}:"


def signal_body(
    *, group: str, action_id: int, decision_id: int, current: int, desired: int, policy: str,
    stack: StackInfo, alerts: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The JSON body of a policy signal.

    Shaped like a Ceilometer alarm notification (``previous``/``current``/``reason``) because that is the
    one shape Heat turns into event text (``alarm state changed from ok to alarm (<reason>)``); ``current``
    must be the string ``alarm`` (Heat lower-cases it). The ``alertscaler`` object carries the ids for
    anyone reading Heat's logs; Heat itself ignores it."""
    names = sorted({str((a.get("labels") or {}).get("alertname")) for a in alerts
                    if isinstance(a, Mapping) and (a.get("labels") or {}).get("alertname")})
    reason = (f"{signal_marker(group, action_id)} decision {decision_id}, {policy} for {current} -> {desired}"
              + (f" ({', '.join(names)})" if names else ""))
    return {
        "previous": "ok",
        "current": "alarm",
        "reason": reason[:_REASON_LIMIT],
        "alertscaler": {
            "group": group, "action_id": action_id, "decision_id": decision_id, "from_capacity": current,
            "desired": desired, "policy": policy, "stack": str(stack), "alerts": names,
        },
    }


# --------------------------------------------------------------------------------------- group metadata


@dataclass(frozen=True)
class ScalingMetadata:
    """The group's scaling bookkeeping (``GET .../resources/{group}/metadata``)."""

    cooldown_end: str | None = None  # naive UTC ISO time, as Heat writes it
    cooldown_reason: str = ""
    in_progress: bool = False

    @property
    def cooldown_until(self) -> datetime | None:
        return parse_timestamp(self.cooldown_end)


def scaling_metadata(body: Mapping[str, Any]) -> ScalingMetadata:
    """From ``{"metadata": {"cooldown_end": {"<time>": "<reason>"}, "scaling_in_progress": bool}}``.
    Heat keeps one ``cooldown_end`` key (the latest); a ``cooldown`` key is the pre-Ocata form."""
    data = body.get("metadata", body) if isinstance(body, Mapping) else {}
    ends = data.get("cooldown_end") or data.get("cooldown") or {}
    end, reason = None, ""
    if isinstance(ends, Mapping) and ends:
        end = max(str(k) for k in ends)
        reason = str(ends.get(end, ""))
    return ScalingMetadata(cooldown_end=end, cooldown_reason=reason, in_progress=bool(data.get("scaling_in_progress")))


# ----------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class HeatEvent:
    id: str
    time: str
    status: str  # ``SIGNAL_COMPLETE``: Heat's API joins action and status
    reason: str


def heat_events(body: Mapping[str, Any]) -> tuple[HeatEvent, ...]:
    """Events from ``{"events": [...]}`` (any order)."""
    out = []
    for raw in body.get("events") or []:
        if isinstance(raw, Mapping):
            out.append(HeatEvent(id=str(raw.get("id", "")), time=str(raw.get("event_time") or ""),
                                 status=str(raw.get("resource_status") or ""),
                                 reason=str(raw.get("resource_status_reason") or "")))
    return tuple(out)


# ------------------------------------------------------------------------------------------ judgements


class Verdict(str, Enum):
    WAITING = "waiting"          # nothing seen yet, still within decline_after
    IN_PROGRESS = "in_progress"  # Heat is scaling
    COMPLETED = "completed"
    DECLINED = "declined"        # Heat did not act (no activity for decline_after)
    FAILED = "failed"


@dataclass(frozen=True)
class Probe:
    """What the provider reads about a group at one instant while a signal is pending."""

    metadata: ScalingMetadata
    events: tuple[HeatEvent, ...] = ()
    nested_status: str = ""
    nested_reason: str = ""
    nested_updated: str | None = None


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str = ""
    active: bool = False  # Heat has shown activity for this signal (carried from poll to poll)


def judge_signal(before: Probe, now: Probe, marker: str, *, waited: float, decline_after: float,
                 was_active: bool = False, why_not: str | None = None) -> Judgement:
    """Where a signal stands, from the probe taken before it was sent and the latest one.

    COMPLETED: the policy has a new ``SIGNAL_COMPLETE`` event carrying ``marker``, or the group's
    ``cooldown_end`` changed and no scaling is in progress (Heat writes it when the size changed).
    FAILED: the group's nested stack went ``*_FAILED`` since before, or scaling was seen running and
    stopped without a new ``cooldown_end`` (Heat keeps it for changes that happened).
    IN_PROGRESS: ``scaling_in_progress`` or the nested stack is ``*_IN_PROGRESS``.
    DECLINED: none of that within ``decline_after`` seconds; ``why_not`` (from ``decline_reason``) explains.
    """
    old_ids = {e.id for e in before.events}
    for event in now.events:
        if event.id not in old_ids and event.status == SIGNAL_COMPLETE and marker in event.reason:
            return Judgement(Verdict.COMPLETED, f"Heat event {event.status}: {event.reason}", True)
    cooldown_changed = now.metadata.cooldown_end != before.metadata.cooldown_end
    if cooldown_changed and not now.metadata.in_progress:
        return Judgement(Verdict.COMPLETED, f"cooldown_end {now.metadata.cooldown_end}: "
                                            f"{now.metadata.cooldown_reason}", True)
    nested_changed = (now.nested_updated, now.nested_status) != (before.nested_updated, before.nested_status)
    if now.nested_status.endswith("_FAILED") and nested_changed:
        return Judgement(Verdict.FAILED, f"the group's stack is {now.nested_status}: {now.nested_reason}", True)
    if now.metadata.in_progress or now.nested_status.endswith("_IN_PROGRESS"):
        return Judgement(Verdict.IN_PROGRESS, "scaling in progress", True)
    if was_active or (nested_changed and now.nested_updated != before.nested_updated):
        reason = "Heat started scaling but recorded no change (no new cooldown_end, no event)"
        if now.nested_status:
            reason += f"; the group's stack is {now.nested_status}: {now.nested_reason}"
        return Judgement(Verdict.FAILED, reason, True)
    if waited >= decline_after:
        return Judgement(Verdict.DECLINED, why_not or "neither a size limit nor a cooldown explains it")
    return Judgement(Verdict.WAITING)


@dataclass(frozen=True)
class Limits:
    min_size: int | None
    max_size: int | None


def group_limits(template: Mapping[str, Any], parameters: Mapping[str, str], resource: str) -> Limits:
    """The group's min/max size from the stack template and its parameters, when they are literals or
    ``get_param`` references (HOT ``min_size``/``max_size``, CFN ``MinSize``/``MaxSize``); else None."""
    resources = template.get("resources") or template.get("Resources") or {}
    props = ((resources.get(resource) or {}).get("properties")
             or (resources.get(resource) or {}).get("Properties") or {})

    def value(*keys: str) -> int | None:
        raw = next((props[key] for key in keys if key in props), None)
        if isinstance(raw, Mapping):
            ref = raw.get("get_param", raw.get("Ref"))
            if isinstance(ref, list) and len(ref) == 1:
                ref = ref[0]
            raw = parameters.get(ref) if isinstance(ref, str) else None  # a path into a parameter: unknown
        if raw is None or isinstance(raw, bool):
            return None
        try:
            return int(float(raw))
        except (TypeError, ValueError):
            return None

    return Limits(min_size=value("min_size", "MinSize"), max_size=value("max_size", "MaxSize"))


def decline_reason(*, scale_out: bool, group: str, current: int, limits: Limits, metadata: ScalingMetadata,
                   now: datetime) -> str | None:
    """Why Heat would decline a scale-out/-in signal, checked in Heat's order: limits, then cooldown."""
    if scale_out and limits.max_size is not None and current >= limits.max_size:
        return f"{group} is at its max_size {limits.max_size}"
    if not scale_out and limits.min_size is not None and current <= limits.min_size:
        return f"{group} is at its min_size {limits.min_size}"
    until = metadata.cooldown_until
    if until is not None and now < until:
        left = (until - now).total_seconds()
        last = f"; last scaling: {metadata.cooldown_reason}" if metadata.cooldown_reason else ""
        return f"{group} is in Heat's cooldown until {metadata.cooldown_end} UTC ({left:.1f}s left{last})"
    return None


# ------------------------------------------------------------------------------------------ stack updates


def judge_update(before: StackInfo, now: StackInfo, parameter: str, desired: int, *,
                 was_active: bool = False) -> Judgement:
    """Where a stack update (PATCH of ``parameter`` to ``desired``) stands.

    Heat marks the stack ``UPDATE_IN_PROGRESS`` before it answers 202; a terminal status counts once the
    update has been seen running (``was_active``), the stack's ``updated_time`` moved, or the parameter
    changed to ``desired``; until then the stack read is the one from before (WAITING).
    ``ROLLBACK_*`` or ``*_FAILED`` means it failed."""
    status = now.status
    if status.endswith("_IN_PROGRESS"):
        return Judgement(Verdict.IN_PROGRESS, status, True)
    changed = before.parameters.get(parameter) != str(desired) and now.parameters.get(parameter) == str(desired)
    if not (was_active or changed or now.updated_time != before.updated_time):
        return Judgement(Verdict.WAITING, status)
    if status == "UPDATE_COMPLETE":
        return Judgement(Verdict.COMPLETED, now.status_reason, True)
    return Judgement(Verdict.FAILED, f"{status}: {now.status_reason}", True)


def describe(value: Any) -> str:
    """Compact JSON for messages."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)[:300]
