"""Approvals and change freezes through the API (in process, ``fake`` provider, the test's clock): a big change waits
as pending_approval, is listed, shown in the group and in /metrics, approved (the action runs) or rejected, refused
with 409 when it cannot run, expired once by the engine's timer (a still-firing alert then asks again); while a
freeze window is open nothing but scale-out runs and a manual scale notes it.

The default clock is Saturday 2026-11-21 12:00 UTC: inside the weekend window "0 18 * * FRI" for 62h."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import TOKEN, Served, served
from tests.support.webhooks import alert, body

AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICY = f"""
server: {{auth: {{bearer_token: {TOKEN}}}, alert_stale_after: 1h}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 20
    desired: 2
    scale_out: {{matchers: ['alertname="Surge"'], adjustment_type: exact_capacity, adjustment: 9, cooldown: 60s}}
    scale_in: {{matchers: ['alertname="LowLoad"'], adjustment: -1, cooldown: 60s}}
    approval: {{over_change: 3, expire_after: 30m}}
FREEZE
"""
FREEZE = """    change_freeze:
      windows: [{name: weekend, cron: "0 18 * * FRI", duration: 62h, reason: weekend freeze}]"""
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SURGE = alert("Surge")


def policy(freeze: bool = False) -> str:
    return POLICY.replace("FREEZE", FREEZE if freeze else "")


async def post(s: Served, path: str, payload: object = None, status: int = 200) -> dict[str, Any]:
    response = await s.client.post(path, json={} if payload is None else payload, headers=AUTH)
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


async def approvals(s: Served, **params: str) -> list[dict[str, Any]]:
    response = await s.client.get("/api/v1/approvals", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def waiting(s: Served) -> dict[str, Any]:
    """Fire Surge (2 -> 9, over the limit of 3): it waits; returns the one pending approval."""
    assert (await s.client.post("/api/v1/alerts", json=body(SURGE), headers=AUTH)).status_code == 200
    await s.engine.run_once()
    (pending,) = await approvals(s)
    return pending


async def test_a_big_change_waits_until_approved(tmp_path: Path) -> None:
    async with served(tmp_path, policy(), now=TUESDAY) as s:
        pending = await waiting(s)
        assert (pending["group"], pending["kind"], pending["state"], pending["from"], pending["to"]) == \
            ("web", "scale", "pending", 2, 9)
        assert pending["why"] == "a scale-out of 7 instances is over the approval limit of 3"
        assert pending["expires_at"] == "2026-11-24T10:30:00+00:00"
        (decision,) = await s.decisions("web")
        assert (decision["id"], decision["outcome"], decision["reason"]) == (pending["id"], "skipped",
                                                                           "pending_approval")
        assert f"alertscaler approve {pending['id']}" in str(decision["message"])
        assert s.providers["web"].calls == [] and (await s.client.get("/api/v1/actions")).json() == []
        group = (await s.client.get("/api/v1/groups/web")).json()
        assert [a["id"] for a in group["pending_approvals"]] == [pending["id"]] and group["desired"] == 2
        await s.engine.refresh_gauges()
        assert 'alertscaler_approvals_pending{alertscaler_group="web"} 1.0' in (await s.client.get("/metrics")).text

        s.clock.advance(300)
        done = await post(s, f"/api/v1/approvals/{pending['id']}/approve", {"by": "alice"})
        assert (done["outcome"], done["reason"], done["approval"]["state"], done["approval"]["resolved_by"]) == \
            ("acted", "approved", "approved", "alice")
        assert done["action_id"] is not None and f"approval {pending['id']} approved by alice" in done["message"]
        await s.engine.run_once()
        assert s.providers["web"].status().current == 9
        newest = (await s.decisions("web"))[-1]
        assert (newest["trigger"], newest["reason"], newest["from_capacity"], newest["to_capacity"]) == \
            ("approval", "approved", 2, 9)
        assert await approvals(s) == [] and [a["state"] for a in await approvals(s, all="true")] == ["approved"]
        assert 'alertscaler_approvals_pending{alertscaler_group="web"} 0.0' in (await s.client.get("/metrics")).text
        refused = await post(s, f"/api/v1/approvals/{pending['id']}/approve", status=409)
        assert "is already approved by alice" in refused["error"]


async def test_reject(tmp_path: Path) -> None:
    async with served(tmp_path, policy(), now=TUESDAY) as s:
        pending = await waiting(s)
        done = await post(s, f"/api/v1/approvals/{pending['id']}/reject", {"by": "bob"})
        assert (done["outcome"], done["reason"], done["approval"]["state"]) == ("skipped", "rejected", "rejected")
        await s.engine.run_once()
        assert s.providers["web"].calls == [] and await approvals(s) == []


async def test_a_moved_group_is_refused_and_the_change_keeps_waiting(tmp_path: Path) -> None:
    async with served(tmp_path, policy(), now=TUESDAY) as s:
        pending = await waiting(s)
        await post(s, "/api/v1/groups/web/scale", {"desired": 3}, status=202)
        refused = await post(s, f"/api/v1/approvals/{pending['id']}/approve", status=409)
        assert "the group moved since: its desired size is 3, the change was planned from 2" in refused["error"]
        assert [a["id"] for a in await approvals(s)] == [pending["id"]]


async def test_expiry_is_recorded_once_and_a_still_firing_alert_asks_again(tmp_path: Path) -> None:
    async with served(tmp_path, policy(), now=TUESDAY) as s:
        pending = await waiting(s)
        s.clock.advance(30 * 60)
        shown = await approvals(s, all="true")
        assert shown[0]["state"] == "expired"  # decided on read, before the timer records it
        await s.engine.run_once()
        reasons = [(d["trigger"], d["reason"]) for d in await s.decisions("web")]
        assert reasons == [("notification", "pending_approval"), ("approval", "approval_expired")]
        await s.engine.run_once()  # the timer's next pass: the alert still fires, it asks again
        assert [(d["trigger"], d["reason"]) for d in await s.decisions("web")][2:] == [("timer", "pending_approval")]
        again = await approvals(s)
        assert len(again) == 1 and again[0]["id"] != pending["id"]
        await s.engine.run_once()
        assert len(await s.decisions("web")) == 3  # nothing new: expired once, asked once
        refused = await post(s, f"/api/v1/approvals/{pending['id']}/approve", status=409)
        assert "is already expired" in refused["error"]


@pytest.mark.parametrize(
    ("path", "payload", "headers", "status", "fragment"),
    [
        ("/api/v1/approvals/1/approve", {}, {}, 401, "authentication required"),
        ("/api/v1/approvals/abc/approve", {}, AUTH, 422, "must be an approval's id"),
        ("/api/v1/approvals/0/reject", {}, AUTH, 422, "must be an approval's id"),
        ("/api/v1/approvals/999/approve", {}, AUTH, 404, "no approval 999"),
        ("/api/v1/approvals/1/approve", [], AUTH, 422, "must be a JSON object"),
        ("/api/v1/approvals/1/approve", {"by": ""}, AUTH, 422, "must be a string of 1 to 100 characters"),
    ],
    ids=["no-credentials", "not-a-number", "zero", "unknown", "not-an-object", "empty-by"],
)
async def test_client_mistakes_are_4xx(tmp_path: Path, path: str, payload: object, headers: dict[str, str],
                                       status: int, fragment: str) -> None:
    async with served(tmp_path, policy(), now=TUESDAY) as s:
        response = await s.client.post(path, json=payload, headers=headers)
        assert response.status_code == status, response.text
        assert fragment in response.json()["error"]


async def test_listing_refuses_an_unknown_group_and_a_bad_flag(tmp_path: Path) -> None:
    async with served(tmp_path, policy(), now=TUESDAY) as s:
        assert (await s.client.get("/api/v1/approvals", params={"group": "nosuch"})).status_code == 404
        response = await s.client.get("/api/v1/approvals", params={"all": "maybe"})
        assert response.status_code == 422 and response.json()["field"] == "all"


async def test_a_freeze_lets_only_scale_out_run(tmp_path: Path) -> None:
    async with served(tmp_path, policy(freeze=True), sizes={"web": 5}) as s:  # Saturday: the freeze is open
        await post(s, "/api/v1/groups/web/scale", {"desired": 5}, status=202)
        group = (await s.client.get("/api/v1/groups/web")).json()
        assert group["change_freeze"]["open"] == {"name": "weekend", "reason": "weekend freeze",
                                                  "opened_at": "2026-11-20T18:00:00+00:00",
                                                  "closes_at": "2026-11-23T08:00:00+00:00"}
        assert group["change_freeze"]["next_opens"] == "2026-11-27T18:00:00+00:00"
        assert (await s.client.post("/api/v1/alerts", json=body(alert("LowLoad")), headers=AUTH)).status_code == 200
        await s.engine.run_once()
        frozen = (await s.decisions("web"))[-1]
        assert (frozen["reason"], frozen["from_capacity"], frozen["to_capacity"]) == ("change_freeze", 5, 4)
        assert str(frozen["message"]).startswith("change freeze 'weekend' until 2026-11-23T08:00:00Z (weekend freeze)")
        manual = await post(s, "/api/v1/groups/web/scale", {"desired": 3}, status=202)
        assert manual["outcome"] == "acted" and "an operator's command runs" in manual["message"]
        await post(s, "/api/v1/groups/web/scale", {"desired": 6}, status=202)
        assert (await s.client.post("/api/v1/alerts", json=body(SURGE), headers=AUTH)).status_code == 200
        await s.engine.run_once()
        outward = (await s.decisions("web"))[-1]
        assert (outward["reason"], outward["to_capacity"]) == ("scaled", 9)  # scale-out runs (6 -> 9: within the limit)


HEAL_POLICY = f"""
server: {{auth: {{bearer_token: {TOKEN}}}}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 8
    desired: 4
    heal: {{matchers: ['alertname="InstanceDown"'], grace: 60s, batch_window: 20s, budget: 2}}
    approval: {{heal: [replace]}}
"""


async def test_a_replacement_waits_a_repeat_still_waits_and_it_runs_once_approved(tmp_path: Path) -> None:
    async with served(tmp_path, HEAL_POLICY) as s:
        s.providers["web"].clock = s.clock
        s.providers["web"]._resize(4)
        s.clock.advance(3600)  # the members are past their grace period
        victim = s.providers["web"].members()[1].id

        async def down(severity: str = "warning") -> None:
            notification = body(alert("InstanceDown", alertscaler_member=victim, severity=severity))
            assert (await s.client.post("/api/v1/alerts", json=notification, headers=AUTH)).status_code == 200
            s.clock.advance(21)  # the batch window closes
            await s.engine.run_once()

        await down()
        (pending,) = await approvals(s)
        assert (pending["kind"], pending["what"], pending["why"]) == \
            ("heal", f"heal replace {victim}", "heal actions of kind replace need approval")
        await down(severity="critical")  # another alert naming the same member: the same heal, still waiting
        assert [a["id"] for a in await approvals(s)] == [pending["id"]]
        newest = (await s.decisions("web"))[-1]
        assert str(newest["message"]).startswith(f"still waits for approval {pending['id']}")
        assert s.providers["web"].heal_calls == []

        await post(s, f"/api/v1/approvals/{pending['id']}/approve", {"by": "alice"})
        await s.engine.run_once()
        assert s.providers["web"].heal_calls == [("replace", victim)]
        (action,) = (await s.client.get("/api/v1/actions")).json()
        assert (action["kind"], action["state"], action["targets"][0]["member_id"]) == ("heal", "succeeded", victim)


async def test_a_schedules_scale_in_during_a_freeze_is_said_once_and_runs_when_it_ends(tmp_path: Path) -> None:
    text = POLICY.replace("desired: 2", "desired: 6").replace("FREEZE", FREEZE + """
    schedule:
      windows: [{name: night, cron: "0 12 21 11 *", duration: 3d, max_size: 2}]""")
    async with served(tmp_path, text, now=datetime(2026, 11, 21, 11, 59, tzinfo=UTC), sizes={"web": 6}) as s:
        await s.engine.run_once()  # the first look: nothing open yet
        s.clock.advance(60)  # the night window opens: 6 -> 2, but the weekend freeze is open
        await s.engine.run_once()
        frozen = (await s.decisions("web"))[-1]
        assert (frozen["trigger"], frozen["reason"], frozen["to_capacity"]) == ("schedule", "change_freeze", 2)
        for _ in range(3):
            s.clock.advance(5)
            await s.engine.run_once()
        assert [d["reason"] for d in await s.decisions("web")].count("change_freeze") == 1  # said once
        s.clock.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 08:00: the freeze is over
        await s.engine.run_once()
        moved = (await s.decisions("web"))[-1]
        assert (moved["reason"], moved["from_capacity"], moved["to_capacity"]) == ("scheduled", 6, 2)
