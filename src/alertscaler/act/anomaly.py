"""Anomaly scores, the acting part: every ``anomaly:`` entry's ``interval``, range-query its PromQL series over
the recent and the reference window (and one season earlier) through the ONE Prometheus client, score them
(``decide.anomaly``) and export the scores on /metrics (``act.metrics``):

- ``alertscaler_anomaly_score{name, kind="ks"}``: the KS statistic D (0..1),
- ``alertscaler_anomaly_score{name, kind="seasonal"}``: the seasonal residual score (with ``season``),
- ``alertscaler_anomaly_p_value{name}``: the KS test's asymptotic p-value,
- ``alertscaler_anomaly_evaluations_total{name, result}``: ``ok``, ``insufficient_data`` or ``error``.

A score that cannot be computed (Prometheus down, a bad query, several series, too few points) is removed
from /metrics rather than left at its last value, so an alert rule on it resolves instead of firing on stale
data; the reason is logged once per change. The first pass removes every score (also of entries a reload took
away), then sets those it computes.

Called by ``act.engine`` on the re-evaluation timer, in a thread (the queries block); wired by
``service._wire``. Every replica computes and exports its own scores (they agree: same queries, same grid).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alertscaler.act.metrics import Metrics
from alertscaler.decide.anomaly import Points, score, spans
from alertscaler.model.anomaly import KIND_KS, KIND_SEASONAL, AnomalyScores, AnomalySpec, Span
from alertscaler.model.errors import AmbiguousResult, QueryError
from alertscaler.prometheus.client import Series

log = logging.getLogger(__name__)

#: (query, start, end, step in seconds) -> the series of a range query (``PrometheusClient.range``)
RangeOf = Callable[[str, datetime, datetime, float], Sequence[Series]]


@dataclass(frozen=True)
class Scored:
    """One evaluation: the spec's name and its scores (``scores.problem`` says why one is missing), or the
    query's error."""

    name: str
    scores: AnomalyScores | None
    error: str | None = None


class AnomalyLoop:
    """``run(now)``: the due entries' range queries, scores and gauges (see the module docstring)."""

    def __init__(self, specs: Sequence[AnomalySpec], range_of: RangeOf | None, metrics: Metrics) -> None:
        if specs and range_of is None:
            raise ValueError("anomaly scores need a Prometheus client (range_of)")
        self.specs = tuple(specs)
        self.range_of = range_of
        self.metrics = metrics
        self.next_at: dict[str, datetime] = {}
        self._said: dict[str, str | None] = {}  # the last problem logged per entry (logged again only when it changes)
        self._cleared = False

    def run(self, now: datetime) -> list[Scored]:
        if not self._cleared:
            self.metrics.anomaly_score.clear()
            self.metrics.anomaly_p_value.clear()
            self._cleared = True
        out = []
        for spec in self.specs:
            due = self.next_at.get(spec.name)
            if due is not None and now < due:
                continue
            self.next_at[spec.name] = now + timedelta(seconds=spec.interval)
            out.append(self.evaluate(spec, now))
        return out

    def evaluate(self, spec: AnomalySpec, now: datetime) -> Scored:
        """Query, score and export one entry at ``now``."""
        try:
            scores = self._scores(spec, now)
        except QueryError as exc:
            self._export(spec, None)
            self._count(spec, "error", str(exc))
            return Scored(spec.name, None, str(exc))
        self._export(spec, scores)
        self._count(spec, "ok" if scores.problem is None else "insufficient_data", scores.problem)
        return Scored(spec.name, scores)

    def _scores(self, spec: AnomalySpec, now: datetime) -> AnomalyScores:
        windows = spans(spec, now)
        recent = self._points(spec, windows.recent)
        reference = self._points(spec, windows.reference)
        if spec.season is None or windows.recent_season is None or windows.reference_season is None:
            return score(spec, recent, reference)
        return score(spec, recent, reference, self._points(spec, windows.recent_season),
                     self._points(spec, windows.reference_season))

    def _points(self, spec: AnomalySpec, span: Span) -> Points:
        assert self.range_of is not None
        series = self.range_of(spec.query, span.start, span.end, span.step)
        if len(series) > 1:
            raise AmbiguousResult(spec.query, [s.labels for s in series])
        return series[0].points if series else ()

    def _export(self, spec: AnomalySpec, scores: AnomalyScores | None) -> None:
        m = self.metrics
        ks = scores.ks if scores is not None else None
        seasonal = scores.seasonal if scores is not None else None
        if ks is not None:
            m.anomaly_score.labels(spec.name, KIND_KS).set(ks.statistic)
            m.anomaly_p_value.labels(spec.name).set(ks.p_value)
        else:
            _remove(m, spec.name, KIND_KS)
        if seasonal is not None:
            m.anomaly_score.labels(spec.name, KIND_SEASONAL).set(seasonal)
        else:
            _remove(m, spec.name, KIND_SEASONAL)

    def _count(self, spec: AnomalySpec, result: str, problem: str | None) -> None:
        self.metrics.anomaly_evaluations.labels(spec.name, result).inc()
        if self._said.get(spec.name) != problem:
            if problem is None:
                log.info("anomaly %s: scored again", spec.name)
            else:
                log.warning("anomaly %s: no score: %s", spec.name, problem)
            self._said[spec.name] = problem


def _remove(metrics: Metrics, name: str, kind: str) -> None:
    try:
        metrics.anomaly_score.remove(name, kind)
    except KeyError:
        pass
    if kind == KIND_KS:
        try:
            metrics.anomaly_p_value.remove(name)
        except KeyError:
            pass
