"""A ``predict`` group in ``act.tracking.TrackingLoop``: the forecast (from a range-query stand-in giving a daily
pattern) combined with the metrics — the larger wins, recorded ``predicted``; ``forecast_only`` records what it
would have done (``forecast_only``, nothing moves) and says it once; the view and the /metrics gauges; a failing
history leaves the metrics alone in charge. A real SQLite store; the time is passed in."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertscaler.act.metrics import Metrics
from alertscaler.act.tracking import TrackingLoop
from alertscaler.config import load_policy
from alertscaler.model.errors import PrometheusUnavailable, QueryError
from alertscaler.store.sql import SqlStore

DAY = 86400.0
NOW = datetime(2026, 1, 1, 5, 58, tzinfo=UTC)  # 2 minutes before the daily peak (6:00 UTC) of ``load``


def load(t: float) -> float:
    return 400.0 + 200.0 * math.sin(2 * math.pi * t / DAY)  # requests/s: 600 at 6:00 UTC, 200 at 18:00


def policy(forecast_only: bool = False, desired: int = 2) -> str:
    return f"""
server: {{auth: {{insecure_no_auth: true}}}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 50
    desired: {desired}
    track:
      metrics: [{{query: 'per_member', target: 100}}]
    predict:
      query: 'sum(rate(requests_total[5m]))'
      per_instance: 110
      seasons: [1d]
      history: 3d
      lead: 2m
      quantile: 0.5
      forecast_only: {str(forecast_only).lower()}
"""


class Prometheus:
    """``values_of`` (the metric: on target) and ``history`` (a range query of the daily pattern) stand-ins."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.ranges: list[tuple[str, float, float, float]] = []

    def values_of(self, queries: Sequence[str]) -> Mapping[str, float | QueryError]:
        return {q: 100.0 for q in queries}

    def history(self, query: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        self.ranges.append((query, start, end, step))
        if self.down:
            raise PrometheusUnavailable("connection refused")
        first = math.ceil(start / step)
        return [(k * step, load(k * step)) for k in range(first, int(end // step) + 1)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def loop_of(store: SqlStore, text: str, prometheus: Prometheus, tmp_path: Path) -> TrackingLoop:
    def no_single_queries(query: str) -> float:
        raise AssertionError(query)
    return TrackingLoop(load_policy(text, base_dir=tmp_path), store, no_single_queries, prometheus.values_of,
                        prometheus.history)


@pytest.mark.parametrize(("forecast_only", "outcome", "reason", "desired"), [
    (False, "acted", "predicted", 6),
    (True, "skipped", "forecast_only", 2),
], ids=["applied", "forecast-only"])
def test_the_forecast_asks_more_than_the_metrics(forecast_only: bool, outcome: str, reason: str, desired: int,
                                                 store: SqlStore, tmp_path: Path) -> None:
    prometheus = Prometheus()
    loop = loop_of(store, policy(forecast_only), prometheus, tmp_path)
    (out,) = loop.run(NOW)
    assert (out.outcome.value, out.reason.value) == (outcome, reason)
    (decision,) = store.list_decisions(group="web")
    # the metric is on target (2 members hold it); the forecast of 600 req/s at 6:00 needs ceil(600 / 110) = 6
    assert (decision.from_capacity, decision.to_capacity) == (2, 6)
    assert "forecast 600" in decision.message and "needs 6" in decision.message
    assert store.get_group_state("web").desired == desired  # type: ignore[union-attr]
    # the whole history read once, on the 5-minute grid, up to the last grid point
    assert prometheus.ranges == [("sum(rate(requests_total[5m]))", NOW.timestamp() // 300 * 300 - 3 * DAY + 300,
                                  NOW.timestamp() // 300 * 300, 300.0)]
    view = loop.forecasts()["web"]
    assert view.forecast is not None and view.forecast.ask == 6 and view.forecast.applies
    assert view.forecast_only is forecast_only and view.problem is None


def test_forecast_only_says_it_once_and_moves_nothing(store: SqlStore, tmp_path: Path) -> None:
    loop = loop_of(store, policy(forecast_only=True), Prometheus(), tmp_path)
    loop.run(NOW)
    assert loop.run(NOW + timedelta(seconds=15)) == []  # the same would-be move: already said
    assert [d.reason.value for d in store.list_decisions(group="web")] == ["forecast_only"]
    assert store.list_actions(limit=10) == []


def test_a_forecast_lower_than_the_metrics_changes_nothing(store: SqlStore, tmp_path: Path) -> None:
    loop = loop_of(store, policy(desired=8), Prometheus(), tmp_path)  # 8 members hold the metric on target
    (out,) = loop.run(NOW)
    assert (out.outcome.value, out.reason.value) == ("skipped", "no_change")
    assert store.get_group_state("web").desired == 8  # type: ignore[union-attr]


def test_without_history_the_metrics_decide_alone(store: SqlStore, tmp_path: Path) -> None:
    prometheus = Prometheus(down=True)
    loop = loop_of(store, policy(), prometheus, tmp_path)
    (out,) = loop.run(NOW)
    assert (out.outcome.value, out.reason.value) == ("skipped", "no_change")
    view = loop.forecasts()["web"]
    assert view.forecast is None and view.problem is not None and "connection refused" in view.problem
    loop.run(NOW + timedelta(seconds=15))
    assert len(prometheus.ranges) == 1  # tried again a step (5 min) later, not every 15 s


def test_the_forecast_gauges(store: SqlStore, tmp_path: Path) -> None:
    loop = loop_of(store, policy(forecast_only=True), Prometheus(), tmp_path)
    loop.run(NOW)
    metrics = Metrics()
    metrics.show_forecasts(loop.forecasts())
    get = metrics.registry.get_sample_value
    assert get("alertscaler_forecast", {"alertscaler_group": "web", "bound": "mean"}) == pytest.approx(600.0, abs=0.5)
    assert get("alertscaler_forecast_desired", {"alertscaler_group": "web"}) == 6
    assert get("alertscaler_forecast_applied", {"alertscaler_group": "web"}) == 0  # forecast_only
    metrics.show_forecasts({})  # the group gone (a reload): its series go
    assert get("alertscaler_forecast", {"alertscaler_group": "web", "bound": "mean"}) is None
