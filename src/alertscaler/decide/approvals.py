"""Approvals and change freezes, decided: is a change frozen, does it need an operator's approval, may a
waiting change be approved now, has it expired.

Pure: the moment is always passed in (an aware datetime); nothing reads a clock, the store or config globals.
Called by ``act.recording`` (the operators' gate: pause, hold, then change freeze, then approval) and by
``act.approving`` (approve, reject, the expiry pass), and by ``api.views`` (a group's open freeze).

The rules:

- a change freeze is open while one of its windows is (``decide.schedules.open_span``: the window's cron read
  in the freeze's time zone, open for its duration); it lasts until the last open window closes;
- while a freeze is open every change but scale-out (``to > from``) is frozen — a scale-in, a heal (its size
  does not change), a policy's move to a smaller size; scale-out runs (capacity when it is needed);
- a scale change needs approval when it moves the size by more than ``over_change`` instances (either
  direction; ``scale_out: false`` exempts scale-out); a heal when one of its members would get an action
  named in ``heal``;
- a waiting change can be approved while it is pending and not expired, its group's desired size is still
  the size it was planned from (a heal: any size), and its target is within the bounds in force.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from alertscaler.decide.schedules import next_opening, open_span
from alertscaler.model.approvals import ApprovalKind, ApprovalRules, ApprovalState, ChangeFreeze, PendingApproval
from alertscaler.model.decisions import HealTarget, Verdict
from alertscaler.model.policies import Bounds


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class OpenFreeze:
    """A change freeze open at some moment: the window that keeps it open longest, and when it closes."""

    name: str
    reason: str
    opened_at: datetime
    closes_at: datetime

    def describe(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"change freeze '{self.name}' until {_when(self.closes_at)}{why}"


def open_freeze(freeze: ChangeFreeze | None, now: datetime) -> OpenFreeze | None:
    """The freeze open at ``now`` (aware): of the open windows, the one closing last; None when none is open."""
    if freeze is None:
        return None
    found: OpenFreeze | None = None
    for window in freeze.windows:
        span = open_span(window, freeze.zone, now)
        if span is not None and (found is None or span[1] > found.closes_at):
            found = OpenFreeze(window.name, window.reason, span[0], span[1])
    return found


def next_freeze(freeze: ChangeFreeze | None, now: datetime) -> datetime | None:
    """When a freeze window next opens after ``now`` (None: no freeze configured, or none within 400 days)."""
    if freeze is None:
        return None
    found = [at for w in freeze.windows if (at := next_opening(w, freeze.zone, now)) is not None]
    return min(found, default=None)


def frozen(verdict: Verdict) -> bool:
    """Does a freeze stop this verdict? Every acted verdict but a scale-out does (heals included)."""
    return verdict.acted and verdict.to_capacity <= verdict.from_capacity


def approval_needed(rules: ApprovalRules | None, verdict: Verdict, targets: Sequence[HealTarget] = ()) -> str | None:
    """Why ``verdict`` (with a heal's ``targets``) needs an operator's approval under ``rules``; None if it does
    not (no rules, a skip, a small change, a heal of a kind not named)."""
    if rules is None or not verdict.acted:
        return None
    if targets:
        named = {action.value for action in rules.heal}
        kinds = sorted({t.action for t in targets if t.action in named})
        return f"heal actions of kind {', '.join(kinds)} need approval" if kinds else None
    change = verdict.to_capacity - verdict.from_capacity
    if rules.over_change is None or abs(change) <= rules.over_change:
        return None
    if change > 0 and not rules.scale_out:
        return None
    direction = "scale-out" if change > 0 else "scale-in"
    return f"a {direction} of {abs(change)} instances is over the approval limit of {rules.over_change}"


def expired(approval: PendingApproval, now: datetime) -> bool:
    """Is a pending approval past its expiry at ``now`` (to be recorded ``approval_expired``)?"""
    return approval.state is ApprovalState.PENDING and now >= approval.expires_at


def approve_refusal(approval: PendingApproval, desired: int, bounds: Bounds, now: datetime) -> str | None:
    """Why ``approval`` cannot be approved at ``now`` with its group at ``desired`` and ``bounds`` in force (the
    409's message); None: it can."""
    who = f"approval {approval.decision_id} ({approval.describe()} of group {approval.group})"
    if approval.state is not ApprovalState.PENDING:
        by = f" by {approval.resolved_by}" if approval.resolved_by else ""
        at = f" at {_when(approval.resolved_at)}" if approval.resolved_at else ""
        return f"{who} is already {approval.state.value}{by}{at}"
    if now >= approval.expires_at:
        return f"{who} expired at {_when(approval.expires_at)}"
    if approval.kind is ApprovalKind.HEAL:
        return None
    if desired != approval.from_capacity:
        return (f"{who}: the group moved since: its desired size is {desired}, the change was planned from "
                f"{approval.from_capacity}; a new decision starts from {desired}")
    if bounds.clamp(approval.to_capacity) != approval.to_capacity:
        return (f"{who}: {approval.to_capacity} is outside the bounds in force now "
                f"({bounds.min_size}..{bounds.max_size})")
    return None
