"""Read routes, manual scaling, http_sd targets, metrics, OpenAPI and health."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from alertscaler.api.app import create_app
from tests.api.conftest import POLICY, TOKEN, Harness, make_harness
from tests.support.webhooks import alert, body

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_groups_list_and_one_group_with_members(harness: Harness) -> None:
    groups = (await harness.client.get("/api/v1/groups")).json()
    assert [g["name"] for g in groups] == ["web", "batch"]
    web = groups[0]
    assert (web["provider"], web["min_size"], web["max_size"], web["desired"]) == ("fake", 1, 4, 1)
    assert web["policies"]["scale_out"]["cooldown_s"] == 60.0
    await harness.client.post("/api/v1/groups/web/scale", json={"desired": 3}, headers=AUTH)
    await harness.engine.run_once()
    one = (await harness.client.get("/api/v1/groups/web")).json()
    assert (one["desired"], one["current"], len(one["members"])) == (3, 3, 3)
    assert one["members"][0]["state"] == "running"
    assert (await harness.client.get("/api/v1/groups/nope")).status_code == 404


@pytest.mark.parametrize(
    ("payload", "headers", "status", "fragment"),
    [
        ({"desired": 3}, {}, 401, "authentication required"),
        ({"desired": -1}, AUTH, 422, "desired"),
        ({"desired": "3"}, AUTH, 422, "desired"),
        ({"size": 3}, AUTH, 422, "desired"),
        ([3], AUTH, 422, "desired"),
    ],
    ids=["no-auth", "negative", "string", "wrong-key", "not-object"],
)
async def test_manual_scale_rejections(harness: Harness, payload: object, headers: dict[str, str], status: int,
                                       fragment: str) -> None:
    response = await harness.client.post("/api/v1/groups/web/scale", json=payload, headers=headers)
    assert response.status_code == status
    assert fragment in response.text
    assert harness.providers["web"].calls == []


async def test_manual_scale_is_bounded_and_recorded(harness: Harness) -> None:
    response = await harness.client.post("/api/v1/groups/web/scale", json={"desired": 9}, headers=AUTH)
    assert response.status_code == 202
    data = response.json()
    assert (data["outcome"], data["reason"], data["to"]) == ("acted", "manual", 4)
    assert "bounds 1..4" in data["message"]
    await harness.engine.run_once()
    assert harness.providers["web"].status().current == 4
    (decision,) = (await harness.client.get("/api/v1/decisions", params={"reason": "manual"})).json()
    assert decision["trigger"] == "manual" and decision["action_id"] == data["action_id"]
    unknown = await harness.client.post("/api/v1/groups/nope/scale", json={"desired": 1}, headers=AUTH)
    assert unknown.status_code == 404


async def test_decision_filters_and_bad_queries(harness: Harness) -> None:
    await harness.post_alerts(body(alert("HighLoad", service="web")))
    await harness.post_alerts(body(alert("Unrouted")))
    await harness.engine.run_once()
    assert len(await harness.decisions(group="web")) == 1
    assert [d["reason"] for d in await harness.decisions(outcome="skipped")] == ["no_group"]
    assert len(await harness.decisions(since="2026-11-21T12:00:00Z")) == 2
    assert await harness.decisions(until="2026-11-21T11:00:00Z") == []
    assert len(await harness.decisions(limit="1")) == 1
    for params, field in [({"outcome": "maybe"}, "outcome"), ({"limit": "0"}, "limit"),
                          ({"since": "yesterday"}, "since"), ({"since": "2026-11-21T12:00:00"}, "since"),
                          ({"reason": "whim"}, "reason")]:
        response = await harness.client.get("/api/v1/decisions", params=params)
        assert response.status_code == 422 and response.json()["field"] == field


async def test_targets_are_http_sd(harness: Harness) -> None:
    await harness.client.post("/api/v1/groups/web/scale", json={"desired": 2}, headers=AUTH)
    await harness.engine.run_once()
    await harness.engine.live_status("web")
    targets = (await harness.client.get("/api/v1/targets")).json()
    web = [t for t in targets if t["labels"]["alertscaler_group"] == "web"]
    assert len(web) == 2
    for t in web:
        assert len(t["targets"]) == 1 and t["targets"][0].startswith("127.0.0.1:")
        assert t["labels"]["alertscaler_provider"] == "fake"
        assert t["labels"]["alertscaler_member"].startswith("web-")
        assert set(t["labels"]) == {"alertscaler_group", "alertscaler_member", "alertscaler_provider",
                                    "alertscaler_state"}


async def test_metrics_count_what_happened(harness: Harness) -> None:
    high = body(alert("HighLoad", service="web"))
    await harness.post_alerts(high)
    await harness.post_alerts(high)
    await harness.client.post("/api/v1/alerts", content=b"{", headers={**AUTH, "Content-Type": "application/json"})
    await harness.engine.run_once()
    await harness.engine.refresh_gauges()
    text = (await harness.client.get("/metrics")).text
    assert "alertscaler_notifications_received_total 2.0" in text
    assert 'alertscaler_alerts_received_total{kind="duplicate"} 1.0' in text
    assert 'alertscaler_notifications_rejected_total{status="400"} 1.0' in text
    assert 'alertscaler_decisions_total{alertscaler_group="web",outcome="acted",reason="scaled"} 1.0' in text
    assert 'alertscaler_actions_total{alertscaler_group="web",result="succeeded"} 1.0' in text
    assert 'alertscaler_group_desired{alertscaler_group="web"} 2.0' in text
    assert 'alertscaler_group_current{alertscaler_group="web"} 2.0' in text
    assert "alertscaler_action_duration_seconds_bucket" in text


async def test_openapi_and_health(harness: Harness) -> None:
    spec = (await harness.client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/alerts" in spec["paths"] and "post" in spec["paths"]["/api/v1/alerts"]
    assert "503" in spec["paths"]["/api/v1/alerts"]["post"]["responses"]
    assert (await harness.client.get("/healthz")).text == "ok"
    assert (await harness.client.get("/readyz")).status_code == 200
    assert (await harness.client.get("/no/such/route")).status_code == 404
    assert (await harness.client.get("/api/v1/alerts")).status_code == 405


async def test_protect_reads_requires_auth_for_get_routes(tmp_path: Path) -> None:
    engine, *_ = make_harness(tmp_path, POLICY.replace("auth: {bearer_token:", "auth: {protect_reads: true, "
                                                                              "bearer_token:"))
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/api/v1/groups")).status_code == 401
        assert (await client.get("/api/v1/targets")).status_code == 401
        assert (await client.get("/api/v1/groups", headers=AUTH)).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
