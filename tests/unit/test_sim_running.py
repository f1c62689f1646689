"""``sim.running`` with ``sim.controllers``: the loop is deterministic, and every decision is made by the real
``decide`` code — step policies through ``evaluate_step`` (cooldowns, alertscaler's re-evaluation of an alert
that stays firing), target tracking through ``recommend`` (HPA's rate limits and stabilisation window), HPA
through ``settle`` after its replica calculator."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

import pytest

from alertscaler.decide import evaluator, tracking
from alertscaler.model.decisions import Reason, Verdict
from alertscaler.model.policies import StepPolicy
from alertscaler.sim import controllers
from alertscaler.sim.comparing import compare, prepare_trace
from alertscaler.sim.running import _Booting, _cancel, simulate, simulate_all, step_for
from alertscaler.sim.scenarios import (
    Metric,
    Policy,
    Scenario,
    StepAlertPolicy,
    TrackingPolicy,
    alertscaler_predictive,
    alertscaler_sized,
    alertscaler_step,
    alertscaler_tracking,
    hpa_cpu,
    hpa_rps,
    seed_step,
)
from alertscaler.sim.traces import Trace


def per_minute(*rates: float) -> Trace:
    return Trace(tuple(float(r) for r in rates), tuple(60.0 * i for i in range(len(rates))), 60.0 * len(rates))


def step_policy(**changes: Any) -> StepAlertPolicy:
    base = StepAlertPolicy("step", scale_out=StepPolicy(matchers=['alertname="High"'], adjustment=1, cooldown=60),
                           high=0.8, high_for=0.0, interval=15.0)
    return replace(base, **changes)


def scenario(trace: Trace, **changes: Any) -> Scenario:
    return replace(Scenario(trace, capacity=40.0, delay=0.0, min_size=1, max_size=40, metric_window=0.0), **changes)


def moves(run: Any) -> list[tuple[float, int, int]]:
    return [(a.at, a.from_size, a.to_size) for a in run.actions]


@pytest.fixture
def step_calls(monkeypatch: pytest.MonkeyPatch) -> list[Verdict]:
    """Every verdict ``evaluate_step`` returns to the simulator (the real function, observed)."""
    assert controllers.evaluate_step is evaluator.evaluate_step  # type: ignore[attr-defined]
    seen: list[Verdict] = []

    def spy(*args: Any, **kwargs: Any) -> Verdict:
        verdict = evaluator.evaluate_step(*args, **kwargs)
        seen.append(verdict)
        return verdict

    monkeypatch.setattr(controllers, "evaluate_step", spy)
    return seen


@pytest.fixture
def tracking_calls(monkeypatch: pytest.MonkeyPatch) -> list[tracking.TrackingVerdict]:
    assert controllers.recommend is tracking.recommend  # type: ignore[attr-defined]
    seen: list[tracking.TrackingVerdict] = []

    def spy(*args: Any, **kwargs: Any) -> tracking.TrackingVerdict:
        verdict = tracking.recommend(*args, **kwargs)
        seen.append(verdict)
        return verdict

    monkeypatch.setattr(controllers, "recommend", spy)
    return seen


# -- step policies through evaluate_step ----------------------------------------------------------------------


def test_a_firing_alert_steps_again_after_each_cooldown(step_calls: list[Verdict]) -> None:
    # 400 req/s on 2 instances of 40: saturated; the alert (> 0.8) holds until 13 instances (0.77)
    run = simulate(scenario(per_minute(*[400] * 15), initial=2), step_policy())
    assert moves(run) == [(60.0 * i, 2 + i, 3 + i) for i in range(11)]
    # evaluated every 15 s while firing; between steps evaluate_step answered "cooldown"
    assert len(step_calls) == 41
    assert {v.reason for v in step_calls if not v.acted} == {Reason.COOLDOWN}


def test_without_reevaluation_a_firing_alert_steps_once(step_calls: list[Verdict]) -> None:
    run = simulate(scenario(per_minute(*[400] * 15), initial=2), step_policy(reevaluate=False))
    assert moves(run) == [(0.0, 2, 3)]
    assert len(step_calls) == 1


def test_the_alert_fires_only_after_its_for_duration() -> None:
    run = simulate(scenario(per_minute(*[400] * 5), initial=2), step_policy(high_for=60.0))
    assert moves(run)[:2] == [(60.0, 2, 3), (120.0, 3, 4)]


def test_a_low_alert_scales_in_at_once_and_stops_at_its_threshold() -> None:
    policy = step_policy(scale_in=StepPolicy(matchers=['alertname="Low"'], adjustment=-1, cooldown=60), low=0.2)
    run = simulate(scenario(per_minute(*[40] * 10), initial=10), policy)   # 0.1 until 5 instances (0.2)
    assert moves(run) == [(60.0 * i, 10 - i, 9 - i) for i in range(5)]
    assert run.series.supply[0] == 9  # the instance is gone in the same step: scale-in is immediate


def test_bounds_hold_through_evaluate_step(step_calls: list[Verdict]) -> None:
    run = simulate(scenario(per_minute(*[4000] * 4), initial=2, max_size=4), step_policy())
    assert moves(run) == [(0.0, 2, 3), (60.0, 3, 4)]
    assert Reason.AT_MAX in {v.reason for v in step_calls}


# -- target tracking through recommend -----------------------------------------------------------------------


RPS = TrackingPolicy("rps", Metric.RPS, 20.0, interval=15.0)  # HPA's defaults: tolerance, limits, windows


def test_tracking_follows_hpa_rate_limits_and_scale_down_window(
        tracking_calls: list[tracking.TrackingVerdict]) -> None:
    trace = per_minute(*[100] * 5, *[400] * 5, *[100] * 10)
    run = simulate(scenario(trace, initial=5), RPS)
    assert run.initial == 5  # 100 / 20
    # 5 -> 20 is cut to +100 % per 15 s; back to 5 only when the 300 s window has no 20 left
    assert moves(run) == [(300.0, 5, 10), (315.0, 10, 20), (885.0, 20, 5)]
    assert len(tracking_calls) == 80  # one recommendation per 15 s
    assert tracking_calls[20].reason is tracking.TrackingReason.RATE_LIMITED


def test_new_instances_serve_only_after_the_delay() -> None:
    run = simulate(scenario(per_minute(*[100] * 5, *[400] * 5), delay=60.0, initial=5), RPS)
    assert moves(run) == [(300.0, 5, 10), (315.0, 10, 20)]  # booting instances count: no double asking
    at = {t: i for i, t in enumerate(run.series.times)}
    assert run.series.desired[at[315.0]] == 20
    assert [run.series.supply[at[t]] for t in (345.0, 360.0, 375.0)] == [5, 10, 20]


@pytest.mark.parametrize(("cpu_limit", "expected"), [
    # limits = requests: 5 ready instances at 100 % look like 1.0 / 0.5 = 2x: 10; the 5 booting ones count at
    # 0 % (new ratio 1.0: within tolerance), so nothing more until they serve
    (1.0, [(300.0, 5, 10), (360.0, 10, 20)]),
    # limits 2 x requests: CPU reads 200 %, 4x the target: 20, cut to +100 % per 15 s; 15 s later the booting
    # ones at 0 % still leave 2x: 20
    (2.0, [(300.0, 5, 10), (315.0, 10, 20)]),
], ids=["limits-equal-requests", "limits-twice-requests"])
def test_hpa_on_cpu_sees_as_far_as_the_cpu_limit(cpu_limit: float, expected: list[tuple[float, int, int]]) -> None:
    sc = scenario(per_minute(*[100] * 5, *[400] * 5), delay=60.0, initial=5, cpu_limit=cpu_limit)
    assert moves(simulate(sc, hpa_cpu(0.5)))[:len(expected)] == expected


def test_predicting_one_delay_ahead_scales_out_earlier_on_a_ramp() -> None:
    ramp = per_minute(*[100 + 20 * i for i in range(30)])
    plain = simulate(scenario(ramp, delay=120.0, initial=5), RPS)
    ahead = simulate(scenario(ramp, delay=120.0, initial=5), replace(RPS, lookahead=120.0, trend_window=180.0))
    assert (ahead.actions[0].at, ahead.actions[0].to_size) == (plain.actions[0].at, 8)
    assert plain.actions[0].to_size == 6
    reach_10 = [next(a.at for a in r.actions if a.to_size >= 10) for r in (plain, ahead)]
    assert reach_10 == [300.0, 195.0]


def test_a_sized_step_meets_a_burst_in_one_decision_through_evaluate_step(step_calls: list[Verdict]) -> None:
    """``size_by`` in the simulator: the live value is the replayed demand; 10 -> 300 req/s at 28 per instance
    (0.7 x 40) is one step from 1 to ceil(300 / 28) = 11, where the fixed +50 % policy climbs."""
    sc = scenario(per_minute(10, *[300] * 12))
    policy = replace(alertscaler_sized(0.7, 40.0), high_for=0.0, interval=15.0)
    run = simulate(sc, policy)
    assert moves(run)[0] == (60.0, 1, 11)
    assert "live value 300 at 28 per instance needs 11" in step_calls[0].message
    climbing = simulate(sc, replace(alertscaler_step(0.7), high_for=0.0, interval=15.0))
    assert len(climbing.actions) > len(run.actions)


# -- the loop -------------------------------------------------------------------------------------------------


def test_same_input_same_output() -> None:
    trace = prepare_trace("worldcup98", start="1998-06-29 12:00", minutes=6 * 60, speed=4.0)
    sc = Scenario(trace, delay=120.0)
    policies: list[Policy] = [alertscaler_tracking(), alertscaler_predictive(lookahead=120.0), alertscaler_step(),
                              hpa_rps(28.0), hpa_cpu(), seed_step()]
    first, second = simulate_all(sc, policies), simulate_all(sc, policies)
    assert first == second
    assert compare(sc, policies[0]).as_dict() == compare(sc, policies[0]).as_dict()
    assert all(run.actions for run in first)


@pytest.mark.parametrize(("trace", "delay", "interval", "expected"), [
    (per_minute(1, 2), 60.0, 15.0, 15.0),
    (per_minute(1, 2), 45.0, 10.0, 5.0),
    (per_minute(1, 2).compressed(7), 60.0, 15.0, 1.0),   # 60/7 s samples: whole seconds, events wait
    (per_minute(1, 2), 0.0, 60.0, 60.0),                  # no delay: not part of the step
], ids=["default", "gcd", "odd-speed", "no-delay"])
def test_step(trace: Trace, delay: float, interval: float, expected: float) -> None:
    assert step_for(Scenario(trace, delay=delay, interval=interval), [replace(RPS, interval=None)]) == expected


def test_scale_in_cancels_booting_instances_newest_first() -> None:
    pending = deque([_Booting(100.0, 2), _Booting(115.0, 3)])
    assert _cancel(pending, 4) == 0
    assert list(pending) == [_Booting(100.0, 1)]
    assert _cancel(pending, 3) == 2 and not pending


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda: Scenario(per_minute(1, 2), capacity=0), "capacity"),
    (lambda: Scenario(per_minute(1, 2), min_size=3, max_size=2), "min (3) <= max (2)"),
    (lambda: Scenario(per_minute(1, 2), initial=9, max_size=5), "initial size 9"),
    (lambda: Scenario(per_minute(1, 2), target=1.5), "target must be a utilisation"),
    (lambda: Scenario(per_minute(1, 2), cpu_limit=0.5), "CPU limit"),
    (lambda: step_policy(low=0.9), "low (0.9) < high (0.8)"),
    (lambda: alertscaler_tracking(0), "target"),
], ids=["capacity", "bounds", "initial", "oracle-target", "cpu-limit", "thresholds", "tracking-target"])
def test_bad_scenarios_and_policies(make: Any, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        make()
    assert fragment in str(caught.value)
