"""The only entry point of ``decide``: one step-policy evaluation → a Verdict.

Callers: ``act.processing`` (notifications), ``act.reevaluating`` (alerts that stay firing), ``sim``.
"""

from __future__ import annotations

from datetime import datetime

from alertscaler.decide.adjustments import raw_new_capacity
from alertscaler.decide.cooldowns import cooldown_remaining
from alertscaler.model.decisions import Outcome, Reason, Verdict
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import AdjustmentType, Bounds, Direction, StepPolicy


def evaluate_step(
    state: GroupState, policy: StepPolicy, direction: Direction, bounds: Bounds, now: datetime
) -> Verdict:
    """Decide what a firing alert routed to ``policy`` does to a group in ``state`` at ``now``."""
    current = state.desired
    left = cooldown_remaining(state.last_step_at(direction), policy.cooldown, now)
    if left > 0:
        return _skip(Reason.COOLDOWN, current, f"{direction.value} cooldown: {left:.0f}s left")
    wanted = raw_new_capacity(current, policy.adjustment_type, policy.adjustment, policy.min_adjustment_step)
    target = bounds.clamp(wanted)
    if target == current:
        if policy.adjustment_type is AdjustmentType.EXACT_CAPACITY and wanted == current:
            return _skip(Reason.NO_CHANGE, current, f"already at {current}")
        if wanted > current:
            return _skip(Reason.AT_MAX, current, f"at max_size {bounds.max_size}")
        return _skip(Reason.AT_MIN, current, f"at min_size {bounds.min_size}")
    if target != wanted:
        return Verdict(Outcome.ACTED, Reason.CLAMPED, current, target,
                       f"scale {current} -> {target} (wanted {wanted}, bounds {bounds.min_size}..{bounds.max_size})")
    return Verdict(Outcome.ACTED, Reason.SCALED, current, target, f"scale {current} -> {target}")


def evaluate_manual(state: GroupState, desired: int, bounds: Bounds) -> Verdict:
    """An operator's explicit request: bounds still apply, cooldowns do not."""
    current = state.desired
    target = bounds.clamp(desired)
    if target == current:
        return _skip(Reason.NO_CHANGE, current, f"already at {current}")
    note = "" if target == desired else f" (asked {desired}, bounds {bounds.min_size}..{bounds.max_size})"
    return Verdict(Outcome.ACTED, Reason.MANUAL, current, target, f"manual scale {current} -> {target}{note}")


def _skip(reason: Reason, current: int, message: str) -> Verdict:
    return Verdict(Outcome.SKIPPED, reason, current, current, message)
