"""Target tracking through the service (in process, ``fake`` provider, the test's clock, and the metric's
value given by the test in place of Prometheus; the real Prometheus path is in tests/e2e)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError, EmptyResult, QueryError
from alertscaler.providers.base import ProviderContext
from alertscaler.providers.fake import FakeConfig, FakeProvider
from alertscaler.service import build_engine
from alertscaler.store.sql import SqlStore
from tests.api.conftest import TOKEN, Clock, served

QUERY = 'sum(rate(workload_requests_total{alertscaler_group="web"}[1m])) / count(up{alertscaler_group="web"})'
POLICY = f"""
server: {{listen: 127.0.0.1:8080, auth: {{bearer_token: {TOKEN}}}}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 10
    desired: 2
    track:
      metrics: [{{query: '{QUERY}', target: 100}}]
      interval: 15s
"""


@dataclass
class Metric:
    value: float | None = 100.0
    asked: list[str] = field(default_factory=list)

    def __call__(self, query: str) -> float:
        self.asked.append(query)
        if self.value is None:
            raise EmptyResult(query)
        return self.value


@dataclass
class T:
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    fake: FakeProvider
    metric: Metric

    async def tick(self, seconds: float = 15) -> None:
        self.clock.advance(seconds)
        await self.engine.run_once()

    async def decisions(self) -> list[dict[str, object]]:
        data: list[dict[str, object]] = (await self.client.get("/api/v1/decisions", params={"group": "web"})).json()
        return list(reversed(data))

    async def desired(self) -> int:
        return int((await self.client.get("/api/v1/groups/web")).json()["desired"])


@pytest.fixture
async def t(tmp_path: Path) -> AsyncIterator[T]:
    metric = Metric()
    async with served(tmp_path, POLICY, sizes={"web": 2}, query=metric) as s:
        yield T(s.engine, s.client, s.clock, s.providers["web"], metric)


async def test_a_busy_group_is_sized_in_one_decision_and_acted_on(t: T) -> None:
    t.metric.value = 250.0  # 2 instances at 250 each against a target of 100: 5 needed
    await t.tick()
    (decision,) = await t.decisions()
    assert (decision["policy"], decision["trigger"], decision["outcome"], decision["reason"]) == \
        ("track", "tracking", "acted", "scaled")
    assert (decision["from_capacity"], decision["to_capacity"]) == (2, 5)
    assert "metric value(s) 250" in str(decision["message"])
    assert t.fake.status().current == 5 and t.metric.asked == [QUERY]


async def test_evaluated_once_per_interval_and_a_steady_state_recorded_once(t: T) -> None:
    await t.tick()
    await t.tick(5)   # within the interval: not evaluated
    assert len(t.metric.asked) == 1
    await t.tick(10)
    await t.tick(15)
    assert len(t.metric.asked) == 3
    assert [(d["reason"], d["outcome"]) for d in await t.decisions()] == [("no_change", "skipped")]
    metrics = (await t.client.get("/metrics")).text
    assert "alertscaler_tracking_groups_evaluated_total 3.0" in metrics
    assert "alertscaler_tracking_cycle_seconds_count 3.0" in metrics  # the tick with nobody due is not a cycle


async def test_scale_in_waits_for_the_stabilisation_window(t: T) -> None:
    t.metric.value = 40.0   # 2 x 0.4 -> 1
    await t.tick()
    assert await t.desired() == 2
    assert [d["reason"] for d in await t.decisions()] == ["stabilized"]
    for _ in range(11):      # 180 s (the default scale-down window) of the same low value, after the size found
        await t.tick()       # at start: still held ...
    assert await t.desired() == 2
    await t.tick()           # ... until the window has passed
    assert await t.desired() == 1
    assert [d["reason"] for d in await t.decisions()] == ["stabilized", "scaled"]


async def test_a_missing_metric_holds_the_size_and_says_why(t: T) -> None:
    t.metric.value = None
    await t.tick()
    (decision,) = await t.decisions()
    assert (decision["reason"], decision["outcome"]) == ("fallback", "skipped")
    assert "missing" in str(decision["message"]) and "returned no series" in str(decision["message"])
    assert await t.desired() == 2


async def test_prometheus_down_uses_the_fixed_fallback(tmp_path: Path) -> None:
    policy = load_policy(POLICY.replace("interval: 15s", "interval: 15s\n      fallback: 4"), base_dir=tmp_path)
    store = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    fake = FakeProvider(FakeConfig(type="fake"), ProviderContext("web", tmp_path))

    def down(query: str) -> float:
        raise QueryError("Prometheus at http://127.0.0.1:1 unreachable (ConnectError)", query=query)

    try:
        engine = build_engine(policy, store, {"web": fake}, clock=Clock(), query=down)
        await engine.run_once()
        (decision,) = store.list_decisions(group="web")
        assert (decision.reason.value, decision.to_capacity) == ("fallback", 4)
        assert fake.status().current == 4
    finally:
        store.close()


@pytest.mark.parametrize(("change", "path", "fragment"), [
    ("target: 100", "groups.web.track.metrics[0].target", "greater than 0"),
    ("interval: 15s", "groups.web.track.interval", "at least 1s"),
], ids=["target", "interval"])
def test_tracking_config_mistakes_name_their_path(change: str, path: str, fragment: str, tmp_path: Path) -> None:
    bad = {"target: 100": "target: 0", "interval: 15s": "interval: 100ms"}[change]
    with pytest.raises(ConfigError) as err:
        load_policy(POLICY.replace(change, bad), base_dir=tmp_path)
    assert any(p.path == path and fragment in p.message for p in err.value.problems), err.value.problems


def test_a_rate_limit_gives_percent_or_instances(tmp_path: Path) -> None:
    text = POLICY.replace("interval: 15s", "interval: 15s\n      scale_up: {limits: [{percent: 50, instances: 2}]}")
    with pytest.raises(ConfigError) as err:
        load_policy(text, base_dir=tmp_path)
    assert any("groups.web.track.scale_up.limits[0]" in p.path and "exactly one" in p.message
               for p in err.value.problems), err.value.problems
