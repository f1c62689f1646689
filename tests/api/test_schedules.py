"""Schedules through the service (in process, ``fake`` provider, the test's clock): a window's min/max hold
for every decision path while it is open, its opening and closing are recorded once, its ``desired`` is
applied once per opening — also across a restart, and also when the window opened while alertscaler was down.

The clock runs in UTC; the schedule is in Europe/Berlin (UTC+1 in November): 08:00 Berlin = 07:00 UTC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.config import load_policy
from alertscaler.providers.fake import FakeProvider
from alertscaler.store.sql import SqlStore
from tests.api.conftest import TOKEN, Clock, served
from tests.support.webhooks import alert, body

POLICY = f"""
server: {{auth: {{bearer_token: {TOKEN}}}, alert_stale_after: 1h}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 10
    desired: 2
    scale_in: {{matchers: ['alertname="LowLoad"'], adjustment: -1, cooldown: 60s}}
    schedule:
      timezone: Europe/Berlin
      windows:
        - {{name: business-hours, cron: "0 8 * * mon-fri", duration: 10h, min_size: 4}}
        - {{name: launch, cron: "0 12 23 11 *", duration: 2h, desired: 8, max_size: 12}}
"""
MONDAY_0759_BERLIN = datetime(2026, 11, 23, 6, 59, tzinfo=UTC)


@dataclass
class T:
    engine: Engine
    client: httpx.AsyncClient
    clock: Clock
    web: FakeProvider
    store: SqlStore

    async def at(self, hour: int, minute: int = 0) -> None:
        """Move the clock to that UTC time on the Monday and run every loop once."""
        self.clock.now = self.clock.now.replace(hour=hour, minute=minute)
        await self.engine.run_once()

    async def decisions(self) -> list[dict[str, object]]:
        data: list[dict[str, object]] = (await self.client.get("/api/v1/decisions", params={"group": "web"})).json()
        return list(reversed(data))

    async def schedule_rows(self) -> list[tuple[object, ...]]:
        return [(d["trigger"], d["reason"], d["from_capacity"], d["to_capacity"])
                for d in await self.decisions() if d["policy"] == "schedule"]


async def _t(tmp_path: Path, now: datetime = MONDAY_0759_BERLIN, size: int = 2) -> AsyncIterator[T]:
    async with served(tmp_path, POLICY, now=now, sizes={"web": size}) as s:
        yield T(s.engine, s.client, s.clock, s.providers["web"], s.store)


@pytest.fixture
async def t(tmp_path: Path) -> AsyncIterator[T]:
    async for value in _t(tmp_path):
        yield value


async def low(t: T, status: str = "firing") -> dict[str, object]:
    response = await t.client.post("/api/v1/alerts", json=body(alert("LowLoad", status, instance=str(t.clock.now))),
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    await t.engine.run_once()
    return (await t.decisions())[-1]


async def test_a_window_raises_min_while_open_and_its_edges_are_recorded_once(t: T) -> None:
    await t.engine.run_once()
    assert await t.schedule_rows() == [], "no window open before 08:00 Berlin"
    await t.at(7)
    await t.at(7, 1)
    await t.at(8)
    rows = await t.decisions()
    assert await t.schedule_rows() == [("schedule", "scheduled", 2, 4)], "opened once, not every tick"
    assert rows[0]["message"] == ("window business-hours opened (until 2026-11-23 18:00 Europe/Berlin); "
                                  "bounds 4..10: scale 2 -> 4")
    assert t.web.status().current == 4
    view = (await t.client.get("/api/v1/groups/web")).json()
    assert (view["min_size"], view["max_size"]) == (1, 10), "the configured bounds"
    assert view["schedule"] == {"timezone": "Europe/Berlin", "min_size": 4, "max_size": 10,
                                "open": [{"name": "business-hours", "opened_at": "2026-11-23T07:00:00+00:00",
                                          "closes_at": "2026-11-23T17:00:00+00:00"}],
                                "next_change": "2026-11-23T11:00:00+00:00"}  # launch opens at 12:00 Berlin
    # the window's bounds hold for alerts and for the API's manual scale
    assert (await low(t))["reason"] == "at_min"
    response = await t.client.post("/api/v1/groups/web/scale", json={"desired": 1},
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 202 and response.json()["reason"] == "no_change"
    await t.at(17)  # 18:00 Berlin: closed; the size is within the normal bounds, so it stays
    assert (await t.schedule_rows())[-1] == ("schedule", "no_change", 4, 4)
    assert (await t.decisions())[-1]["message"] == "window business-hours closed; bounds 1..10: size 4 kept"
    t.clock.advance(120)
    decision = await low(t)
    assert (decision["reason"], decision["to_capacity"]) == ("scaled", 3), "back to the normal bounds"


async def test_a_window_desired_is_applied_once_per_opening_and_not_again_after_a_restart(tmp_path: Path) -> None:
    async for t in _t(tmp_path):
        await t.at(11, 0)  # 12:00 Berlin on 23 Nov: launch opens (business-hours is open since 08:00)
        assert t.web.status().current == 8
        message = str((await t.decisions())[-1]["message"])
        assert message.startswith("window business-hours open (until 2026-11-23 18:00 Europe/Berlin); "
                                  "window launch open (until 2026-11-23 14:00 Europe/Berlin); bounds 4..12; "
                                  "desired 8 from window launch [launch@2026-11-23T11:00:00+00:00]"), message
        await low(t)  # the policies work inside the window: 8 -> 7
        assert t.web.status().current == 7
        t.clock.advance(30)  # (within the scale-in cooldown: the LowLoad alert is still firing)
        await t.engine.run_once()
        assert t.web.status().current == 7, "desired is applied once, not held"
        t.clock.now = t.clock.now.replace(second=0)
        await low(t, "resolved")
    async for t in _t(tmp_path, now=datetime(2026, 11, 23, 11, 45, tzinfo=UTC), size=7):  # a restart inside it
        await t.engine.run_once()
        assert t.web.status().current == 7
        assert [r for r in await t.schedule_rows() if r[1] == "scheduled"] == [("schedule", "scheduled", 2, 8)]


async def test_a_window_that_opened_while_alertscaler_was_down_is_applied_at_start(tmp_path: Path) -> None:
    async for t in _t(tmp_path, now=datetime(2026, 11, 23, 12, 30, tzinfo=UTC)):  # launch opened at 11:00 UTC
        await t.engine.run_once()
        assert t.web.status().current == 8
        await t.at(13, 0)  # 14:00 Berlin: launch closes, max back to 10: 8 stays (within 4..10)
        assert (await t.decisions())[-1]["message"] == "window launch closed; bounds 4..10: size 8 kept"


def test_a_bad_schedule_is_reported_with_its_path() -> None:
    bad = POLICY.replace("Europe/Berlin", "Europe/Berln").replace("0 12 23 11 *", "0 25 * * *")
    with pytest.raises(Exception) as info:
        load_policy(bad)
    text = str(info.value)
    assert "groups.web.schedule.timezone: unknown time zone 'Europe/Berln'" in text, text
    assert "groups.web.schedule.windows[1].cron: hour field '25': 25 is out of range 0-23" in text, text
