"""Anomaly scores, the math: the two-sample Kolmogorov-Smirnov test (statistic D and its asymptotic p-value), a
seasonal residual score, and which time spans an evaluation reads. Pure: numbers and the time passed in.

Called by ``act.anomaly`` (which runs the range queries these spans describe and exports the scores) and by
tests.

KS: D is the largest distance between the two empirical distribution functions (ties handled: both functions
step over a shared value together). The p-value is the Kolmogorov distribution's survival function
``Q(x) = 2 * sum((-1)**(k-1) * exp(-2 k^2 x^2))`` (for small x its equivalent theta-function form, which
converges fast there) at ``x = (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) * D`` with ``ne = n m / (n + m)``: the
asymptotic distribution with Stephens' (1970) small-sample correction, as in Numerical Recipes' ``kstwo``.

Seasonal: the residual of a point is its value minus the value one season earlier. The score is the median of
the recent window's residuals minus the median of the reference window's, in units of the reference
residuals' spread: 1.4826 x their median absolute deviation (the standard deviation, for normal noise), or,
when more than half of them are equal (MAD 0), 1.2533 x their mean absolute deviation. Signed: > 0 higher than
a season ago usually is. NaN and infinite points are left out of everything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from alertscaler.model.anomaly import AnomalyScores, AnomalySpec, KsResult, Span, Spans

Points = Sequence[tuple[datetime, float]]

#: consistency constants: MAD x 1.4826 and mean absolute deviation x 1.2533 estimate a normal sigma
MAD_SCALE = 1.4826
MEAN_AD_SCALE = 1.2533
_THETA_BELOW = 1.18  # Q(x) for x below this from the theta-function form (the alternating series is slow there)


# -- the Kolmogorov-Smirnov test --------------------------------------------------------------------------------


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """D = sup |F_a(x) - F_b(x)| of two non-empty samples (``ValueError`` for an empty one)."""
    if not a or not b:
        raise ValueError("both samples must have at least one value")
    xs, ys = sorted(a), sorted(b)
    n, m = len(xs), len(ys)
    i = j = 0
    d = 0.0
    while i < n and j < m:
        value = min(xs[i], ys[j])
        while i < n and xs[i] == value:
            i += 1
        while j < m and ys[j] == value:
            j += 1
        d = max(d, abs(i / n - j / m))
    return d


def kolmogorov_sf(x: float) -> float:
    """Q(x) = P(K > x) for the Kolmogorov distribution K: 1 at 0, ~0.05 at 1.358, ~0.01 at 1.628."""
    if x <= 0:
        return 1.0
    if x < _THETA_BELOW:
        # P(K <= x) = sqrt(2 pi) / x * sum_k exp(-(2k-1)^2 pi^2 / (8 x^2))
        base = -math.pi ** 2 / (8 * x * x)
        total = 0.0
        for k in range(1, 50):
            term = math.exp((2 * k - 1) ** 2 * base)
            total += term
            if term < 1e-17 * total:
                break
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * total))
    total, sign = 0.0, 1.0
    for k in range(1, 50):
        term = math.exp(-2 * k * k * x * x)
        total += sign * term
        sign = -sign
        if term < 1e-17:
            break
    return min(1.0, max(0.0, 2 * total))


def ks_2samp(a: Sequence[float], b: Sequence[float]) -> KsResult:
    """The two-sample KS test of ``a`` against ``b``: D and its asymptotic p-value (see the module docstring)."""
    d = ks_statistic(a, b)
    n, m = len(a), len(b)
    root = math.sqrt(n * m / (n + m))
    return KsResult(d, kolmogorov_sf((root + 0.12 + 0.11 / root) * d), n, m)


# -- the seasonal residual score --------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("the median of nothing")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def spread(values: Sequence[float]) -> float:
    """A robust standard deviation: 1.4826 x MAD, or 1.2533 x the mean absolute deviation when the MAD is 0."""
    center = median(values)
    deviations = [abs(v - center) for v in values]
    mad = median(deviations)
    if mad > 0:
        return MAD_SCALE * mad
    return MEAN_AD_SCALE * sum(deviations) / len(deviations)


def residuals(points: Points, season_points: Points, season: float) -> list[float]:
    """``x(t) - x(t - season)`` for every point of ``points`` whose counterpart is in ``season_points``."""
    earlier = {_millis(at): value for at, value in season_points}
    shift = round(season * 1000)
    out = []
    for at, value in points:
        before = earlier.get(_millis(at) - shift)
        if before is not None:
            out.append(value - before)
    return [r for r in out if math.isfinite(r)]


def _millis(at: datetime) -> int:
    """Prometheus' resolution: points one season apart are matched to the millisecond."""
    return round(at.timestamp() * 1000)


def seasonal_score(recent: Sequence[float], reference: Sequence[float]) -> float:
    """(median(recent) - median(reference)) / spread(reference); ±inf when the reference residuals are all
    equal and the recent median differs from them, 0 when it does not."""
    shift = median(recent) - median(reference)
    scale = spread(reference)
    if scale > 0:
        return shift / scale
    return 0.0 if shift == 0 else math.copysign(math.inf, shift)


# -- one evaluation ---------------------------------------------------------------------------------------------


def spans(spec: AnomalySpec, now: datetime) -> Spans:
    """The range queries of an evaluation at ``now``, on a grid of ``step`` (so that successive evaluations read
    the same points): the recent window ends at the last grid point, the reference ``offset`` earlier; each is
    ``window / step`` (``reference / step``) points long, so that adjacent windows share no point."""
    step = spec.step
    end = datetime.fromtimestamp(math.floor(now.timestamp() / step) * step, now.tzinfo)
    recent = _span(end, spec.window, step)
    reference = _span(end - timedelta(seconds=spec.offset), spec.reference, step)
    if spec.season is None:
        return Spans(recent, reference)
    back = timedelta(seconds=spec.season)
    return Spans(recent, reference, _span(end - back, spec.window, step),
                 _span(end - timedelta(seconds=spec.offset) - back, spec.reference, step))


def _span(end: datetime, length: float, step: float) -> Span:
    return Span(end - timedelta(seconds=length - step), end, step)


def score(spec: AnomalySpec, recent: Points, reference: Points, recent_season: Points | None = None,
          reference_season: Points | None = None) -> AnomalyScores:
    """The scores of one evaluation from the points of its spans (``spans``): the KS test of the recent values
    against the reference values, and with a season, the seasonal score of their residuals. A window with fewer
    than ``min_samples`` usable points gives no score, and ``problem`` says so."""
    a, b = _finite(v for _, v in recent), _finite(v for _, v in reference)
    least = spec.min_samples
    if len(a) < least or len(b) < least:
        return AnomalyScores(None, None, f"insufficient data: {len(a)} point(s) in the recent window and "
                                         f"{len(b)} in the reference window, at least {least} each needed")
    ks = ks_2samp(a, b)
    if spec.season is None:
        return AnomalyScores(ks)
    ra = residuals(recent, recent_season or (), spec.season)
    rb = residuals(reference, reference_season or (), spec.season)
    if len(ra) < least or len(rb) < least:
        return AnomalyScores(ks, None, f"insufficient data for the seasonal score: {len(ra)} recent and {len(rb)} "
                                       f"reference point(s) have a value one season earlier, at least {least} "
                                       "each needed")
    return AnomalyScores(ks, seasonal_score(ra, rb))


def _finite(values: Iterable[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]
