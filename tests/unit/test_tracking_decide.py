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


# the forecast's ask combined with the metrics (a group's ``predict`` section): the larger wins, a scale-in needs
# both to agree; the stabilisation window, rate limits and bounds apply to the combination
NO_WINDOW = replace(RULES, scale_down=DirectionRules(0.0, RULES.scale_down.limits))
COMBINED = [
    # id, current, metric value, forecast's ask, rules, history -> desired, reason
    ("forecast-larger-wins", 4, 100.0, 7, RULES, [], 7, TrackingReason.PREDICTED),
    ("metrics-larger-win", 4, 200.0, 5, RULES, [], 8, TrackingReason.SCALED),
    ("forecast-equal-to-metrics", 4, 200.0, 8, RULES, [], 8, TrackingReason.SCALED),
    ("no-forecast-is-metrics-alone", 4, 200.0, None, RULES, [], 8, TrackingReason.SCALED),
    ("metrics-in-forecast-holds", 8, 50.0, 8, NO_WINDOW, [], 8, TrackingReason.NO_CHANGE),
    ("metrics-in-forecast-up", 8, 50.0, 10, NO_WINDOW, [], 10, TrackingReason.PREDICTED),
    ("both-in-to-the-larger", 8, 50.0, 6, NO_WINDOW, [], 6, TrackingReason.SCALED),
    ("forecast-in-metrics-hold", 8, 100.0, 3, NO_WINDOW, [], 8, TrackingReason.NO_CHANGE),
    ("both-in-held-by-the-window", 8, 50.0, 6, RULES, [Recommendation(ago(100), 8)], 8, TrackingReason.STABILIZED),
    ("forecast-capped-by-max", 16, 100.0, 30, RULES, [], 20, TrackingReason.PREDICTED),
    ("forecast-rate-limited", 2, 100.0, 12, RULES, [], 6, TrackingReason.PREDICTED),
    ("missing-metric-falls-back", 4, None, 9, RULES, [], 4, TrackingReason.FALLBACK),
]


@pytest.mark.parametrize(("current", "value", "predicted", "rules", "history", "desired", "reason"),
                         [c[1:] for c in COMBINED], ids=[c[0] for c in COMBINED])
def test_the_forecast_combined_with_the_metrics(current: int, value: float | None, predicted: int | None,
                                                rules: TrackingRules, history: list[Recommendation], desired: int,
                                                reason: TrackingReason) -> None:
    verdict = recommend(current, [value], rules, NOW, history, predicted=predicted)
    assert (verdict.desired, verdict.reason) == (desired, reason), verdict.message
    if reason is TrackingReason.PREDICTED:
        assert verdict.message.startswith(f"the forecast asks {predicted}")


@pytest.mark.parametrize(("value", "up", "down", "expected"), [
    (103.0, 0.0, 0.2, 5),    # 3 % above: no tolerance up
    (85.0, 0.0, 0.2, 4),     # 15 % below: within the down tolerance
    (75.0, 0.0, 0.2, 3),     # 25 % below: out of it
    (103.0, None, None, 4),  # both directions at track.tolerance (0.1)
    (85.0, None, 0.2, 4),
    (85.0, 0.05, None, 4),   # 15 % below, down at 0.1: ceil(3.4) = 4 anyway
], ids=["up-0", "down-0.2-holds", "down-0.2-out", "symmetric", "down-only", "up-only"])
def test_each_direction_may_have_its_own_tolerance(value: float, up: float | None, down: float | None,
                                                   expected: int) -> None:
    rules = replace(RULES, scale_up=replace(RULES.scale_up, tolerance=up),
                    scale_down=DirectionRules(0.0, RULES.scale_down.limits, tolerance=down))
    assert recommend(4, [value], rules, NOW).desired == expected
