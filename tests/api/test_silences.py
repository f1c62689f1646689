"""Alertmanager's silences and its view of firing alerts, through the API with an in-process Alertmanager
stand-in (the real client): a silenced alert is decided ``silenced`` and acts when the silence ends; an alert
Alertmanager no longer has is ``reconciled`` (no phantom steps); fail open for scale-out, closed for scale-in;
``GET /api/v1/alerts/active`` and the authenticated ``POST .../clear``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import TOKEN, served
from tests.support.alertmanager_standin import AlertmanagerStandin
from tests.support.webhooks import alert, body

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def policy(am_url: str) -> str:
    return f"""
server: {{auth: {{bearer_token: {TOKEN}}}, alert_stale_after: 1h}}
alertmanager: {{url: "{am_url}", reconcile_interval: 30s}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 6
    desired: 3
    scale_out: {{matchers: ['alertname="HighLoad"', 'service="web"'], adjustment: 1, cooldown: 60s}}
    scale_in: {{matchers: ['alertname="LowLoad"', 'service="web"'], adjustment: -1, cooldown: 60s}}
"""


@pytest.fixture
def am() -> Iterator[AlertmanagerStandin]:
    with AlertmanagerStandin() as standin:
        yield standin


HIGH = alert("HighLoad", service="web")
LOW = alert("LowLoad", service="web")


async def test_silence_stops_scaling_until_it_ends_and_a_lost_resolve_is_reconciled(
        tmp_path: Path, am: AlertmanagerStandin) -> None:
    async with served(tmp_path, policy(am.url), sizes={"web": 3}) as s:
        am.fire(HIGH, silenced_by=("silence-1",))
        assert (await s.client.post("/api/v1/alerts", json=body(HIGH), headers=AUTH)).status_code == 200
        await s.engine.run_once()
        for _ in range(3):  # stays silenced: one decision, no step
            s.clock.advance(61)
            await s.engine.run_once()
        steps = [(d["reason"], d["to_capacity"]) for d in await s.decisions("web")]
        assert steps == [("silenced", 3)]
        assert "silence-1" in str((await s.decisions("web"))[0]["message"])
        am.fire(HIGH)  # the silence ended, the alert still fires: it acts at the next re-evaluation
        s.clock.advance(5)
        await s.engine.run_once()
        assert [(d["reason"], d["to_capacity"]) for d in await s.decisions("web")][-1] == ("scaled", 4)
        am.forget(HIGH)  # resolved while nobody told us (the resolved notification was lost)
        s.clock.advance(61)
        await s.engine.run_once()
        s.clock.advance(61)
        await s.engine.run_once()
        reasons = [(d["reason"], d["to_capacity"]) for d in await s.decisions("web")]
        assert reasons[-1] == ("reconciled", None) and reasons.count(("scaled", 5)) == 0
        assert (await s.client.get("/api/v1/alerts/active")).json() == []
        assert s.providers["web"].status().current == 4


@pytest.mark.parametrize(
    ("sent", "reason", "desired"),
    [(HIGH, "scaled", 4), (LOW, "silence_unknown", 3)],
    ids=["scale-out-fails-open", "scale-in-fails-closed"],
)
async def test_alertmanager_down(tmp_path: Path, am: AlertmanagerStandin, sent: dict[str, object], reason: str,
                                 desired: int) -> None:
    am.down = True
    async with served(tmp_path, policy(am.url), sizes={"web": 3}) as s:
        await s.client.post("/api/v1/alerts", json=body(sent), headers=AUTH)
        await s.engine.run_once()
        (decision,) = await s.decisions("web")
        assert (decision["reason"], (await s.client.get("/api/v1/groups/web")).json()["desired"]) == (reason, desired)
        assert "Alertmanager" in str(decision["message"]) and am.asked >= 1


async def test_active_alerts_listed_and_cleared_by_hand(tmp_path: Path, am: AlertmanagerStandin) -> None:
    async with served(tmp_path, policy(am.url), sizes={"web": 3}) as s:
        am.fire(HIGH, silenced_by=("s",))
        await s.client.post("/api/v1/alerts", json=body(HIGH), headers=AUTH)
        await s.engine.run_once()
        (listed,) = (await s.client.get("/api/v1/alerts/active", params={"group": "web"})).json()
        assert (listed["fingerprint"], listed["policy"], listed["last_reason"]) == (
            HIGH["fingerprint"], "scale_out", "silenced")
        path = f"/api/v1/groups/web/alerts/{HIGH['fingerprint']}/clear"
        assert (await s.client.post(path, json={})).status_code == 401
        answer = await s.client.post(path, json={}, headers=AUTH)
        assert (answer.status_code, answer.json()["cleared"]) == (200, 1)
        assert (await s.client.post(path, json={}, headers=AUTH)).status_code == 404
        assert (await s.client.get("/api/v1/alerts/active")).json() == []
        assert [d["reason"] for d in await s.decisions("web")] == ["silenced", "cleared"]
        assert (await s.client.get("/api/v1/alerts/active", params={"group": "nope"})).status_code == 404
