"""``decide.tracking.recommend``: HPA-style target tracking, table-driven, time passed in."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.decide.tracking import per_metric, recommend
from alertscaler.model.tracking import (
    Change,
    DirectionRules,
    LimitKind,
    RateLimit,
    Recommendation,
    Select,
    TrackingReason,
    TrackingRules,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULES = TrackingRules(targets=(100.0,), min_size=1, max_size=20)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(("current", "value", "target", "expected"), [
    (4, 150, 100, 6),      # 1.5 x 4
    (4, 109, 100, 4),      # within 10 %
    (4, 111, 100, 5),      # ceil(4.44)
    (4, 50, 100, 2),
    (3, 100, 100, 3),
    (0, 10, 100, 1),       # an empty group with load starts
    (0, 0, 100, 0),
], ids=["up-50pct", "tolerance", "ceil", "half", "on-target", "from-zero", "idle-zero"])
def test_per_metric(current: int, value: float, target: float, expected: int) -> None:
    assert per_metric(current, value, target, 0.1) == expected


CASES = [
    # id, current, values, rules, history, changes -> desired, reason
    ("scale-up", 4, [200.0], RULES, [], [], 8, TrackingReason.SCALED),
    ("no-change", 4, [105.0], RULES, [], [], 4, TrackingReason.NO_CHANGE),
    ("up-limited-to-plus-100pct-or-4", 2, [1000.0], RULES, [], [], 6, TrackingReason.RATE_LIMITED),
    ("up-limit-counts-recent-changes", 4, [300.0], RULES, [], [Change(ago(5), 2, 4)], 6,
     TrackingReason.RATE_LIMITED),
    ("up-limit-period-over", 4, [300.0], RULES, [], [Change(ago(20), 2, 4)], 8, TrackingReason.RATE_LIMITED),
    ("down-held-by-stabilisation", 8, [50.0], RULES, [Recommendation(ago(100), 8)], [], 8,
     TrackingReason.STABILIZED),
    ("down-after-the-window", 8, [50.0], RULES, [Recommendation(ago(400), 8)], [], 4, TrackingReason.SCALED),
    ("down-partly-stabilised", 8, [25.0], RULES, [Recommendation(ago(100), 6)], [], 6, TrackingReason.STABILIZED),
    ("at-max", 20, [300.0], RULES, [], [], 20, TrackingReason.AT_MAX),
    ("capped-by-max", 16, [200.0], RULES, [], [], 20, TrackingReason.AT_MAX),
    ("at-min", 1, [10.0], replace(RULES, scale_down=DirectionRules()), [], [], 1, TrackingReason.NO_CHANGE),
    ("missing-holds", 4, [None], RULES, [], [], 4, TrackingReason.FALLBACK),
    ("missing-fixed-fallback", 4, [None], replace(RULES, fallback=6), [], [], 6, TrackingReason.FALLBACK),
    ("nan-is-missing", 4, [math.nan], RULES, [], [], 4, TrackingReason.FALLBACK),
    ("scale-in-disabled", 8, [10.0], replace(RULES, scale_down=DirectionRules(select=Select.DISABLED)), [], [], 8,
     TrackingReason.RATE_LIMITED),
    ("min-select", 2, [1000.0], replace(RULES, scale_up=DirectionRules(
        limits=(RateLimit(LimitKind.PERCENT, 100, 60), RateLimit(LimitKind.INSTANCES, 1, 60)), select=Select.MIN)),
     [], [], 3, TrackingReason.RATE_LIMITED),
]


@pytest.mark.parametrize(("current", "values", "rules", "history", "changes", "desired", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_recommend(current: int, values: list[float | None], rules: TrackingRules, history: list[Recommendation],
                   changes: list[Change], desired: int, reason: TrackingReason) -> None:
    verdict = recommend(current, values, rules, NOW, history, changes)
    assert (verdict.desired, verdict.reason) == (desired, reason), verdict.message
    assert verdict.message


def test_several_metrics_scale_out_if_any_asks_in_only_if_all_agree() -> None:
    rules = replace(RULES, targets=(100.0, 0.5), scale_down=DirectionRules())
    assert recommend(4, [200.0, 0.25], rules, NOW).desired == 8   # one asks for more: out
    assert recommend(4, [50.0, 0.52], rules, NOW).desired == 4    # one within tolerance: no scale-in
    assert recommend(4, [50.0, 0.25], rules, NOW).desired == 2    # both agree: in


def test_a_mismatched_number_of_values_is_refused() -> None:
    with pytest.raises(ValueError, match="2 metric value"):
        recommend(4, [1.0, 2.0], RULES, NOW)
