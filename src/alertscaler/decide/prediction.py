"""Pure load forecasting for predictive scaling: additive Holt-Winters with a damped trend and any number of
seasons (daily and weekly by default: Taylor's double-seasonal exponential smoothing), an uncertainty band,
and the bookkeeping of WHEN history must be read (``plan``) and how what was read is taken in (``absorb``).

No I/O, no clock: times (Unix seconds, or aware datetimes where noted) are passed in. Two drivers run the same
functions, so the simulator replays exactly what the service does:

* the service (``act.prediction``): ``plan`` says what to read, a range query of the group's ``predict.query``
  over that span at ``step`` reads it, ``absorb`` takes it in (or ``failed`` notes why it could not be read),
  ``predict`` gives the forecast one ``lead`` ahead;
* the simulator (``sim.predicting``): the same, the span read from the demand it has replayed so far.

The model, on the grid of multiples of ``step`` (Unix time, so a season's phase is the same day after day):

    forecast(t+k) = level + trend*(phi + ... + phi^k) + sum over seasons of s[phase(t+k)]
    level <- alpha*(y - sum s) + (1 - alpha)*(level + phi*trend)
    trend <- beta*(level' - level) + (1 - beta)*phi*trend
    s[ph] <- gamma*(y - level' - the other seasons' s) + (1 - gamma)*s[ph]        (each season in turn)

A season is learned once the history covers ``MIN_CYCLES`` of its cycles. The start, over the whole cycles of
the longest season at the head of the history (every phase seen equally often): a line through the means of
the first and the last cycle (level and trend; a least-squares line through a season would be tilted by it)
and each season's indices, the mean deviation from that line at each phase (shorter seasons first); without a
season, a least-squares line. Then the recursion runs over the whole history. The trend,
damping and season constants are given (``predict.smoothing``); the level's constant alpha is chosen at each
fit from ``LEVEL_GRID``, the one with the least squared one-step error over the history (the later half at
least), unless given. A fit is a few passes over the history (tens of milliseconds for three weeks at 5
minutes), deterministic; in between two fits each new point is one more step of the recursion.

The band: s2, an exponentially weighted mean of the squared one-step errors over about a day
(``BAND_MEMORY``), widened for a forecast k steps ahead as for additive Holt-Winters,
s2_k = s2*(1 + sum over j < k of (alpha*(1 + j*beta))^2); the band shown is mean -/+ z*sqrt(s2_k) with z
the normal quantile of the central ``BAND`` (80 %), and capacity is planned for the ``quantile`` of the same
normal distribution (the mean by default). Skill: the same weighted mean of the squared errors of the naive forecast
(the last value, which is what reactive tracking acts on) is kept beside it; ``Model.skill`` = 1 - s2 / that.
A forecast ``applies`` (its ask is combined with the metrics') only while its skill is above
``min_skill``: where the history has no pattern the forecast only adds its band's cost, so it stays out.
Missing points (gaps in the history) are filled with the model's own one-step forecast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from statistics import NormalDist

from alertscaler.model.prediction import BAND, MIN_CYCLES, MIN_POINTS, Forecast, PredictRules

__all__ = ["BAND_MEMORY", "Fetch", "Model", "PredictorState", "absorb", "advance", "bucket", "failed", "fit",
           "forecast", "plan", "predict"]

#: the band's s2 forgets one-step errors over about this long (seconds; at least ``MIN_POINTS`` steps)
BAND_MEMORY = 86400.0
#: the level's smoothing constants ``fit`` chooses from when ``predict.smoothing.level`` is not given
LEVEL_GRID = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
_EPS = 1e-9


@dataclass(frozen=True)
class Model:
    """A fitted Holt-Winters state after the grid point ``at`` (Unix s): level, trend, the seasons learned
    (their lengths in steps, ``periods``, and indices by absolute phase), s2 of the one-step errors, the
    number of points it was fed (gaps not counted), the first grid point of its history; s2 and the skill count
    only the errors after the start's window (``scored``)."""

    at: float
    level: float
    trend: float
    periods: tuple[int, ...]
    seasonal: tuple[tuple[float, ...], ...]
    sigma2: float
    points: int
    first: float
    alpha: float = 0.3                  # the level's smoothing constant (given, or chosen by ``fit``)
    naive2: float = 0.0                 # the same mean of a naive forecast's squared errors (the last value)
    last: float | None = None           # the last value fed (for the naive forecast)
    scored: int = 0                     # one-step errors counted in s2 and the skill (out of sample)

    @property
    def skill(self) -> float:
        """1 - the model's mean squared one-step error / the naive forecast's (> 0: the model does better than
        taking the last value, which is what reactive tracking does; 0 until ``MIN_POINTS`` errors were seen)."""
        if self.scored < MIN_POINTS or self.naive2 <= 0:
            return 0.0  # too few errors seen out of sample to tell
        return 1.0 - self.sigma2 / self.naive2


@dataclass(frozen=True)
class Fetch:
    """History to read: the grid points from ``start`` to ``end`` (Unix s, inclusive); ``full``: the whole
    history, for a new fit (else only the points after the model's last, to fold in)."""

    start: float
    end: float
    full: bool


@dataclass(frozen=True)
class PredictorState:
    """One group's predictor between evaluations: its model (None: none yet), when it was fitted, when the next
    full fit is due, not before when to try again after a failure, and the last problem (None: fine)."""

    model: Model | None = None
    fitted_at: float | None = None
    next_full: float = -math.inf
    retry_at: float = -math.inf
    problem: str | None = None


def unix(at: datetime) -> float:
    return at.timestamp()


def bucket(points: Iterable[tuple[float, float]], step: float) -> list[tuple[float, float]]:
    """Points at any times → one per grid point ``p`` (a multiple of ``step``): the mean of the values in
    ``(p - step, p]``, as a ``rate(...[step])`` evaluated at ``p`` gives it. NaN and negative values are left out.
    A range query's answer on the grid passes unchanged."""
    sums: dict[int, list[float]] = {}
    for t, value in points:
        if not math.isfinite(value) or value < 0:
            continue
        slot = math.ceil(t / step - _EPS)
        acc = sums.setdefault(slot, [0.0, 0.0])
        acc[0] += value
        acc[1] += 1.0
    return [(slot * step, acc[0] / acc[1]) for slot, acc in sorted(sums.items())]


def _dense(points: Sequence[tuple[float, float]], step: float) -> tuple[int, list[float | None]]:
    """(index of the first grid point, values from it to the last, None where missing)."""
    first = round(points[0][0] / step)
    last = round(points[-1][0] / step)
    out: list[float | None] = [None] * (last - first + 1)
    for t, value in points:
        out[round(t / step) - first] = value
    return first, out


def fit(points: Sequence[tuple[float, float]], rules: PredictRules) -> Model | str:
    """A model fitted on ``points`` (on the grid, in time order: ``bucket``'s output), or why not (too few)."""
    have = [p for p in points if math.isfinite(p[1])]
    if len(have) < MIN_POINTS:
        return (f"not enough history: {len(have)} point(s) of {rules.step:g} s, a forecast needs at least "
                f"{MIN_POINTS}")
    step = rules.step
    first, ys = _dense(have, step)
    n = len(ys)
    periods = tuple(sorted(p for p in (round(s / step) for s in rules.seasons) if n >= MIN_CYCLES * p))
    # the start, from the head of the history: MIN_CYCLES whole cycles of the longest season (every phase seen
    # equally often, so a trend does not leak into the indices); the errors after it are out of sample
    window = MIN_CYCLES * periods[-1] if periods else min(n, 2 * MIN_POINTS)
    known = [(i, y) for i, y in enumerate(ys[:window]) if y is not None]
    if len(known) < 2:
        known = [(i, y) for i, y in enumerate(ys) if y is not None]
    if periods:  # the trend from the means of the first and last whole cycles (a line fitted through a season
        #          is tilted by it, unless the cycles start at the right phase)
        intercept, slope = _cycle_line(known, periods[-1], MIN_CYCLES)
    else:
        intercept, slope = _line(known)
    residual = {i: y - intercept - slope * i for i, y in known}
    seasonal: list[list[float]] = []
    for period in periods:
        sums = [0.0] * period
        counts = [0] * period
        for i, r in residual.items():
            ph = (first + i) % period
            sums[ph] += r
            counts[ph] += 1
        index = [sums[j] / counts[j] if counts[j] else 0.0 for j in range(period)]
        centre = sum(index) / period
        index = [v - centre for v in index]
        for i in residual:
            residual[i] -= index[(first + i) % period]
        seasonal.append(index)
    start = Model(at=(first - 1) * step, level=intercept - slope, trend=slope, periods=periods,
                  seasonal=tuple(tuple(s) for s in seasonal), sigma2=0.0, points=0, first=first * step,
                  alpha=rules.smoothing.level if rules.smoothing.level is not None else 0.0)
    if rules.smoothing.level is not None:
        return _fold(start, ys, rules, window)[0]
    # the level's constant: the one of ``LEVEL_GRID`` with the least squared one-step error over the history
    # after the start's window (over its later half if that is all there is; the smallest constant on a tie)
    best: tuple[float, Model] | None = None
    for alpha in LEVEL_GRID:
        model, sse = _fold(replace(start, alpha=alpha), ys, rules, window, min(window, n // 2))
        if best is None or sse < best[0] - _EPS * max(1.0, abs(best[0])):
            best = (sse, model)
    assert best is not None
    return best[1]


def _cycle_line(points: Sequence[tuple[int, float]], period: int, cycles: int) -> tuple[float, float]:
    """(intercept at index 0, slope per step) through the first and the last whole cycle: the slope is the mean
    change between the two at the phases both have (so a gap does not tilt it), the level the first cycle's mean
    (a phase it misses taken from the last cycle, the trend taken off)."""
    head = {i: y for i, y in points if i < period}
    tail = {i - (cycles - 1) * period: y for i, y in points if (cycles - 1) * period <= i < cycles * period}
    span = (cycles - 1) * period
    pairs = [tail[j] - head[j] for j in head if j in tail]
    slope = sum(pairs) / len(pairs) / span if pairs and span > 0 else 0.0
    values = [head[j] if j in head else tail[j] - slope * span for j in range(period) if j in head or j in tail]
    if not values:
        return sum(y for _, y in points) / len(points), 0.0
    return sum(values) / len(values) - slope * (period - 1) / 2, slope


def _line(points: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line through (index, value) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread > 0 else 0.0
    return mean_y - slope * mean_x, slope


def advance(model: Model, points: Sequence[tuple[float, float]], rules: PredictRules) -> Model:
    """``model`` with the points after its last folded in (gaps filled with its own forecast)."""
    later = [p for p in points if p[0] > model.at + _EPS and math.isfinite(p[1])]
    if not later:
        return model
    first, ys = _dense(later, rules.step)
    gap = first - round(model.at / rules.step) - 1
    return _fold(model, [None] * gap + ys, rules)[0]


def _fold(model: Model, ys: Sequence[float | None], rules: PredictRules, score_from: int = 0,
          sse_from: int | None = None) -> tuple[Model, float]:
    """The recursion over ``ys``, the grid points right after ``model.at``; and the sum of the squared one-step
    errors from the ``sse_from``-th point on (default ``score_from``). The errors of the first ``score_from``
    points (in sample: the start was made from them) do not count in s2 and the skill."""
    sm = rules.smoothing
    alpha, beta, phi, gamma = model.alpha, sm.trend, sm.damping, sm.season
    sse, seen = 0.0, 0
    sse_from = score_from if sse_from is None else sse_from
    step = rules.step
    memory = 1.0 / max(MIN_POINTS, BAND_MEMORY / step)
    level, trend, sigma2, fed, scored = model.level, model.trend, model.sigma2, model.points, model.scored
    naive2, last = model.naive2, model.last
    periods = model.periods
    seasonal = [list(s) for s in model.seasonal]
    index = round(model.at / step)
    for y in ys:
        index += 1
        phases = [index % p for p in periods]
        total = 0.0
        for s, ph in zip(seasonal, phases, strict=True):
            total += s[ph]
        expected = level + phi * trend + total
        if y is None:
            y = expected
            last = None
        else:
            error = y - expected
            seen += 1
            fed += 1
            if seen > sse_from:
                sse += error * error
            if seen > score_from and last is not None:
                scored += 1
                weight = max(1.0 / scored, memory)
                sigma2 = (1.0 - weight) * sigma2 + weight * error * error
                naive2 = (1.0 - weight) * naive2 + weight * (y - last) ** 2
            last = y
        new_level = alpha * (y - total) + (1.0 - alpha) * (level + phi * trend)
        trend = beta * (new_level - level) + (1.0 - beta) * phi * trend
        level = new_level
        for s, ph in zip(seasonal, phases, strict=True):
            other = total - s[ph]
            s[ph] = gamma * (y - level - other) + (1.0 - gamma) * s[ph]
            total = other + s[ph]
    return replace(model, at=index * step, level=level, trend=trend, seasonal=tuple(tuple(s) for s in seasonal),
                   sigma2=sigma2, points=fed, naive2=naive2, last=last, scored=scored), sse


def forecast(model: Model, at: float, rules: PredictRules) -> tuple[float, float]:
    """(mean, standard deviation) of the load at ``at`` (Unix s): the grid point whose step holds ``at``, at
    least one step after the model's last."""
    step = rules.step
    k = max(1, math.ceil((at - model.at) / step - _EPS))
    sm = rules.smoothing
    damp = sum(sm.damping ** i for i in range(1, k + 1)) if sm.damping != 1 else float(k)
    index = round(model.at / step) + k
    mean = model.level + model.trend * damp + sum(s[index % p] for s, p in zip(model.seasonal, model.periods,
                                                                              strict=True))
    widen = 1.0 + sum((model.alpha * (1.0 + j * sm.trend)) ** 2 for j in range(1, k))
    return mean, math.sqrt(max(0.0, model.sigma2) * widen)


def plan(state: PredictorState, now: float, rules: PredictRules) -> Fetch | None:
    """What to read at ``now``: the whole history when there is no model or a full fit is due, else the grid
    points after the model's last up to ``now`` (None: nothing new, or wait after a failure)."""
    if now < state.retry_at:
        return None
    end = math.floor(now / rules.step + _EPS) * rules.step
    if state.model is None or now >= state.next_full:
        return Fetch(end - rules.history + rules.step, end, True)
    if end > state.model.at + _EPS:
        return Fetch(state.model.at + rules.step, end, False)
    return None


def absorb(state: PredictorState, fetch: Fetch, points: Iterable[tuple[float, float]], now: float,
           rules: PredictRules) -> PredictorState:
    """``state`` after reading ``fetch``'s span (``points``: (Unix s, value), at any times: bucketed here). A
    full fit without enough history keeps the model it had (if any) and tries again a step later; it is due
    again after ``refit``, or sooner when the history will cover a season not learned yet."""
    step = rules.step
    got = [p for p in bucket(points, step) if fetch.start - _EPS <= p[0] <= fetch.end + _EPS]
    if not fetch.full:
        assert state.model is not None
        return replace(state, model=advance(state.model, got, rules), problem=None)
    made = fit(got, rules)
    if isinstance(made, str):
        return replace(state, retry_at=now + step, problem=made)
    due = now + rules.refit
    for season in rules.seasons:
        period = round(season / step)
        if period not in made.periods and MIN_CYCLES * season <= rules.history + _EPS:
            due = min(due, made.first + MIN_CYCLES * season - step)  # the history covers it then
    return PredictorState(made, now, max(due, now + step), -math.inf, None)


def failed(state: PredictorState, now: float, problem: str, rules: PredictRules) -> PredictorState:
    """The history could not be read: keep the model, say why, try again a step later."""
    return replace(state, retry_at=now + rules.step, problem=problem)


def predict(state: PredictorState, now: datetime, rules: PredictRules) -> Forecast | None:
    """The forecast for ``now + lead`` (None: no model yet, or its data end more than ``refit`` ago)."""
    model = state.model
    if model is None or state.fitted_at is None:
        return None
    t = unix(now)
    if t - model.at > rules.refit:
        return None
    target = t + rules.lead
    mean, sd = forecast(model, target, rules)
    normal = NormalDist()
    z = normal.inv_cdf(0.5 + BAND / 2)
    mean = max(0.0, mean)
    lower, upper = max(0.0, mean - z * sd), max(0.0, mean + z * sd)
    planned = max(0.0, mean + normal.inv_cdf(rules.quantile) * sd)
    ask = max(0, math.ceil(planned / rules.per_instance - _EPS))
    return Forecast(made_at=now, for_at=datetime.fromtimestamp(target, UTC), mean=mean, lower=lower, upper=upper,
                    planned=planned, quantile=rules.quantile, ask=ask, skill=model.skill,
                    applies=model.skill > rules.min_skill, points=model.points,
                    seasons=tuple(p * rules.step for p in model.periods),
                    fitted_at=datetime.fromtimestamp(state.fitted_at, UTC),
                    data_until=datetime.fromtimestamp(model.at, UTC))
