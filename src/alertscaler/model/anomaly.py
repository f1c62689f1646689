"""Anomaly scores as values: what one entry of the policy file's ``anomaly:`` list asks for (``AnomalySpec``),
the time spans its range queries cover (``Span``, ``Spans``) and what scoring found (``KsResult``,
``AnomalyScores``). Used by ``config.anomaly`` (which builds the spec), ``decide.anomaly`` (the math) and
``act.anomaly`` (the loop that queries Prometheus and exports the scores on /metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: the ``kind`` label of ``alertscaler_anomaly_score``
KIND_KS = "ks"
KIND_SEASONAL = "seasonal"


@dataclass(frozen=True)
class AnomalySpec:
    """One ``anomaly:`` entry. Times in seconds.

    ``window``: the recent window, compared with the reference window of length ``reference`` that ends
    ``offset`` before now (``offset == window``: the period right before the recent window; ``1d``: the same
    hours yesterday). Both are read with one range query each at resolution ``step``, every ``interval``.
    ``season`` (optional): also score the recent residuals ``x(t) - x(t - season)`` against the reference's.
    Fewer than ``min_samples`` points in a window: no score (insufficient data)."""

    name: str
    query: str
    window: float
    reference: float
    offset: float
    step: float
    interval: float
    season: float | None = None
    min_samples: int = 10


@dataclass(frozen=True)
class Span:
    """A range query's times: ``start`` to ``end`` inclusive, every ``step`` seconds."""

    start: datetime
    end: datetime
    step: float


@dataclass(frozen=True)
class Spans:
    """The range queries of one evaluation: the two windows, and (with a season) each one season earlier."""

    recent: Span
    reference: Span
    recent_season: Span | None = None
    reference_season: Span | None = None


@dataclass(frozen=True)
class KsResult:
    """A two-sample Kolmogorov-Smirnov test: the statistic D (0: same empirical distribution, 1: disjoint),
    its asymptotic p-value (small: the samples are unlikely to come from one distribution) and the sizes."""

    statistic: float
    p_value: float
    n: int
    m: int


@dataclass(frozen=True)
class AnomalyScores:
    """One evaluation of a spec: the KS test (None with too few points), the seasonal score (None without a
    season or with too few residuals) and, when a score is missing, why (``problem``)."""

    ks: KsResult | None
    seasonal: float | None = None
    problem: str | None = None
