"""Predictive scaling, the acting part: each ``predict`` group's forecast, read from Prometheus history.

Owns the service's driver of ``decide.prediction`` (``GroupPredictor``): at each of the group's tracking
evaluations ``decide.prediction.plan`` says what history to read — the whole ``predict.history`` for a fit (at
the start, every ``predict.refit``, and when the history comes to cover a season not learned yet), else the
grid points since the last one — a range query of ``predict.query`` at ``predict.step`` reads it (through the
ONE Prometheus client: ``history_of``), ``absorb`` takes it in and ``predict`` gives the forecast one ``lead``
ahead. A query that fails keeps the model it had (the forecast goes on from it until its data are ``refit``
old) and is tried again a step later; the problem is logged once and shown by ``status``.

Called by ``act.tracking.TrackingLoop`` (in its thread) for the due groups that have a ``predict`` section; the
combination with the metrics (the larger wins) is ``decide.tracking.recommend``'s, ``forecast_only`` is applied
by the loop. The simulator runs the same ``decide.prediction`` calls (``sim.predicting``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from alertscaler.config.prediction import PredictConfig
from alertscaler.decide.prediction import PredictorState, absorb, failed, plan, predict
from alertscaler.model.errors import AmbiguousResult, QueryError
from alertscaler.model.prediction import Forecast, PredictionView, PredictRules
from alertscaler.prometheus.client import PrometheusClient

log = logging.getLogger(__name__)

#: (query, start, end, step), times in Unix seconds -> the one series' points (Unix seconds, value); raises
#: ``QueryError`` when the history cannot be read (Prometheus down, bad PromQL, several series)
History = Callable[[str, float, float, float], Sequence[tuple[float, float]]]


def history_of(client: PrometheusClient) -> History:
    """The range query of the one Prometheus client, as ``History``: no series is an empty history."""
    def history(query: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        answer = client.range(query, start, end, step)
        if len(answer) > 1:
            raise AmbiguousResult(query, [s.labels for s in answer])
        return [(at.timestamp(), value) for at, value in answer[0].points] if answer else []
    return history


class GroupPredictor:
    """One group's predictor: its ``decide.prediction`` state, the last forecast and the last problem."""

    def __init__(self, name: str, config: PredictConfig, history: History | None) -> None:
        self.name = name
        self.config = config
        self.rules: PredictRules = config.rules()
        self.history = history
        self.state = PredictorState()
        self.last: Forecast | None = None
        self._logged: str | None = None

    def forecast(self, now: datetime) -> Forecast | None:
        """Read what ``plan`` asks for (if anything) and forecast for ``now + lead`` (None: none yet)."""
        t = now.timestamp()
        fetch = plan(self.state, t, self.rules)
        if fetch is not None:
            if self.history is None:
                self.state = failed(self.state, t, "no Prometheus to read the history from (prometheus.url)",
                                    self.rules)
            else:
                try:
                    points = self.history(self.config.query, fetch.start, fetch.end, self.rules.step)
                except QueryError as exc:
                    self.state = failed(self.state, t, f"reading the history failed: {exc}", self.rules)
                else:
                    self.state = absorb(self.state, fetch, points, t, self.rules)
        problem = self.state.problem
        if problem != self._logged:
            if problem is not None:
                log.warning("predict group=%s: %s", self.name, problem)
            elif self._logged is not None:
                log.info("predict group=%s: forecasting again", self.name)
            self._logged = problem
        self.last = predict(self.state, now, self.rules)
        return self.last

    def view(self) -> PredictionView:
        return PredictionView(self.last, self.state.problem, self.config.forecast_only)
