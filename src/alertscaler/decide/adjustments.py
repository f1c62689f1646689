"""Capacity arithmetic of step policies, with Heat's rounding. Called by ``decide.evaluator``."""

from __future__ import annotations

import math

from alertscaler.model.policies import AdjustmentType


def raw_new_capacity(
    current: int, adjustment_type: AdjustmentType, adjustment: int, min_adjustment_step: int = 0
) -> int:
    """New capacity before bounds are applied.

    Percent changes round as Heat does: a change smaller than 1 in magnitude rounds away from zero,
    larger ones truncate toward zero; ``min_adjustment_step`` then raises a smaller step to that size.
    Unlike Heat, the sign of the step comes from the configured adjustment, so that a percent step on an
    empty group (delta 0) still goes the configured way.
    """
    if adjustment_type is AdjustmentType.EXACT_CAPACITY:
        return adjustment
    if adjustment_type is AdjustmentType.CHANGE_IN_CAPACITY:
        return current + adjustment
    delta = current * adjustment / 100.0
    rounded = int(math.ceil(delta) if delta > 0 else math.floor(delta)) if abs(delta) < 1.0 else int(delta)
    sign = 1 if adjustment > 0 else -1
    if min_adjustment_step and abs(rounded) < min_adjustment_step:
        rounded = sign * min_adjustment_step
    return current + rounded
