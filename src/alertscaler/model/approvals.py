"""Approvals and change freezes as values: a group's ``approval`` rules (which changes wait for an operator),
its ``change_freeze`` windows (cron + duration, in a time zone: while one is open nothing but scale-out runs),
and a change that waits (``PendingApproval``, stored by ``store`` in the ``approvals`` table).

Validation only, no clock: whether a change needs approval and whether a freeze is open at a given moment are
decided in ``decide.approvals`` (time passed in); ``act.recording`` applies them to every decision (its gate),
``act.approving`` carries out approve / reject / expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alertscaler.model.decisions import HealTarget, Trigger
from alertscaler.model.durations import Duration, format_duration
from alertscaler.model.healing import HealAction
from alertscaler.model.schedules import CronWindow, ZonedWindows

DEFAULT_EXPIRY = 3600.0
MAX_EXPIRY = 7 * 86400.0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApprovalRules(_Frozen):
    """``groups.NAME.approval``: which of the group's automatic changes wait for an operator's approval.

    ``over_change``: a size change of more than this many instances (either direction; ``scale_out: false``
    exempts scale-out, which then never waits); ``heal``: heal actions of these kinds (any member);
    ``expire_after``: how long a change waits before it expires (a newer change of the group supersedes it)."""

    over_change: Annotated[int, Field(ge=0)] | None = None
    scale_out: bool = True
    heal: list[HealAction] = Field(default_factory=list)
    expire_after: Duration = DEFAULT_EXPIRY

    @field_validator("expire_after")
    @classmethod
    def _valid_expiry(cls, value: float) -> float:
        if not 0 < value <= MAX_EXPIRY:
            raise ValueError(f"must be more than 0s and at most 7d, got {format_duration(value)}")
        return value

    @model_validator(mode="after")
    def _something(self) -> ApprovalRules:
        if self.over_change is None and not self.heal:
            raise ValueError("nothing would ever need approval: give over_change (a size change of more than N "
                             "instances) and/or heal (e.g. [replace])")
        return self


class FreezeWindow(CronWindow):
    """One change-freeze window: opens when ``cron`` fires (in the freeze's time zone), stays open ``duration``."""

    EXAMPLE_DURATION: ClassVar[str] = "62h"

    reason: Annotated[str, Field(max_length=200)] = ""


class ChangeFreeze(ZonedWindows):
    """``groups.NAME.change_freeze``: windows whose cron expressions are read in ``timezone`` (an IANA name)."""

    windows: Annotated[list[FreezeWindow], Field(min_length=1)]


class ApprovalState(str, Enum):
    PENDING = "pending"        # waits for an operator
    APPROVED = "approved"      # an operator approved it: an ``approved`` decision carried it out
    REJECTED = "rejected"      # an operator rejected it
    EXPIRED = "expired"        # nobody approved it in time
    SUPERSEDED = "superseded"  # a newer change of the same group (and kind) waits instead


class ApprovalKind(str, Enum):
    SCALE = "scale"
    HEAL = "heal"


@dataclass(frozen=True)
class PendingApproval:
    """A change that waited for approval: the ``pending_approval`` decision ``decision_id`` (its id is the
    approval's), what it would do (``from_capacity`` -> ``to_capacity``, a heal's ``targets``; ``message``: the
    policy's own words; ``step``: a step policy's direction, whose cooldown runs once it is carried out), why
    it waits (``why``), until when (``expires_at``), and how it ended (``state``, ``resolved_at``,
    ``resolved_by``: who or what, ``resolution_id``: the decision that recorded it)."""

    decision_id: int
    group: str
    kind: ApprovalKind
    policy: str | None
    trigger: Trigger
    step: str | None
    from_capacity: int
    to_capacity: int
    targets: tuple[HealTarget, ...]
    why: str
    message: str
    created_at: datetime
    expires_at: datetime
    state: ApprovalState = ApprovalState.PENDING
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_id: int | None = None

    def waiting(self, now: datetime) -> bool:
        """Still pending and not expired at ``now`` (an expired row is over even before the expiry pass)."""
        return self.state is ApprovalState.PENDING and now < self.expires_at

    def same_change(self, kind: ApprovalKind, from_capacity: int, to_capacity: int,
                    targets: tuple[HealTarget, ...]) -> bool:
        """Would a new change be this one again (a repeat, not a newer change)?"""
        return (self.kind, self.from_capacity, self.to_capacity, self.targets) == \
            (kind, from_capacity, to_capacity, targets)

    def describe(self) -> str:
        if self.kind is ApprovalKind.HEAL:
            return "heal " + ", ".join(f"{t.action} {t.member_id}" for t in self.targets)
        return f"scale {self.from_capacity} -> {self.to_capacity}"
