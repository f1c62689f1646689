"""Step scaling policies and group bounds as values: what ``decide`` needs, nothing about providers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alertscaler.model.durations import Duration, Interval
from alertscaler.model.matchers import MatcherSet


class Direction(str, Enum):
    SCALE_OUT = "scale_out"
    SCALE_IN = "scale_in"


class AdjustmentType(str, Enum):
    CHANGE_IN_CAPACITY = "change_in_capacity"
    EXACT_CAPACITY = "exact_capacity"
    PERCENT_CHANGE_IN_CAPACITY = "percent_change_in_capacity"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SizeBy(_Frozen):
    """``size_by``: the step is computed from a live value instead of the fixed ``adjustment``: the group
    is sized to ``ceil(value / per_instance)``, ``value`` being what ``query`` gives when the alert fires
    (the total load the group must carry, e.g. requests per second)."""

    query: Annotated[str, Field(min_length=1)]
    per_instance: Annotated[float, Field(gt=0)]

    def needed(self, value: float) -> int:
        """Instances needed for ``value`` (a negative value needs none; float noise is not a whole one)."""
        return max(0, math.ceil(round(value / self.per_instance, 9)))


class StepPolicy(_Frozen):
    """Alert-driven step policy (like a Heat ScalingPolicy). ``adjustment`` is signed for changes:
    positive for scale_out, negative for scale_in; for ``exact_capacity`` it is the new size.

    ``guard`` and ``size_by`` make the policy *checked*: when its alert fires (and each time a still-firing
    alert is due again) the condition is re-checked live in Prometheus before acting. ``guard`` holds when
    its PromQL returns at least one series (as an alert expression does); ``on_check_error`` says what a
    check that cannot be made does: ``step`` (the fixed ``adjustment``) or ``skip`` (default: ``step`` for
    scale_out, ``skip`` for scale_in: when in doubt, keep capacity). A still-firing alert whose check said
    no is checked again every ``check_interval``."""

    matchers: Annotated[list[str], Field(min_length=1)]
    adjustment_type: AdjustmentType = AdjustmentType.CHANGE_IN_CAPACITY
    adjustment: int
    min_adjustment_step: Annotated[int, Field(ge=0)] = 0
    cooldown: Duration = 60.0
    guard: Annotated[str, Field(min_length=1)] | None = None
    size_by: SizeBy | None = None
    on_check_error: Literal["step", "skip"] | None = None
    check_interval: Interval = 15.0

    @property
    def checked(self) -> bool:
        return self.guard is not None or self.size_by is not None

    def on_error(self, direction: Direction) -> Literal["step", "skip"]:
        if self.on_check_error is not None:
            return self.on_check_error
        return "step" if direction is Direction.SCALE_OUT else "skip"

    @field_validator("matchers")
    @classmethod
    def _valid_matchers(cls, value: list[str]) -> list[str]:
        MatcherSet.parse(value)  # raises ValueError naming the bad matcher
        return value

    @property
    def matcher_set(self) -> MatcherSet:
        return MatcherSet.parse(self.matchers)

    @staticmethod
    def check_sign(kind: AdjustmentType, adjustment: int, direction: Direction) -> None:
        """Raise ValueError if the adjustment's sign contradicts the policy's direction."""
        if kind is AdjustmentType.EXACT_CAPACITY:
            if adjustment < 0:
                raise ValueError("exact_capacity must be >= 0")
            return
        if direction is Direction.SCALE_OUT and adjustment <= 0:
            raise ValueError("must be positive for scale_out (e.g. 1)")
        if direction is Direction.SCALE_IN and adjustment >= 0:
            raise ValueError("must be negative for scale_in (e.g. -1)")


class Bounds(_Frozen):
    min_size: Annotated[int, Field(ge=0)] = 0
    max_size: Annotated[int, Field(ge=0)] = 1

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) is greater than max_size ({self.max_size})")
        return self

    def clamp(self, capacity: int) -> int:
        return max(self.min_size, min(self.max_size, capacity))


@dataclass(frozen=True)
class LiveCheck:
    """What the live check of a checked step policy found, handed to ``decide`` (which does no I/O).
    ``guard_held`` / ``size_value`` are None when the policy has no guard / no size_by; ``error`` says
    why the check could not be made (Prometheus down, bad PromQL, no or several series for size_by)."""

    guard_held: bool | None = None
    guard_series: int = 0
    size_value: float | None = None
    error: str | None = None
