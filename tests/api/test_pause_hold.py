"""During an incident: pause / resume (a group's, every group's; with an end; durable across a restart) and a
manual scale's hold, through the API, in-process (``Clock`` fixture, ``engine.run_once()``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.api.app import create_app
from tests.api.conftest import TOKEN, Harness, make_harness
from tests.support.webhooks import alert, body

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HIGH = alert("HighLoad", service="web")


async def post(h: Harness, path: str, payload: object) -> dict[str, Any]:
    response = await h.client.post(path, json=payload, headers=AUTH)
    assert response.status_code in (200, 202), response.text
    data: dict[str, Any] = response.json()
    return data


@pytest.mark.parametrize(
    ("pause_path", "resume_path"),
    [("/api/v1/groups/web/pause", "/api/v1/groups/web/resume"), ("/api/v1/pause", "/api/v1/resume")],
    ids=["group", "every-group"],
)
async def test_paused_signals_are_decided_paused_and_nothing_runs_until_resumed(
        harness: Harness, pause_path: str, resume_path: str) -> None:
    paused = await post(harness, pause_path, {"reason": "incident 42"})
    assert paused["active"] and paused["until"] is None and paused["reason"] == "incident 42"
    await harness.post_alerts(body(HIGH))
    await harness.engine.run_once()
    (decision,) = await harness.decisions(group="web")
    assert (decision["outcome"], decision["reason"], decision["from_capacity"], decision["to_capacity"]) == \
        ("skipped", "paused", 1, 2)
    assert "would have" in str(decision["message"]) and "incident 42" in str(decision["message"])
    assert (await harness.client.get("/api/v1/actions")).json() == []
    assert harness.providers["web"].calls == []
    group = (await harness.client.get("/api/v1/groups/web")).json()
    assert group["paused"]["reason"] == "incident 42" and group["desired"] == 1
    assert 'alertscaler_group_paused{alertscaler_group="web"} 1.0' in (await harness.client.get("/metrics")).text
    harness.clock.advance(30)
    await harness.engine.run_once()  # still paused: said once, not every tick
    assert len(await harness.decisions(group="web")) == 1

    assert (await post(harness, resume_path, {}))["resumed"] is True
    assert 'alertscaler_group_paused{alertscaler_group="web"} 0.0' in (await harness.client.get("/metrics")).text
    harness.clock.advance(30)
    await harness.engine.run_once()  # the alert still fires: the timer acts now
    newest = (await harness.decisions(group="web"))[0]
    assert (newest["outcome"], newest["reason"], newest["to_capacity"]) == ("acted", "scaled", 2)
    assert harness.providers["web"].status().current == 2


async def test_an_expired_pause_is_simply_over(harness: Harness) -> None:
    paused = await post(harness, "/api/v1/groups/web/pause", {"for": "10m"})
    assert paused["until"] is not None
    await harness.post_alerts(body(HIGH))
    await harness.engine.run_once()
    assert (await harness.decisions(group="web"))[0]["reason"] == "paused"
    harness.clock.advance(601)
    await harness.engine.run_once()
    assert (await harness.decisions(group="web"))[0]["reason"] == "scaled"
    assert (await harness.client.get("/api/v1/groups/web")).json()["paused"] is None


async def test_a_pause_survives_a_restart_on_the_same_store(tmp_path: Path) -> None:
    engine, *_ = make_harness(tmp_path)
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/api/v1/groups/web/pause", json={"for": "2h"}, headers=AUTH)
        assert response.status_code == 200
    engine.store.close()
    again, _, providers, store, _ = make_harness(tmp_path)  # a new engine, the same database
    app = create_app(again, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await client.post("/api/v1/alerts", json=body(HIGH), headers=AUTH)
        await again.run_once()
        decisions = (await client.get("/api/v1/decisions", params={"group": "web"})).json()
    store.close()
    assert [d["reason"] for d in decisions] == ["paused"]
    assert providers["web"].calls == []


async def test_a_hold_keeps_the_timer_from_moving_the_group_until_it_ends(harness: Harness) -> None:
    scaled = await post(harness, "/api/v1/groups/web/scale", {"desired": 3, "hold": "30m"})
    assert (scaled["reason"], scaled["held_until"]) == ("manual", "2026-11-21T12:30:00+00:00")
    await harness.engine.run_once()
    await harness.post_alerts(body(alert("LowLoad", service="web")))
    await harness.engine.run_once()
    held = (await harness.decisions(group="web"))[0]
    assert (held["reason"], held["from_capacity"], held["to_capacity"]) == ("held", 3, 2)
    assert "2026-11-21T12:30:00" in str(held["message"])
    harness.clock.advance(120)
    await harness.engine.run_once()  # said once
    assert [d["reason"] for d in await harness.decisions(group="web")] == ["held", "manual"]
    harness.clock.advance(30 * 60)
    await harness.engine.run_once()
    assert (await harness.decisions(group="web"))[0]["reason"] == "scaled"
    assert harness.providers["web"].status().current == 2


async def test_without_a_hold_the_answer_says_when_policies_may_move_it(harness: Harness) -> None:
    scaled = await post(harness, "/api/v1/groups/web/scale", {"desired": 2})
    assert scaled["held_until"] is None
    assert scaled["policies_from"] == "2026-11-21T12:00:00+00:00"  # no cooldown runs: at once


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [("/api/v1/groups/web/pause", {"for": "soon"}, "for"), ("/api/v1/groups/web/pause", {"for": "0s"}, "for"),
     ("/api/v1/pause", {"reason": 42}, "reason"), ("/api/v1/groups/web/scale", {"desired": 2, "hold": "-1m"}, "hold"),
     ("/api/v1/groups/web/scale", {"desired": 2, "hold": "90d"}, "hold")],
    ids=["not-a-duration", "zero", "reason-not-a-string", "negative-hold", "hold-too-long"],
)
async def test_bad_pause_and_hold_bodies_are_refused_naming_the_field(harness: Harness, path: str,
                                                                      payload: object, field: str) -> None:
    response = await harness.client.post(path, json=payload, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize("path", ["/api/v1/groups/web/pause", "/api/v1/groups/web/resume", "/api/v1/pause",
                                  "/api/v1/resume"], ids=["pause", "resume", "pause-all", "resume-all"])
async def test_pause_routes_need_write_credentials_and_json(harness: Harness, path: str) -> None:
    assert (await harness.client.post(path, json={})).status_code == 401
    form = await harness.client.post(path, content=b"for=2h", headers={**AUTH, "Content-Type": "text/plain"})
    assert form.status_code == 415
