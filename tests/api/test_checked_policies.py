"""Checked step policies through the service: a firing alert is re-checked live (``guard``) and sized from a
live value (``size_by``) before acting; a stale alert is skipped with that reason, rechecked every
``check_interval``; a check that cannot be made does what ``on_check_error`` says. Prometheus is replaced by
query functions the test controls (the real one is in tests/e2e/test_checked_pipeline.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.model.errors import EmptyResult, PrometheusUnavailable, QueryError
from alertscaler.providers.fake import FakeProvider
from tests.api.conftest import TOKEN, Clock, served
from tests.support.webhooks import alert, body

GUARD = 'avg(load5{alertscaler_group="web"}) > 0.8'
LOAD = 'sum(rate(http_requests_total{alertscaler_group="web"}[1m]))'
POLICY = """
server: {auth: {bearer_token: TOKEN}, alert_stale_after: 1h, reevaluate_interval: INTERVAL}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 10
    desired: 2
    scale_out:
      matchers: ['alertname="HighLoad"']
      adjustment: 1
      cooldown: 60s
      guard: 'GUARD'
      size_by: {query: 'LOAD', per_instance: 100}
      check_interval: 15s
    scale_in: {matchers: ['alertname="LowLoad"'], adjustment: -1, cooldown: 60s, guard: 'avg(load5) < 0.2'}
  plain:
    provider: {type: fake}
    max_size: 3
    scale_out: {matchers: ['alertname="Plain"'], adjustment: 1}
""".replace("TOKEN", TOKEN).replace("GUARD", GUARD).replace("LOAD", LOAD)
HIGH, LOW, PLAIN = alert("HighLoad", instance="a"), alert("LowLoad", instance="a"), alert("Plain")


@dataclass
class Prom:
    """What the test's 'Prometheus' answers: series per guard, one value per size query, or an error."""

    series_of: dict[str, int] = field(default_factory=lambda: {GUARD: 1})
    value: float | None = 420.0
    down: bool = False
    asked: list[str] = field(default_factory=list)
    gate: threading.Event | None = None  # set: a query waits for it (a slow Prometheus)

    def _ask(self, query: str) -> None:
        self.asked.append(query)
        if self.gate is not None:
            assert self.gate.wait(10), "the test never released the slow query"
        if self.down:
            raise PrometheusUnavailable("Prometheus at http://127.0.0.1:1 is unreachable (ConnectError)")

    def value_of(self, query: str) -> float:
        self._ask(query)
        if self.value is None:
            raise EmptyResult(query)
        return self.value

    def series(self, query: str) -> int:
        self._ask(query)
        return self.series_of.get(query, 0)


@dataclass
class T:
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    web: FakeProvider
    prom: Prom

    async def post(self, *alerts: dict[str, object]) -> None:
        response = await self.client.post("/api/v1/alerts", json=body(*alerts),
                                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text

    async def decisions(self, group: str = "web") -> list[dict[str, object]]:
        data: list[dict[str, object]] = (await self.client.get("/api/v1/decisions", params={"group": group})).json()
        return list(reversed(data))

    async def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.engine.run_once()


async def _t(tmp_path: Path, interval: str = "1s") -> AsyncIterator[T]:
    prom = Prom()
    async with served(tmp_path, POLICY.replace("INTERVAL", interval), sizes={"web": 2}, query=prom.value_of,
                      series=prom.series) as s:
        yield T(s.engine, s.client, s.clock, s.providers["web"], prom)


@pytest.fixture
async def t(tmp_path: Path) -> AsyncIterator[T]:
    async for value in _t(tmp_path):
        yield value


async def test_the_alert_is_checked_live_and_sized_from_the_value_in_one_decision(t: T) -> None:
    await t.post(HIGH)
    assert await t.decisions() == [], "nothing decided inside the webhook's transaction: the check comes first"
    assert t.prom.asked == []
    (route,) = t.engine.store.active_alert_routes()
    assert route.reasons == {"checking": 1}
    await t.engine.run_once()
    (decision,) = await t.decisions()
    assert (decision["trigger"], decision["outcome"], decision["reason"]) == ("notification", "acted", "scaled")
    assert (decision["from_capacity"], decision["to_capacity"]) == (2, 5)
    assert decision["message"] == "scale 2 -> 5 (live value 420 at 100 per instance needs 5)"
    assert decision["notification_id"] is not None
    assert t.prom.asked == [GUARD, LOAD]
    assert t.web.status().current == 5
    (route,) = [r for r in t.engine.store.active_alert_routes() if r.group == "web"]
    assert route.reasons == {"scaled": 1}, "the alert's reason went from checking to the decision's"


async def test_a_stale_alert_is_skipped_once_rechecked_and_acts_when_the_guard_holds_again(t: T) -> None:
    t.prom.series_of = {}  # the load fell between the rule's evaluation and now
    await t.post(HIGH)
    await t.engine.run_once()
    (skip,) = await t.decisions()
    assert (skip["trigger"], skip["outcome"], skip["reason"]) == ("notification", "skipped", "guard_failed")
    assert skip["message"] == f"guard no longer holds ({GUARD} returned no series): a stale alert, not acted"
    assert t.prom.asked == [GUARD], "a failed guard spares the size query"
    await t.tick(10)  # within check_interval: not asked again
    assert t.prom.asked == [GUARD]
    await t.tick(5)
    assert t.prom.asked == [GUARD, GUARD] and len(await t.decisions()) == 1, "still stale: no second row"
    t.prom.series_of = {GUARD: 3}
    t.prom.value = 250.0
    await t.tick(15)
    assert [(d["trigger"], d["reason"], d["to_capacity"]) for d in await t.decisions()] == [
        ("notification", "guard_failed", 2), ("timer", "scaled", 3)]
    assert t.web.status().current == 3


async def test_while_the_alert_stays_firing_each_step_is_sized_live_once_per_cooldown(t: T) -> None:
    t.prom.value = 300.0
    await t.post(HIGH)
    await t.engine.run_once()
    asked = len(t.prom.asked)
    await t.tick(30)  # cooldown: no query at all
    assert len(t.prom.asked) == asked
    t.prom.value = 780.0
    await t.tick(30)
    assert [(d["from_capacity"], d["to_capacity"]) for d in await t.decisions()] == [(2, 3), (3, 8)]


async def test_an_alert_in_cooldown_is_recorded_at_once_and_checked_when_the_cooldown_ends(t: T) -> None:
    t.prom.value = 300.0
    await t.post(HIGH)
    await t.engine.run_once()  # 2 -> 3, cooldown 60 s
    asked = len(t.prom.asked)
    t.clock.advance(10)
    await t.post(alert("HighLoad", instance="b"))
    await t.engine.run_once()
    decisions = await t.decisions()
    assert [(d["trigger"], d["reason"]) for d in decisions] == [("notification", "scaled"),
                                                                ("notification", "cooldown")]
    assert "50s left" in str(decisions[-1]["message"]) and len(t.prom.asked) == asked, "no query in cooldown"
    t.prom.value = 650.0
    await t.tick(50)
    assert [(d["trigger"], d["reason"], d["to_capacity"]) for d in await t.decisions()][-1] == ("timer", "scaled", 7)


async def test_a_size_that_is_already_met_is_a_recorded_no_change(t: T) -> None:
    t.prom.value = 150.0
    await t.post(HIGH)
    await t.engine.run_once()
    (decision,) = await t.decisions()
    assert (decision["outcome"], decision["reason"]) == ("skipped", "no_change")
    assert "needs 2; already 2: no scale_out needed" in str(decision["message"])


@pytest.mark.parametrize(("alerts", "outcome", "reason", "to", "says"), [
    ((HIGH,), "acted", "scaled", 3, "live check failed: Prometheus at http://127.0.0.1:1 is unreachable "
                                    "(ConnectError); fixed step, on_check_error: step"),
    ((LOW,), "skipped", "check_failed", 2, "not acted (on_check_error: skip)"),
], ids=["scale-out-steps", "scale-in-keeps-capacity"])
async def test_prometheus_down_does_what_on_check_error_says(t: T, alerts: tuple[dict[str, object], ...],
                                                             outcome: str, reason: str, to: int, says: str) -> None:
    t.prom.down = True
    await t.post(*alerts)
    await t.engine.run_once()
    (decision,) = await t.decisions()
    assert (decision["outcome"], decision["reason"], decision["to_capacity"]) == (outcome, reason, to)
    assert says in str(decision["message"])


async def test_an_empty_size_query_is_a_failed_check(t: T) -> None:
    t.prom.value = None
    await t.post(HIGH)
    await t.engine.run_once()
    (decision,) = await t.decisions()
    assert (decision["reason"], decision["to_capacity"]) == ("scaled", 3)  # scale_out: the fixed step
    assert "returned no series" in str(decision["message"])


async def test_after_a_crash_the_unchecked_alerts_are_decided_by_the_timer(tmp_path: Path) -> None:
    async for t in _t(tmp_path):
        await t.post(HIGH)
        t.engine._checks_due.clear()  # the process dies before the check
    async for t in _t(tmp_path):  # same database: a new process
        await t.engine.run_once()
        (decision,) = await t.decisions()
        assert (decision["trigger"], decision["reason"], decision["to_capacity"]) == ("timer", "scaled", 5)


async def test_the_live_check_runs_at_once_and_a_slow_prometheus_never_holds_up_webhooks(tmp_path: Path) -> None:
    async for t in _t(tmp_path, interval="1h"):  # the timer cannot be what decides
        await t.engine.start()
        t.prom.gate = threading.Event()
        await t.post(HIGH)
        for _ in range(500):  # the check has started in its thread and waits for the gate
            if t.prom.asked:
                break
            await asyncio.sleep(0.01)
        assert t.prom.asked == [GUARD]
        await t.post(PLAIN)  # answered and decided while the check is stuck
        assert [d["reason"] for d in await t.decisions("plain")] == ["scaled"]
        assert await t.decisions() == []
        t.prom.gate.set()
        for _ in range(500):
            if await t.decisions():
                break
            await asyncio.sleep(0.01)
        (decision,) = await t.decisions()
        assert (decision["trigger"], decision["reason"], decision["to_capacity"]) == ("notification", "scaled", 5)


def test_query_errors_are_one_family() -> None:
    assert issubclass(PrometheusUnavailable, QueryError) and issubclass(EmptyResult, QueryError)
