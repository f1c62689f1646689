"""The only entry point of ``decide``: one step-policy evaluation → a Verdict.

Callers: ``act.processing`` (notifications), ``act.reevaluating`` (alerts that stay firing), ``sim``.
"""

from __future__ import annotations

from datetime import datetime

from alertscaler.decide.adjustments import raw_new_capacity
from alertscaler.decide.cooldowns import cooldown_remaining
from alertscaler.model.decisions import Outcome, Reason, Verdict
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import AdjustmentType, Bounds, Direction, LiveCheck, StepPolicy


def evaluate_step(
    state: GroupState, policy: StepPolicy, direction: Direction, bounds: Bounds, now: datetime,
    live: LiveCheck | None = None,
) -> Verdict:
    """Decide what a firing alert routed to ``policy`` does to a group in ``state`` at ``now``.

    ``live``: what the live check of a checked policy (``guard`` / ``size_by``) found; without it a checked
    policy takes its fixed step (the caller checks the cooldown this way before paying for a query)."""
    current = state.desired
    left = cooldown_remaining(state.last_step_at(direction), policy.cooldown, now)
    if left > 0:
        return _skip(Reason.COOLDOWN, current, f"{direction.value} cooldown: {left:.0f}s left")
    note = ""
    wanted: int | None = None
    if live is not None and live.error is not None:
        if policy.on_error(direction) == "skip":
            return _skip(Reason.CHECK_FAILED, current,
                         f"live check failed: {live.error}; not acted (on_check_error: skip)")
        note = f" (live check failed: {live.error}; fixed step, on_check_error: step)"
    elif live is not None:
        if live.guard_held is False:
            return _skip(Reason.GUARD_FAILED, current,
                         f"guard no longer holds ({policy.guard} returned no series): a stale alert, not acted")
        if live.size_value is not None and policy.size_by is not None:
            wanted, sized = _sized(current, policy, direction, live.size_value)
            if wanted is None:
                return _skip(Reason.NO_CHANGE, current, sized)
            note = f" ({sized})"
    if wanted is None:
        wanted = raw_new_capacity(current, policy.adjustment_type, policy.adjustment, policy.min_adjustment_step)
    target = bounds.clamp(wanted)
    if target == current:
        if policy.adjustment_type is AdjustmentType.EXACT_CAPACITY and wanted == current:
            return _skip(Reason.NO_CHANGE, current, f"already at {current}{note}")
        if wanted > current:
            return _skip(Reason.AT_MAX, current, f"at max_size {bounds.max_size}{note}")
        return _skip(Reason.AT_MIN, current, f"at min_size {bounds.min_size}{note}")
    if target != wanted:
        return Verdict(Outcome.ACTED, Reason.CLAMPED, current, target,
                       f"scale {current} -> {target} (wanted {wanted}, bounds {bounds.min_size}..{bounds.max_size})"
                       f"{note}")
    return Verdict(Outcome.ACTED, Reason.SCALED, current, target, f"scale {current} -> {target}{note}")


def _sized(current: int, policy: StepPolicy, direction: Direction, value: float) -> tuple[int | None, str]:
    """The capacity ``size_by`` asks for (None: none in this policy's direction) and how it was found. A
    smaller step than ``min_adjustment_step`` is raised to it, as for fixed steps."""
    assert policy.size_by is not None
    per = policy.size_by.per_instance
    needed = policy.size_by.needed(value)
    how = f"live value {value:g} at {per:g} per instance needs {needed}"
    outward = direction is Direction.SCALE_OUT
    if (needed <= current) if outward else (needed >= current):
        return None, f"{how}; already {current}: no {direction.value} needed"
    step = policy.min_adjustment_step
    if step and abs(needed - current) < step:
        needed = current + step if outward else current - step
        how += f", raised to min_adjustment_step {step}"
    return needed, how


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
