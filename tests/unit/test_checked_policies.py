"""Checked step policies (``guard`` / ``size_by``): the pure decision with the live check passed in, the
check itself against query functions given by the test, and the policy file's validation of both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from alertscaler.act.checking import Checker
from alertscaler.config import load_policy
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.model.decisions import Outcome, Reason
from alertscaler.model.errors import AmbiguousResult, BadQuery, ConfigError, EmptyResult, PrometheusUnavailable
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Bounds, Direction, LiveCheck, SizeBy, StepPolicy

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
OUT, IN = Direction.SCALE_OUT, Direction.SCALE_IN
BOUNDS = Bounds(min_size=1, max_size=10)
GUARD = 'avg(load5{alertscaler_group="web"}) > 0.8'
LOAD = 'sum(rate(http_requests_total{alertscaler_group="web"}[1m]))'


def step(direction: Direction, **extra: Any) -> StepPolicy:
    adjustment = 1 if direction is OUT else -1
    return StepPolicy(matchers=['alertname="X"'], adjustment=adjustment, cooldown=60, **extra)


SIZED = {"size_by": SizeBy(query=LOAD, per_instance=100)}


@pytest.mark.parametrize(
    ("direction", "policy", "live", "current", "outcome", "reason", "to", "says"),
    [
        (OUT, {"guard": GUARD}, LiveCheck(guard_held=True, guard_series=1), 3, Outcome.ACTED, Reason.SCALED, 4,
         "scale 3 -> 4"),
        (OUT, {"guard": GUARD}, LiveCheck(guard_held=False), 3, Outcome.SKIPPED, Reason.GUARD_FAILED, 3,
         f"guard no longer holds ({GUARD} returned no series): a stale alert, not acted"),
        (OUT, SIZED, LiveCheck(size_value=420.0), 2, Outcome.ACTED, Reason.SCALED, 5,
         "scale 2 -> 5 (live value 420 at 100 per instance needs 5)"),
        (OUT, SIZED, LiveCheck(size_value=400.0), 2, Outcome.ACTED, Reason.SCALED, 4,
         "needs 4"),  # exactly 4 instances' worth: not 5
        (OUT, SIZED, LiveCheck(size_value=150.0), 3, Outcome.SKIPPED, Reason.NO_CHANGE, 3,
         "live value 150 at 100 per instance needs 2; already 3: no scale_out needed"),
        (OUT, SIZED, LiveCheck(size_value=2500.0), 3, Outcome.ACTED, Reason.CLAMPED, 10,
         "scale 3 -> 10 (wanted 25, bounds 1..10) (live value 2500"),
        (OUT, SIZED, LiveCheck(size_value=5000.0), 10, Outcome.SKIPPED, Reason.AT_MAX, 10, "at max_size 10"),
        (OUT, {**SIZED, "min_adjustment_step": 3}, LiveCheck(size_value=350.0), 3, Outcome.ACTED, Reason.SCALED, 6,
         "needs 4, raised to min_adjustment_step 3"),
        (IN, SIZED, LiveCheck(size_value=180.0), 6, Outcome.ACTED, Reason.SCALED, 2, "scale 6 -> 2"),
        (IN, SIZED, LiveCheck(size_value=0.0), 6, Outcome.ACTED, Reason.CLAMPED, 1, "wanted 0, bounds 1..10"),
        (IN, SIZED, LiveCheck(size_value=-3.0), 2, Outcome.ACTED, Reason.CLAMPED, 1, "needs 0"),
        (IN, SIZED, LiveCheck(size_value=590.0), 6, Outcome.SKIPPED, Reason.NO_CHANGE, 6,
         "needs 6; already 6: no scale_in needed"),
        (OUT, {"guard": GUARD, **SIZED}, LiveCheck(guard_held=True, guard_series=2, size_value=700.0), 2,
         Outcome.ACTED, Reason.SCALED, 7, "scale 2 -> 7"),
        (OUT, {"guard": GUARD}, LiveCheck(error="Prometheus at http://p:9090 is unreachable"), 3, Outcome.ACTED,
         Reason.SCALED, 4, "scale 3 -> 4 (live check failed: Prometheus at http://p:9090 is unreachable; fixed "
                           "step, on_check_error: step)"),
        (IN, {"guard": GUARD}, LiveCheck(error="unreachable"), 3, Outcome.SKIPPED, Reason.CHECK_FAILED, 3,
         "live check failed: unreachable; not acted (on_check_error: skip)"),
        (OUT, {"guard": GUARD, "on_check_error": "skip"}, LiveCheck(error="bad"), 3, Outcome.SKIPPED,
         Reason.CHECK_FAILED, 3, "on_check_error: skip"),
        (IN, {**SIZED, "on_check_error": "step"}, LiveCheck(error="no series"), 3, Outcome.ACTED, Reason.SCALED, 2,
         "fixed step"),
        (OUT, {"guard": GUARD}, None, 3, Outcome.ACTED, Reason.SCALED, 4, "scale 3 -> 4"),  # no check: fixed step
    ],
    ids=["guard-holds", "guard-fails-stale", "size-out", "size-exact-multiple", "size-out-not-needed",
         "size-out-clamped", "size-at-max", "size-min-step", "size-in", "size-in-to-zero-clamped",
         "size-negative-value", "size-in-not-needed", "guard-and-size", "error-out-steps", "error-in-skips",
         "error-skip-configured", "error-step-configured-in", "no-live-check"],
)
def test_evaluate_checked_step(direction: Direction, policy: dict[str, Any], live: LiveCheck | None, current: int,
                               outcome: Outcome, reason: Reason, to: int, says: str) -> None:
    verdict = evaluate_step(GroupState("web", current), step(direction, **policy), direction, BOUNDS, T0, live)
    assert (verdict.outcome, verdict.reason, verdict.from_capacity, verdict.to_capacity) == (
        outcome, reason, current, to), verdict.message
    assert says in verdict.message


def test_cooldown_comes_before_the_live_check() -> None:
    state = GroupState("web", 3, last_scale_out_at=T0 - timedelta(seconds=10))
    verdict = evaluate_step(state, step(OUT, guard=GUARD), OUT, BOUNDS, T0, LiveCheck(guard_held=False))
    assert verdict.reason is Reason.COOLDOWN


class Answers:
    """Query functions for ``Checker``: each PromQL gives a value / a series count or raises."""

    def __init__(self, values: dict[str, float | Exception], counts: dict[str, int | Exception]) -> None:
        self.values, self.counts = values, counts
        self.asked: list[str] = []

    def value_of(self, query: str) -> float:
        self.asked.append(query)
        answer = self.values[query]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def series(self, query: str) -> int:
        self.asked.append(query)
        answer = self.counts[query]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    ("policy", "values", "counts", "expected", "asked"),
    [
        ({"guard": GUARD}, {}, {GUARD: 2}, LiveCheck(guard_held=True, guard_series=2), [GUARD]),
        ({"guard": GUARD, **SIZED}, {LOAD: 1.0}, {GUARD: 0}, LiveCheck(guard_held=False), [GUARD]),
        ({"guard": GUARD, **SIZED}, {LOAD: 310.5}, {GUARD: 1},
         LiveCheck(guard_held=True, guard_series=1, size_value=310.5), [GUARD, LOAD]),
        (SIZED, {LOAD: EmptyResult(LOAD)}, {}, LiveCheck(error=str(EmptyResult(LOAD))), [LOAD]),
        (SIZED, {LOAD: AmbiguousResult(LOAD, [{"instance": "a"}, {"instance": "b"}])}, {},
         LiveCheck(error=str(AmbiguousResult(LOAD, [{"instance": "a"}, {"instance": "b"}]))), [LOAD]),
        ({"guard": GUARD}, {}, {GUARD: BadQuery(GUARD, "1:6: parse error", "bad_data", 400)},
         LiveCheck(error=str(BadQuery(GUARD, "1:6: parse error", "bad_data", 400))), [GUARD]),
        ({"guard": GUARD, **SIZED}, {LOAD: PrometheusUnavailable("Prometheus at http://p:9090: timed out")},
         {GUARD: 1}, LiveCheck(guard_held=True, guard_series=1,
                               error="Prometheus at http://p:9090: timed out"), [GUARD, LOAD]),
    ],
    ids=["guard-series", "guard-fails-size-not-asked", "guard-then-size", "size-empty", "size-ambiguous",
         "guard-bad-promql", "size-prometheus-down"],
)
def test_checker(policy: dict[str, Any], values: dict[str, float | Exception], counts: dict[str, int | Exception],
                 expected: LiveCheck, asked: list[str]) -> None:
    answers = Answers(values, counts)
    assert Checker(answers.value_of, answers.series).check(step(OUT, **policy), "group=web") == expected
    assert answers.asked == asked


def test_an_empty_size_by_says_no_series_in_the_decision() -> None:
    live = Checker(Answers({LOAD: EmptyResult(LOAD)}, {}).value_of, lambda q: 1).check(step(IN, **SIZED), "w")
    verdict = evaluate_step(GroupState("web", 4), step(IN, **SIZED), IN, BOUNDS, T0, live)
    assert verdict.reason is Reason.CHECK_FAILED and LOAD in verdict.message


POLICY = """
server: {{auth: {{insecure_no_auth: true}}}}
groups:
  web:
    provider: {{type: fake}}
    max_size: 5
    scale_out: {{matchers: ['alertname="Busy"'], adjustment: 1{extra}}}
"""


@pytest.mark.parametrize(
    ("extra", "errors"),
    [
        (", size_by: {query: 'x', per_instance: 0}",
         ["groups.web.scale_out.size_by.per_instance: Input should be greater than 0"]),
        (", size_by: {query: '', per_instance: 2}",
         ["groups.web.scale_out.size_by.query: String should have at least 1 character"]),
        (", size_by: {per_instance: 2}", ["groups.web.scale_out.size_by.query: required"]),
        (", guard: ''", ["groups.web.scale_out.guard: String should have at least 1 character"]),
        (", guard: up, on_check_error: retry",
         ["groups.web.scale_out.on_check_error: Input should be 'step' or 'skip'"]),
        (", guard: up, check_interval: 0s", ["groups.web.scale_out.check_interval: must be at least 1s"]),
        (", size_by: {query: x, per_instance: 1, target: 3}", ["groups.web.scale_out.size_by.target: unknown key"]),
    ],
    ids=["per-instance-zero", "empty-query", "no-query", "empty-guard", "bad-on-error", "check-interval",
         "unknown-key"],
)
def test_policy_file_errors_name_the_path(extra: str, errors: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(POLICY.format(extra=extra))
    text = str(info.value)
    for error in errors:
        assert error in text, text


def test_a_checked_policy_loads_with_its_defaults() -> None:
    policy = load_policy(POLICY.format(extra=", guard: 'up > 0', size_by: {query: 'sum(x)', per_instance: 50}"))
    scale_out = policy.groups["web"].scale_out
    assert scale_out is not None and scale_out.checked
    assert (scale_out.on_error(OUT), scale_out.on_error(IN), scale_out.check_interval) == ("step", "skip", 15.0)
    with pytest.raises(ValidationError):
        SizeBy(query="x", per_instance=-1)
