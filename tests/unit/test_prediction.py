"""``decide.prediction``: Holt-Winters on known series (seasons, trend, band, gaps), the seasons learned from the
history's length, the skill gate, ``plan``/``absorb`` bookkeeping, and the simulator's driver giving the same
forecast as the service's on the same history. Table-driven, time passed in, no I/O."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.act.prediction import GroupPredictor
from alertscaler.config.prediction import PredictConfig
from alertscaler.decide.prediction import (
    Fetch,
    PredictorState,
    absorb,
    advance,
    bucket,
    failed,
    fit,
    forecast,
    plan,
    predict,
)
from alertscaler.model.errors import PrometheusUnavailable
from alertscaler.model.prediction import MIN_POINTS, PredictRules, Smoothing
from alertscaler.sim.predicting import SimPredictor

DAY, WEEK, STEP = 86400.0, 604800.0, 300.0
T0 = 1_780_000_200.0  # a multiple of STEP (2026-05-28)


def series(fn: Callable[[float], float], days: float, start: float = T0) -> list[tuple[float, float]]:
    return [(start + i * STEP, fn(start + i * STEP)) for i in range(int(days * DAY / STEP))]


def daily(t: float) -> float:
    return 100 + 50 * math.sin(2 * math.pi * t / DAY)


def weekly(t: float) -> float:
    return daily(t) + 30 * math.sin(2 * math.pi * t / WEEK)


def trending(t: float) -> float:
    return daily(t) + 0.002 * (t - T0)


def flat_line(t: float) -> float:
    return 40 + 0.01 * (t - T0) / STEP  # +0.01 per step


@pytest.mark.parametrize(("fn", "days", "seasons", "smoothing", "ahead", "tolerance"), [
    (daily, 4, (DAY,), Smoothing(), (1, 12, 144), 1.0),
    (weekly, 15, (DAY, WEEK), Smoothing(), (1, 12, 288), 1.0),
    (trending, 5, (DAY,), Smoothing(trend=0.1, damping=1.0), (1, 12), 1.5),
    (flat_line, 2, (), Smoothing(level=0.5, trend=0.2, damping=1.0), (1, 24, 100), 0.05),
], ids=["daily", "daily-and-weekly", "daily-with-trend", "trend-only"])
def test_a_known_series_is_forecast_within_tolerance(fn: Callable[[float], float], days: float,
                                                     seasons: tuple[float, ...], smoothing: Smoothing,
                                                     ahead: tuple[int, ...], tolerance: float) -> None:
    rules = PredictRules(per_instance=10, seasons=seasons, history=3 * WEEK, smoothing=smoothing)
    model = fit(series(fn, days), rules)
    assert not isinstance(model, str)
    assert model.periods == tuple(round(s / STEP) for s in seasons)
    for k in ahead:
        at = model.at + k * STEP
        mean, _ = forecast(model, at, rules)
        assert mean == pytest.approx(fn(at), abs=tolerance), f"{k} steps ahead"


@pytest.mark.parametrize(("days", "learned"), [
    (1.5, ()), (2.0, (DAY,)), (13.0, (DAY,)), (14.0, (DAY, WEEK)),
], ids=["under-two-days", "two-days", "under-two-weeks", "two-weeks"])
def test_a_season_is_learned_once_the_history_covers_two_cycles(days: float, learned: tuple[float, ...]) -> None:
    rules = PredictRules(per_instance=10, history=3 * WEEK)
    model = fit(series(weekly, days), rules)
    assert not isinstance(model, str)
    assert tuple(p * STEP for p in model.periods) == learned


@pytest.mark.parametrize(("noise", "quantile", "z"), [
    (5.0, 0.9, 1.2816), (5.0, 0.75, 0.6745), (5.0, 0.5, 0.0), (0.0, 0.9, 1.2816),
], ids=["q90", "q75", "median-plans-for-the-mean", "no-noise-no-band"])
def test_the_band_and_the_plan_are_quantiles_of_the_one_step_errors(noise: float, quantile: float, z: float) -> None:
    """The 80 % band's half-width is 1.28 x the rms of the one-step errors the model then makes on new data; the
    capacity is planned for ``quantile`` of the same distribution (z x that rms above the mean)."""
    rng = random.Random(7)
    rules = PredictRules(per_instance=10, seasons=(DAY,), quantile=quantile, smoothing=Smoothing(level=0.1))
    points = [(t, v + rng.gauss(0, noise)) for t, v in series(daily, 8)]
    cut = int(6 * DAY / STEP)
    model = fit(points[:cut], rules)
    assert not isinstance(model, str)
    state = PredictorState(model, points[cut - 1][0], math.inf)
    f = predict(state, datetime.fromtimestamp(points[cut - 1][0] + 10, UTC), rules)
    assert f is not None
    errors = []
    for point in points[cut:]:
        errors.append(point[1] - forecast(model, point[0], rules)[0])
        model = advance(model, [point], rules)
    rms = math.sqrt(sum(e * e for e in errors) / len(errors))
    assert (f.upper - f.mean) == pytest.approx(1.2816 * rms, rel=0.2, abs=0.05)
    assert f.mean - f.lower == pytest.approx(f.upper - f.mean, abs=1e-9)
    assert (f.planned - f.mean) == pytest.approx(z * rms, rel=0.2, abs=0.05)
    assert f.ask == math.ceil(f.planned / 10 - 1e-9)


def test_the_band_widens_with_the_horizon() -> None:
    rng = random.Random(3)
    rules = PredictRules(per_instance=10, seasons=(DAY,), smoothing=Smoothing(level=0.5))
    model = fit([(t, v + rng.gauss(0, 3)) for t, v in series(daily, 3)], rules)
    assert not isinstance(model, str)
    widths = [forecast(model, model.at + k * STEP, rules)[1] for k in (1, 2, 6, 24)]
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_gaps_are_filled_with_the_models_own_forecast() -> None:
    rules = PredictRules(per_instance=10, seasons=(DAY,))
    whole = series(daily, 4)
    holed = [p for i, p in enumerate(whole) if not 500 <= i < 540]  # 200 minutes missing
    a, b = fit(whole, rules), fit(holed, rules)
    assert not isinstance(a, str) and not isinstance(b, str)
    assert b.points == a.points - 40
    at = a.at + STEP
    assert forecast(b, at, rules)[0] == pytest.approx(forecast(a, at, rules)[0], abs=1.0)


def test_too_little_history_says_so() -> None:
    rules = PredictRules(per_instance=10)
    assert "not enough history" in str(fit(series(daily, (MIN_POINTS - 1) * STEP / DAY), rules))


def _random_walk(days: float) -> list[tuple[float, float]]:
    rng, level, out = random.Random(5), 100.0, []
    for t, _ in series(daily, days):
        level = max(0.0, level + rng.gauss(0, 3))
        out.append((t, level))
    return out


@pytest.mark.parametrize(("points", "applies"), [
    (series(daily, 4), True),
    (_random_walk(4), False),
], ids=["seasonal-beats-the-last-value", "a-random-walk-does-not"])
def test_the_forecast_applies_only_with_skill(points: list[tuple[float, float]], applies: bool) -> None:
    rules = PredictRules(per_instance=10, seasons=(DAY,))
    state = absorb(PredictorState(), Fetch(points[0][0], points[-1][0], True), points, points[-1][0], rules)
    f = predict(state, datetime.fromtimestamp(points[-1][0] + 1, UTC), rules)
    assert f is not None and f.applies is applies
    assert (f.skill > 0.5) if applies else (f.skill <= 0.0)


def test_bucket_means_the_points_of_each_step_ending_at_the_grid_point() -> None:
    assert bucket([(T0 - 200, 1.0), (T0 - 100, 3.0), (T0, 5.0), (T0 + 1, 7.0), (T0 + 2, math.nan)], STEP) == [
        (T0, 3.0), (T0 + STEP, 7.0)]


RULES = PredictRules(per_instance=10, seasons=(DAY,), history=3 * DAY, refit=DAY)


@pytest.mark.parametrize(("state", "now", "expected"), [
    (PredictorState(), T0 + 17, Fetch(T0 - 3 * DAY + STEP, T0, True)),
    (PredictorState(retry_at=T0 + 60), T0 + 17, None),
], ids=["first-a-full-read", "waits-after-a-failure"])
def test_plan(state: PredictorState, now: float, expected: Fetch | None) -> None:
    assert plan(state, now, RULES) == expected


def test_plan_absorb_full_then_new_points_then_refit() -> None:
    data = dict(series(daily, 6, start=T0 - 3 * DAY))
    def read(fetch: Fetch) -> list[tuple[float, float]]:
        return [(t, v) for t, v in data.items() if fetch.start <= t <= fetch.end]
    state = PredictorState()
    now = T0 + 17
    first = plan(state, now, RULES)
    assert first is not None and first.full
    state = absorb(state, first, read(first), now, RULES)
    assert state.model is not None and state.model.at == T0 and state.next_full == now + DAY
    assert plan(state, now + 60, RULES) is None                 # nothing new within the step
    later = now + 2 * STEP
    fetch = plan(state, later, RULES)
    assert fetch == Fetch(T0 + STEP, T0 + 2 * STEP, False)
    state = absorb(state, fetch, read(fetch), later, RULES)
    assert state.model is not None and state.model.at == T0 + 2 * STEP
    refit = plan(state, now + DAY, RULES)
    assert refit is not None and refit.full


def test_a_full_fit_is_due_early_when_the_history_will_cover_a_new_season() -> None:
    rules = PredictRules(per_instance=10, seasons=(DAY,), history=3 * DAY, refit=3 * DAY)
    points = series(daily, 0.5)
    state = absorb(PredictorState(), Fetch(points[0][0], points[-1][0], True), points, points[-1][0], rules)
    assert state.model is not None and state.model.periods == ()
    # the grid point that completes two days of history, long before the refit (3 days on)
    assert state.next_full == points[0][0] + 2 * DAY - STEP


def test_a_failed_read_keeps_the_model_and_tries_again_a_step_later() -> None:
    points = series(daily, 3)
    state = absorb(PredictorState(), Fetch(points[0][0], points[-1][0], True), points, points[-1][0], RULES)
    worse = failed(state, points[-1][0] + 30, "Prometheus down", RULES)
    assert worse.model == state.model and worse.problem == "Prometheus down"
    assert plan(worse, points[-1][0] + 60, RULES) is None
    assert plan(worse, points[-1][0] + 30 + STEP, RULES) is not None


def test_no_forecast_from_data_older_than_refit() -> None:
    points = series(daily, 3)
    state = absorb(PredictorState(), Fetch(points[0][0], points[-1][0], True), points, points[-1][0], RULES)
    fresh = datetime.fromtimestamp(points[-1][0] + 600, UTC)
    stale = datetime.fromtimestamp(points[-1][0] + DAY + 1, UTC)
    assert predict(state, fresh, RULES) is not None and predict(state, stale, RULES) is None


def test_advance_equals_a_fold_of_the_same_points() -> None:
    rules = PredictRules(per_instance=10, seasons=(DAY,), smoothing=Smoothing(level=0.4))
    points = series(weekly, 4)
    whole = fit(points, rules)
    part = fit(points[:-50], rules)
    assert not isinstance(whole, str) and not isinstance(part, str)
    stepped = advance(part, points[-50:], rules)
    assert stepped.at == whole.at and stepped.points == whole.points
    # the same recursion: only the start differs (fitted on fewer points), and it fades
    assert forecast(stepped, whole.at + STEP, rules)[0] == pytest.approx(forecast(whole, whole.at + STEP, rules)[0],
                                                                          abs=0.5)


def _observations(days: float) -> list[tuple[float, float]]:
    """What a tracking loop sees every 15 s (a seasonal load)."""
    return [(T0 + i * 15.0, daily(T0 + i * 15.0)) for i in range(int(days * DAY / 15))]


def test_the_simulator_and_the_service_make_the_same_forecast_from_the_same_history() -> None:
    config = PredictConfig(query="sum(rate(requests_total[5m]))", per_instance=10, seasons=[DAY], history=3 * DAY,
                           refit=DAY)
    seen = _observations(3.2)
    grid = dict(bucket(seen, STEP))  # what the range query of a rate(...[5m]) gives on the grid

    def history(query: str, start: float, end: float, step: float) -> Sequence[tuple[float, float]]:
        assert (query, step) == (config.query, STEP)
        return [(t, v) for t, v in grid.items() if start <= t <= end and t <= clock[0]]

    clock = [0.0]
    service = GroupPredictor("web", config, history)
    sim = SimPredictor(config.rules())
    compared = 0
    for t, value in seen:
        sim.observe(datetime.fromtimestamp(t, UTC), value)
        if int(t - T0) % 60:
            continue  # a tracking evaluation every minute
        now = datetime.fromtimestamp(t, UTC)
        clock[0] = t
        a, b = service.forecast(now), sim.forecast(now)
        assert a == b
        compared += a is not None
    assert compared > 3000


def test_a_failing_history_is_a_problem_and_no_forecast() -> None:
    def down(query: str, start: float, end: float, step: float) -> Sequence[tuple[float, float]]:
        raise PrometheusUnavailable("connection refused")
    predictor = GroupPredictor("web", PredictConfig(query="q", per_instance=1), down)
    assert predictor.forecast(datetime(2026, 1, 1, tzinfo=UTC)) is None
    view = predictor.view()
    assert view.forecast is None and view.problem is not None and "connection refused" in view.problem
    assert predictor.forecast(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=30)) is None  # waits a step
