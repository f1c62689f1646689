"""Table-driven tests of the pure decision code (time passed in, no clock, no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.decide.adjustments import raw_new_capacity
from alertscaler.decide.cooldowns import cooldown_remaining
from alertscaler.decide.evaluator import evaluate_manual, evaluate_step
from alertscaler.model.decisions import Outcome, Reason
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import AdjustmentType, Bounds, Direction, StepPolicy

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CHANGE, EXACT, PERCENT = (AdjustmentType.CHANGE_IN_CAPACITY, AdjustmentType.EXACT_CAPACITY,
                          AdjustmentType.PERCENT_CHANGE_IN_CAPACITY)


@pytest.mark.parametrize(
    ("current", "kind", "adjustment", "min_step", "expected"),
    [
        (2, CHANGE, 1, 0, 3),
        (2, CHANGE, -1, 0, 1),
        (2, CHANGE, 3, 0, 5),
        (4, EXACT, 7, 0, 7),
        (4, EXACT, 0, 0, 0),
        (10, PERCENT, 50, 0, 15),
        (10, PERCENT, 25, 0, 12),       # 2.5 truncates to 2
        (10, PERCENT, -25, 0, 8),       # -2.5 truncates toward zero to -2
        (3, PERCENT, 10, 0, 4),         # 0.3 rounds away from zero to 1
        (3, PERCENT, -10, 0, 2),        # -0.3 rounds away from zero to -1
        (10, PERCENT, 10, 3, 13),       # 1 raised to min_adjustment_step 3
        (10, PERCENT, -10, 3, 7),
        (10, PERCENT, 50, 3, 15),       # 5 already above the min step
        (0, PERCENT, 50, 0, 0),         # nothing to take a percentage of
        (0, PERCENT, 50, 1, 1),         # min step gives an empty group its first instance
    ],
    ids=["change+1", "change-1", "change+3", "exact7", "exact0", "pct+50", "pct+25-truncates",
         "pct-25-truncates", "pct+small-rounds-up", "pct-small-rounds-down", "min-step-up", "min-step-down",
         "min-step-not-needed", "pct-of-zero", "pct-of-zero-min-step"],
)
def test_raw_new_capacity(current: int, kind: AdjustmentType, adjustment: int, min_step: int, expected: int) -> None:
    assert raw_new_capacity(current, kind, adjustment, min_step) == expected


@pytest.mark.parametrize(
    ("last", "cooldown", "now", "left"),
    [
        (None, 60, T0, 0.0),
        (T0, 60, T0 + timedelta(seconds=10), 50.0),
        (T0, 60, T0 + timedelta(seconds=60), 0.0),
        (T0, 60, T0 + timedelta(seconds=90), 0.0),
        (T0, 0, T0, 0.0),
    ],
    ids=["never-stepped", "in-cooldown", "exactly-over", "long-over", "no-cooldown"],
)
def test_cooldown_remaining(last: datetime | None, cooldown: float, now: datetime, left: float) -> None:
    assert cooldown_remaining(last, cooldown, now) == left


def _policy(adjustment: int, kind: AdjustmentType = CHANGE, cooldown: float = 60, min_step: int = 0) -> StepPolicy:
    return StepPolicy(matchers=['alertname="X"'], adjustment_type=kind, adjustment=adjustment,
                      cooldown=cooldown, min_adjustment_step=min_step)


OUT, IN = Direction.SCALE_OUT, Direction.SCALE_IN
B = Bounds(min_size=1, max_size=5)


@pytest.mark.parametrize(
    ("state", "policy", "direction", "now", "outcome", "reason", "to"),
    [
        (GroupState("g", 2), _policy(1), OUT, T0, Outcome.ACTED, Reason.SCALED, 3),
        (GroupState("g", 2), _policy(-1), IN, T0, Outcome.ACTED, Reason.SCALED, 1),
        (GroupState("g", 5), _policy(1), OUT, T0, Outcome.SKIPPED, Reason.AT_MAX, 5),
        (GroupState("g", 1), _policy(-1), IN, T0, Outcome.SKIPPED, Reason.AT_MIN, 1),
        (GroupState("g", 4), _policy(3), OUT, T0, Outcome.ACTED, Reason.CLAMPED, 5),
        (GroupState("g", 3), _policy(-5), IN, T0, Outcome.ACTED, Reason.CLAMPED, 1),
        (GroupState("g", 2, last_scale_out_at=T0), _policy(1), OUT, T0 + timedelta(seconds=30),
         Outcome.SKIPPED, Reason.COOLDOWN, 2),
        (GroupState("g", 2, last_scale_out_at=T0), _policy(1), OUT, T0 + timedelta(seconds=60),
         Outcome.ACTED, Reason.SCALED, 3),
        (GroupState("g", 2, last_scale_in_at=T0), _policy(1), OUT, T0 + timedelta(seconds=1),
         Outcome.ACTED, Reason.SCALED, 3),
        (GroupState("g", 2, last_scale_out_at=T0), _policy(-1), IN, T0 + timedelta(seconds=1),
         Outcome.ACTED, Reason.SCALED, 1),
        (GroupState("g", 3), _policy(3, EXACT), OUT, T0, Outcome.SKIPPED, Reason.NO_CHANGE, 3),
        (GroupState("g", 3), _policy(9, EXACT), OUT, T0, Outcome.ACTED, Reason.CLAMPED, 5),
        (GroupState("g", 5), _policy(9, EXACT), OUT, T0, Outcome.SKIPPED, Reason.AT_MAX, 5),
        (GroupState("g", 1), _policy(0, EXACT), IN, T0, Outcome.SKIPPED, Reason.AT_MIN, 1),
        (GroupState("g", 4), _policy(-10, PERCENT), IN, T0, Outcome.ACTED, Reason.SCALED, 3),
        (GroupState("g", 7), _policy(1), OUT, T0, Outcome.ACTED, Reason.CLAMPED, 5),
    ],
    ids=["out", "in", "at-max", "at-min", "clamped-max", "clamped-min", "cooldown", "cooldown-over",
         "in-cooldown-does-not-block-out", "out-cooldown-does-not-block-in", "exact-same", "exact-clamped",
         "exact-at-max", "exact-at-min", "percent-in", "above-max-after-config-change"],
)
def test_evaluate_step(state: GroupState, policy: StepPolicy, direction: Direction, now: datetime,
                       outcome: Outcome, reason: Reason, to: int) -> None:
    verdict = evaluate_step(state, policy, direction, B, now)
    assert (verdict.outcome, verdict.reason, verdict.to_capacity) == (outcome, reason, to)
    assert verdict.from_capacity == state.desired
    assert verdict.message


@pytest.mark.parametrize(
    ("desired", "asked", "outcome", "reason", "to"),
    [(2, 4, Outcome.ACTED, Reason.MANUAL, 4), (2, 9, Outcome.ACTED, Reason.MANUAL, 5),
     (2, 0, Outcome.ACTED, Reason.MANUAL, 1), (3, 3, Outcome.SKIPPED, Reason.NO_CHANGE, 3)],
    ids=["up", "capped-at-max", "raised-to-min", "same"],
)
def test_evaluate_manual(desired: int, asked: int, outcome: Outcome, reason: Reason, to: int) -> None:
    verdict = evaluate_manual(GroupState("g", desired, last_scale_out_at=T0), asked, B)
    assert (verdict.outcome, verdict.reason, verdict.to_capacity) == (outcome, reason, to)


def test_dry_run_turns_an_action_into_a_recorded_skip() -> None:
    verdict = evaluate_step(GroupState("g", 2), _policy(1), OUT, B, T0).as_dry_run()
    assert (verdict.outcome, verdict.reason, verdict.to_capacity) == (Outcome.SKIPPED, Reason.DRY_RUN, 3)
    assert "would have" in verdict.message


def test_group_state_stepped_starts_only_its_own_cooldown() -> None:
    state = GroupState("g", 2).stepped(OUT, 3, T0)
    assert (state.desired, state.last_scale_out_at, state.last_scale_in_at) == (3, T0, None)
