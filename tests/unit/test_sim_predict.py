"""The simulator replays predictive scaling with the service's code: a user's group with a ``predict`` section
(``sim.group``) and a built-in tracking policy with ``PredictRules`` (``sim.scenarios``) read the demand replayed so
far as their history (``sim.predicting``) and combine the forecast with the metrics as the service does. On a
trace with a daily pattern the forecast scales out ahead of the load (reason ``predicted``) and cuts the time
under the target; on a random walk it stays out (no skill: the last value is the best forecast)."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from alertscaler.config import load_policy
from alertscaler.model.prediction import PredictRules
from alertscaler.sim.group import group_policy
from alertscaler.sim.metrics import summarize
from alertscaler.sim.running import simulate
from alertscaler.sim.scenarios import Scenario, alertscaler_tracking
from alertscaler.sim.traces import Trace

DAY = 86400.0
START = datetime(2026, 3, 2, tzinfo=UTC)


def daily_trace(days: int = 4) -> Trace:
    """Every 5 minutes, a morning rise from 50 to 500 req/s in an hour, evenings back down; 4 days."""
    values, offsets = [], []
    for i in range(int(days * DAY / 300)):
        hour = (i * 300 % DAY) / 3600
        values.append(50.0 + 450.0 * min(1.0, max(0.0, hour - 8)) * (1.0 if hour < 20 else 0.0))
        offsets.append(i * 300.0)
    return Trace(tuple(values), tuple(offsets), days * DAY, START, "daily")


def random_walk_trace(days: int = 4) -> Trace:
    """A random walk every 5 minutes: the last value is the best forecast there is."""
    rng, level, values = random.Random(4), 280.0, []
    for _ in range(int(days * DAY / 300)):
        level = min(540.0, max(20.0, level + rng.gauss(0, 15)))
        values.append(level)
    return Trace(tuple(values), tuple(i * 300.0 for i in range(len(values))), days * DAY, START, "walk")


POLICY = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 20
    track:
      metrics: [{query: 'sum(rate(http_requests_total[1m])) / count(up)', target: 28}]
    predict:
      query: sum(rate(http_requests_total[5m]))
      per_instance: 28
      seasons: [1d]
      history: 3d
      lead: 3m
      forecast_only: FORECAST_ONLY
"""


@pytest.mark.parametrize("forecast_only", [False, True], ids=["predict", "forecast-only-replayed-applied"])
def test_a_users_group_replays_its_forecast(forecast_only: bool) -> None:
    policy = load_policy(POLICY.replace("FORECAST_ONLY", str(forecast_only).lower()))
    replay = group_policy(policy, "web", start=START)
    assert "predict 28 req/s per member 3m ahead" in replay.description
    assert any("forecast_only" in n for n in replay.notes) is forecast_only
    scenario = Scenario(daily_trace(), delay=180.0, initial=2)
    run = simulate(scenario, replay)
    predicted = [a for a in run.actions if a.reason == "predicted"]
    assert len([a for a in predicted if a.at >= 2 * DAY]) >= 2  # the daily season, learned after two days
    without = simulate(scenario, replace(replay, group=replay.group.model_copy(update={"predict": None})))
    ours, theirs = summarize(run), summarize(without)
    assert ours.tau_u < 0.7 * theirs.tau_u  # (the first two days without the season)


@pytest.mark.parametrize(("trace", "helps"), [(daily_trace(), True), (random_walk_trace(), False)],
                         ids=["daily-pattern", "random-walk"])
def test_the_built_in_tracking_with_a_forecast(trace: Trace, helps: bool) -> None:
    scenario = Scenario(trace, delay=120.0)
    plain = alertscaler_tracking()
    with_forecast = replace(plain, name="predict", predict=PredictRules(per_instance=28.0, seasons=(DAY,),
                                                                          history=3 * DAY, lead=120.0, min_skill=0.1))
    a, b = summarize(simulate(scenario, plain)), summarize(simulate(scenario, with_forecast))
    if helps:
        assert b.tau_u < 0.6 * a.tau_u
    else:  # no skill: the forecast stays out, the runs are the same
        assert (b.tau_u, b.instance_hours, b.actions) == (a.tau_u, a.instance_hours, a.actions)
    assert math.isfinite(b.instance_hours)
