"""Groups as values: the durable state alertscaler keeps (desired, cooldown clocks) and what providers report."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from alertscaler.model.policies import Direction


class MemberState(str, Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Member:
    """One instance of a group, as its provider reports it."""

    id: str
    address: str | None
    state: MemberState
    created_at: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupStatus:
    """What a provider says about a group right now. ``current`` is None when the provider cannot tell."""

    current: int | None
    members: tuple[Member, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class GroupState:
    """What alertscaler remembers about a group: its desired capacity, the cooldown clocks, and until when a
    manual scale holds the size (``held_until``: policies may not move it before; None: no hold)."""

    name: str
    desired: int
    last_scale_out_at: datetime | None = None
    last_scale_in_at: datetime | None = None
    updated_at: datetime | None = None
    held_until: datetime | None = None

    def held(self, now: datetime) -> bool:
        """Does a manual scale's hold keep policies from moving the group at ``now``?"""
        return self.held_until is not None and now < self.held_until

    def last_step_at(self, direction: Direction) -> datetime | None:
        return self.last_scale_out_at if direction is Direction.SCALE_OUT else self.last_scale_in_at

    def resized(self, desired: int, at: datetime) -> GroupState:
        """A new desired capacity that is not a step (manual, schedule, reconcile): no cooldown clock runs."""
        return replace(self, desired=desired, updated_at=at)

    def stepped(self, direction: Direction, desired: int, at: datetime) -> GroupState:
        """A step of ``direction`` to ``desired`` at ``at``: that direction's cooldown clock starts."""
        if direction is Direction.SCALE_OUT:
            return replace(self, desired=desired, last_scale_out_at=at, updated_at=at)
        return replace(self, desired=desired, last_scale_in_at=at, updated_at=at)
