"""Decisions (what was decided, or why nothing was) and actions (the provider work a decision implies)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    ACTED = "acted"
    SKIPPED = "skipped"


class Reason(str, Enum):
    """Why a decision came out as it did. Stored, filtered on, counted in /metrics."""

    SCALED = "scaled"                # acted: capacity changes
    CLAMPED = "clamped"              # acted, but the step was cut by min/max
    MANUAL = "manual"                # acted: an operator asked through the API/CLI
    COOLDOWN = "cooldown"
    AT_MAX = "at_max"
    AT_MIN = "at_min"
    NO_CHANGE = "no_change"          # exact capacity equal to the current one
    DUPLICATE = "duplicate"          # a re-sent notification (Alertmanager retry or HA peer)
    RESOLVED = "resolved"            # a resolved alert never scales by itself
    NO_GROUP = "no_group"            # no group/policy matches the alert's labels
    DRY_RUN = "dry_run"              # would have acted; the group is in dry-run mode
    STALE = "stale"                  # a firing alert not confirmed for too long stops stepping
    REJECTED = "rejected"            # a stored notification that cannot be processed, set aside (message: why);
    #                                  with trigger ``approval``: an operator rejected a pending change
    RECONCILE = "reconcile"          # acted: the provider's size differs from the desired capacity
    # healing (the member-level outcomes of ``decide.healing``)
    HEALED = "healed"                # acted: members replaced / rebooted / quarantined
    BATCHED = "batched"              # a heal signal held until the group's batch window closes
    OVER_BUDGET = "over_budget"      # the group's heal budget for the window is spent
    FROZEN = "frozen"                # the monitoring path looks sick: nothing destroyed
    QUARANTINED = "quarantined"      # acted: a flapping member taken out, kept for inspection
    FLAPPING = "flapping"            # flaps, and the provider cannot quarantine: left alone
    GRACE = "grace"                  # the member is still within its warm-up grace period
    UNKNOWN_MEMBER = "unknown_member"  # the signal names no current member of the group
    # target tracking (``decide.tracking``)
    STABILIZED = "stabilized"        # the stabilisation window held the size (or part of the change)
    RATE_LIMITED = "rate_limited"    # the change was cut by a rate limit
    FALLBACK = "fallback"            # a metric is missing: hold the size, or the fixed fallback capacity
    # predictive scaling (``decide.prediction``, a group's ``predict`` section)
    PREDICTED = "predicted"          # acted: the forecast asks more than the metrics (capacity ready one lead ahead)
    FORECAST_ONLY = "forecast_only"  # the forecast would have moved the group; predict.forecast_only: nothing done
    # checked step policies (``guard`` / ``size_by``)
    CHECKING = "checking"            # (an alert's reason only) firing, its live check not made yet
    GUARD_FAILED = "guard_failed"    # the alert fired but its guard no longer holds: a stale alert, skipped
    CHECK_FAILED = "check_failed"    # the live check could not be made and on_check_error is skip
    # schedules
    SCHEDULED = "scheduled"          # acted: a schedule window opened or closed (desired, min/max overrides)
    # Alertmanager's view (``act.silencing``)
    SILENCED = "silenced"            # the alerts are silenced or inhibited in Alertmanager: not acted on
    SILENCE_UNKNOWN = "silence_unknown"  # Alertmanager could not be asked and the policy fails closed
    RECONCILED = "reconciled"        # Alertmanager no longer has the alert: believed firing no more (phantom)
    CLEARED = "cleared"              # an operator ended a believed-firing alert by hand (``alerts clear``)
    # operators (``act.recording.gate``)
    PAUSED = "paused"                # would have acted; the group (or every group) is paused: nothing executed
    HELD = "held"                    # a policy would have moved the group; a manual scale holds its size
    PENDING_APPROVAL = "pending_approval"  # the change needs an operator's approval: waits (``approve ID``)
    APPROVED = "approved"            # acted: an operator approved a pending change
    APPROVAL_EXPIRED = "approval_expired"  # a pending change was not approved in time (or was superseded)
    CHANGE_FREEZE = "change_freeze"  # a freeze window is open: nothing but scale-out runs
    DRILL = "drill"                  # a fire drill's synthetic alert: decided, never executed
    REMOVED_MEMBER = "removed_member"  # a heal alert for a member alertscaler itself removed: dropped
    # outside signals (``act.signals``: signed URLs, Aodh alarm actions, Monasca notifications)
    REFUSED = "refused"              # a signed URL refused (403): tampered, expired, revoked, unknown, wrong method
    INSUFFICIENT_DATA = "insufficient_data"  # an alarm in insufficient data (Aodh) / UNDETERMINED (Monasca): no action


class Trigger(str, Enum):
    NOTIFICATION = "notification"    # a webhook from Alertmanager
    TIMER = "timer"                  # an alert that stays firing, re-evaluated after its cooldown
    MANUAL = "manual"
    RECONCILE = "reconcile"          # at start: the provider's actual size differs from desired
    HEALTH = "health"                # a heal batch judged when its window closed
    TRACKING = "tracking"            # a target-tracking evaluation
    SCHEDULE = "schedule"            # a schedule window opened or closed
    APPROVAL = "approval"            # a pending change approved, rejected, expired or superseded
    SIGNAL = "signal"                # a signed URL's POST, an Aodh alarm action or a Monasca notification


@dataclass(frozen=True)
class Verdict:
    """What ``decide`` returns: pure, no identity, no time of its own."""

    outcome: Outcome
    reason: Reason
    from_capacity: int
    to_capacity: int
    message: str

    @property
    def acted(self) -> bool:
        return self.outcome is Outcome.ACTED

    def as_dry_run(self) -> Verdict:
        if not self.acted:
            return self
        return replace(self, outcome=Outcome.SKIPPED, reason=Reason.DRY_RUN,
                       message=f"dry run: would have {self.message}")


@dataclass(frozen=True)
class Decision:
    """A stored verdict with its context."""

    id: int
    group: str | None
    policy: str | None
    trigger: Trigger
    outcome: Outcome
    reason: Reason
    from_capacity: int | None
    to_capacity: int | None
    message: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    notification_id: int | None = None
    alert_starts_at: datetime | None = None
    received_at: datetime | None = None
    decided_at: datetime | None = None
    provider_call_at: datetime | None = None
    action_id: int | None = None


class ActionState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (ActionState.SUCCEEDED, ActionState.FAILED)


@dataclass(frozen=True)
class HealTarget:
    """One member a heal action works on: ``action`` is replace / reboot / quarantine; ``slot`` its place."""

    member_id: str
    action: str
    slot: str


@dataclass(frozen=True)
class Action:
    """Provider work for one acted decision: bring ``group`` to ``desired``. Executed at most once to success."""

    id: int
    decision_id: int
    group: str
    from_capacity: int
    desired: int
    state: ActionState
    attempts: int
    not_before: datetime | None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result: str | None = None
    kind: str = "scale"                        # scale | heal
    targets: tuple[HealTarget, ...] = ()       # heal: the members and what to do with each
