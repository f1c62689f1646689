"""Step scaling policies and group bounds as values: what ``decide`` needs, nothing about providers."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alertscaler.model.durations import Duration
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


class StepPolicy(_Frozen):
    """Alert-driven step policy (like a Heat ScalingPolicy). ``adjustment`` is signed for changes:
    positive for scale_out, negative for scale_in; for ``exact_capacity`` it is the new size."""

    matchers: Annotated[list[str], Field(min_length=1)]
    adjustment_type: AdjustmentType = AdjustmentType.CHANGE_IN_CAPACITY
    adjustment: int
    min_adjustment_step: Annotated[int, Field(ge=0)] = 0
    cooldown: Duration = 60.0

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
