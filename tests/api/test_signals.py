"""Signed URLs and OpenStack alarm inputs through the API, in process (real SQLite store, ``fake`` providers, a clock
the test moves, ``engine.run_once()``): a signed URL scales a group without a token, a retry never steps twice,
every refusal is a 403 with its reason and a recorded ``refused`` decision (never a 500), the key rotates without
invalidating URLs unless asked, listings never show a signature; Aodh and Monasca bodies (valid, malformed) drive a
group through their token endpoints and through signed input URLs."""

from __future__ import annotations

import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from alertscaler.api.app import create_app
from tests.api.conftest import POLICY, TOKEN, Harness, make_harness

AUTH = {"Authorization": f"Bearer {TOKEN}"}
INPUTS = """
inputs:
  aodh:
    - {alarm: cpu_high, group: web, policy: scale_out}
    - {alarm: cpu_low, group: web, policy: scale_in}
    - {alarm: 0b6b4f0a-a1f4-4c5e-9d3a-000000000002, group: web, policy: scale_out}  # by alarm_id
  monasca:
    - {alarm: def-high, group: web, policy: scale_out}
"""
AODH: dict[str, Any] = {
    "alarm_name": "cpu_high", "alarm_id": "0b6b4f0a-a1f4-4c5e-9d3a-000000000001", "severity": "low",
    "previous": "ok", "current": "alarm", "reason": "Transition to alarm due to 3 samples outside threshold",
    "reason_data": {"type": "threshold", "disposition": "outside", "count": 3, "most_recent": 91.0}}
MONASCA: dict[str, Any] = {
    "alarm_id": "m-1", "alarm_definition_id": "def-high", "alarm_name": "high cpu", "alarm_description": "",
    "alarm_timestamp": 1763726400, "state": "ALARM", "old_state": "OK", "message": "Thresholds were exceeded",
    "tenant_id": "t", "metrics": [{"name": "cpu.user_perc", "dimensions": {"hostname": "web-1"}}]}


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    engine, clock, providers, store, policy = make_harness(tmp_path, POLICY + INPUTS)
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Harness(engine, client, clock, providers, store, policy)
    await engine.stop()
    store.close()


async def create(h: Harness, **body: Any) -> dict[str, Any]:
    response = await h.client.post("/api/v1/urls", json=body or {"group": "web", "policy": "scale_out"},
                                   headers=AUTH)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def local(url: str) -> str:
    """The path and query of a full URL (the ASGI client's base is http://test)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def decisions(h: Harness, **params: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = await h.decisions(**params)
    return data


async def desired(h: Harness, group: str = "web") -> int:
    value: int = (await h.client.get(f"/api/v1/groups/{group}")).json()["desired"]
    return value


async def test_a_signed_url_scales_the_group_without_a_token(h: Harness) -> None:
    created = await create(h, group="web", policy="scale_out", expires="30d", note="for aodh cpu_high")
    assert created["url"].startswith("http://test/api/v1/signal/web/scale_out/")
    assert (created["target"], created["group"], created["policy"], created["state"]) == \
        ("policy", "web", "scale_out", "active")

    response = await h.client.post(local(created["url"]))  # curl -X POST URL: no token, no body
    assert response.status_code == 202, response.text
    (decision,) = response.json()["decisions"]
    assert (decision["outcome"], decision["reason"], decision["from"], decision["to"]) == ("acted", "scaled", 1, 2)
    assert "via signed URL " + created["id"] in decision["message"]
    (stored,) = await decisions(h, group="web")
    assert (stored["trigger"], stored["policy"], stored["alerts"][0]["labels"]["source"]) == \
        ("signal", "scale_out", "url")
    await h.engine.run_once()
    assert h.providers["web"].status().current == 2
    (listed,) = (await h.client.get("/api/v1/urls", headers=AUTH)).json()
    assert (listed["uses"], listed["last_used_at"] is not None) == (1, True)


async def test_a_retry_never_steps_twice_and_cooldowns_apply(h: Harness) -> None:
    path = local((await create(h))["url"])
    first = await h.client.post(path, headers={"Idempotency-Key": "job-42"})
    again = await h.client.post(path, headers={"Idempotency-Key": "job-42"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["status"] == "duplicate"
    assert again.json()["first_decisions"] == [first.json()["decisions"][0]["decision_id"]]
    assert again.json()["decisions"][0]["reason"] == "duplicate"
    assert await desired(h) == 2
    within = await h.client.post(path, headers={"Idempotency-Key": "job-43"})  # a new signal, in the cooldown
    assert within.json()["decisions"][0]["reason"] == "cooldown"
    h.clock.advance(61)
    after = await h.client.post(path)
    assert (after.json()["decisions"][0]["reason"], await desired(h)) == ("scaled", 3)
    reasons = [d["reason"] for d in await decisions(h, group="web")]
    assert reasons == ["scaled", "cooldown", "duplicate", "scaled"]


def tamper_group(url: str) -> str:
    return url.replace("/signal/web/", "/signal/batch/")


def tamper_expiry(url: str) -> str:
    query = dict(p.split("=") for p in urlsplit(url).query.split("&"))
    return url.replace(f"expires={query['expires']}", f"expires={int(query['expires']) + 86400}")


def tamper_sig(url: str) -> str:
    head, _, sig = url.rpartition("sig=")
    return f"{head}sig={'B' if sig[0] == 'A' else 'A'}{sig[1:]}"


@pytest.mark.parametrize(("how", "reason"), [
    ("group", "bad_signature"), ("policy", "bad_signature"), ("expiry", "bad_signature"), ("sig", "bad_signature"),
    ("no-sig", "malformed"), ("expired", "expired"), ("revoked", "revoked"), ("retired-key", "key_retired"),
    ("unknown-id", "bad_signature"),
], ids=lambda v: str(v))
async def test_refused_urls_are_403_with_a_recorded_refusal(h: Harness, how: str, reason: str) -> None:
    created = await create(h)
    url = local(created["url"])
    if how == "group":
        url = tamper_group(url)
    elif how == "policy":
        url = url.replace("/scale_out/", "/scale_in/")
    elif how == "expiry":
        url = tamper_expiry(url)
    elif how == "sig":
        url = tamper_sig(url)
    elif how == "no-sig":
        url = url.rpartition("&sig=")[0]
    elif how == "expired":
        h.clock.advance(30 * 86400 + 1)
    elif how == "revoked":
        assert (await h.client.post(f"/api/v1/urls/{created['id']}/revoke", json={}, headers=AUTH)).status_code == 200
    elif how == "retired-key":
        rotated = await h.client.post("/api/v1/urls/keys/rotate", json={"retire_old": True}, headers=AUTH)
        assert rotated.json()["retired"] == [created["key_id"]]
    elif how == "unknown-id":
        url = url.replace(created["id"], "ffffffffffffffff")

    response = await h.client.post(url, json=AODH)
    assert response.status_code == 403, response.text
    assert response.json()["reason"] == reason and "signed URL refused" in response.json()["error"]
    (refusal,) = await decisions(h, reason="refused")
    assert refusal["trigger"] == "signal" and f"[{reason}]" in refusal["message"]
    assert refusal["group"] == ("web" if how not in ("unknown-id",) else None)
    assert await desired(h) == 1 and h.providers["web"].calls == []


async def test_the_wrong_method_is_not_served(h: Harness) -> None:
    url = local((await create(h))["url"])
    assert (await h.client.get(url)).status_code == 405
    assert (await h.client.put(url)).status_code == 405
    assert await desired(h) == 1


async def test_rotating_the_key_keeps_older_urls_valid_unless_asked(h: Harness) -> None:
    old = await create(h)
    rotated = (await h.client.post("/api/v1/urls/keys/rotate", json={}, headers=AUTH)).json()
    assert rotated["retired"] == [] and rotated["key"]["kid"] != old["key_id"]
    new = await create(h, group="web", policy="scale_in")
    assert new["key_id"] == rotated["key"]["kid"]
    assert (await h.client.post(local(old["url"]))).status_code == 202
    assert (await h.client.post(local(new["url"]))).status_code == 202
    keys = (await h.client.get("/api/v1/urls/keys", headers=AUTH)).json()
    assert [k["kid"] for k in keys] == [old["key_id"], new["key_id"]] and not any(k["retired"] for k in keys)


async def test_the_secret_stays_secret(h: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = await create(h)
    sig = created["url"].rpartition("sig=")[2]
    key_file = tmp_path / "alertscaler-state" / "url-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    await h.client.post(local(created["url"]))
    await h.client.post(tamper_sig(local(created["url"])))
    listed = (await h.client.get("/api/v1/urls", headers=AUTH)).text
    assert sig[:4] + "…" in listed and sig not in listed
    everything = [listed, (await h.client.get("/api/v1/urls/keys", headers=AUTH)).text,
                  (await h.client.get("/api/v1/decisions")).text, (await h.client.get("/openapi.json")).text,
                  *(r.getMessage() for r in caplog.records if r.name.startswith("alertscaler"))]  # not the client's
    assert not any(secret in text or sig in text for text in everything)
    with h.store.engine.connect() as conn:
        dump = "\n".join(str(row) for table in ("url_keys", "signed_urls", "signals", "decisions")
                         for row in conn.exec_driver_sql(f"SELECT * FROM {table}"))
    assert secret not in dump and sig not in dump


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"group": "nope", "policy": "scale_out"}, 404, "no group named 'nope'"),
    ({"group": "batch", "policy": "scale_in"}, 422, "policy: group 'batch' has no scale_in policy"),
    ({"group": "web", "policy": "heal"}, 422, "policy: must be scale_out or scale_in"),
    ({"group": "web"}, 422, "policy: required"),
    ({"group": "web", "policy": "scale_out", "expires": "400d"}, 422, "expires: must be more than 0s and at most"),
    ({"group": "web", "policy": "scale_out", "expires": "soon"}, 422, "expires:"),
    ({"input": "kafka"}, 422, "input: must be aodh or monasca"),
    ({"input": "aodh", "group": "web"}, 422, "not both"),
], ids=["unknown-group", "missing-policy", "not-a-step-policy", "no-policy", "too-long", "not-a-duration",
        "unknown-input", "input-and-group"])
async def test_bad_url_requests_say_what_is_wrong(h: Harness, body: dict[str, Any], status: int,
                                                  needle: str) -> None:
    response = await h.client.post("/api/v1/urls", json=body, headers=AUTH)
    assert response.status_code == status and needle in response.json()["error"], response.text


async def test_managing_urls_needs_credentials(h: Harness) -> None:
    created = await create(h)
    for method, path, body in [("POST", "/api/v1/urls", {"group": "web", "policy": "scale_out"}),
                               ("GET", "/api/v1/urls", None), ("GET", "/api/v1/urls/keys", None),
                               ("POST", f"/api/v1/urls/{created['id']}/revoke", {}),
                               ("POST", "/api/v1/urls/keys/rotate", {})]:
        response = await h.client.request(method, path, json=body)
        assert response.status_code == 401, (method, path)
    assert (await h.client.post("/api/v1/urls/nope/revoke", json={}, headers=AUTH)).status_code == 404


async def test_a_paused_group_records_the_signal_paused(h: Harness) -> None:
    url = local((await create(h))["url"])
    assert (await h.client.post("/api/v1/groups/web/pause", json={}, headers=AUTH)).status_code == 200
    response = await h.client.post(url)
    assert response.json()["decisions"][0]["reason"] == "paused" and await desired(h) == 1


async def test_a_dry_run_group_records_what_the_signal_would_have_done(h: Harness) -> None:
    url = local((await create(h, group="batch", policy="scale_out"))["url"])
    decision = (await h.client.post(url)).json()["decisions"][0]
    assert (decision["reason"], decision["from"], decision["to"]) == ("dry_run", 0, 5)
    assert await desired(h, "batch") == 0


@pytest.mark.parametrize(("body", "reason"), [
    ({**AODH, "current": "ok"}, "resolved"), ({**AODH, "current": "insufficient data"}, "insufficient_data"),
    ({**MONASCA, "state": "UNDETERMINED"}, "insufficient_data"), ({"current": "ok"}, "resolved"),
], ids=["aodh-ok", "aodh-insufficient", "monasca-undetermined", "heat-details-ok"])
async def test_a_signed_url_posted_an_alarm_that_is_not_firing_records_no_action(
        h: Harness, body: dict[str, Any], reason: str) -> None:
    response = await h.client.post(local((await create(h))["url"]), json=body)
    assert response.status_code == 202 and response.json()["decisions"][0]["reason"] == reason
    assert await desired(h) == 1


async def aodh(h: Harness, body: Any, request_id: str | None = None, **headers: str) -> httpx.Response:
    extra = {"x-openstack-request-id": request_id} if request_id else {}
    return await h.client.post("/api/v1/inputs/aodh", json=body, headers={**AUTH, **extra, **headers})


async def test_aodh_alarm_actions_drive_the_group(h: Harness) -> None:
    fired = await aodh(h, AODH, "req-0001")
    assert fired.status_code == 202 and fired.json()["decisions"][0]["reason"] == "scaled"
    retried = await aodh(h, AODH, "req-0001")  # Aodh's rest_notifier_max_retries: the same request id
    assert retried.status_code == 200 and retried.json()["status"] == "duplicate"
    ok = await aodh(h, {**AODH, "previous": "alarm", "current": "ok"}, "req-0002")
    no_data = await aodh(h, {**AODH, "current": "insufficient data"}, "req-0003")
    unmapped = await aodh(h, {**AODH, "alarm_name": "disk_full", "alarm_id": "other"}, "req-0004")
    by_id = await aodh(h, {**AODH, "alarm_name": "renamed", "alarm_id": "0b6b4f0a-a1f4-4c5e-9d3a-000000000002"},
                       "req-0005")
    assert [r.json()["decisions"][0]["reason"] for r in (ok, no_data, unmapped, by_id)] == \
        ["resolved", "insufficient_data", "no_group", "cooldown"]
    h.clock.advance(61)
    low = await aodh(h, {**AODH, "alarm_name": "cpu_low", "alarm_id": "low-1"}, "req-0006")
    assert (low.json()["decisions"][0]["reason"], low.json()["decisions"][0]["to"]) == ("scaled", 1)
    await h.engine.run_once()
    assert h.providers["web"].status().current == 1
    assert (await aodh(h, AODH, "req-0007", Authorization="Bearer wrong-token")).status_code == 401


async def test_monasca_notifications_drive_the_group(h: Harness) -> None:
    post = h.client.post
    fired = await post("/api/v1/inputs/monasca", json=MONASCA, headers=AUTH)
    retried = await post("/api/v1/inputs/monasca", json=MONASCA, headers=AUTH)  # retried every 30 s on failure
    assert (fired.status_code, retried.status_code) == (202, 200)
    assert fired.json()["decisions"][0]["reason"] == "scaled" and retried.json()["status"] == "duplicate"
    ok = await post("/api/v1/inputs/monasca", json={**MONASCA, "state": "OK", "old_state": "ALARM",
                                                     "alarm_timestamp": 1763726460}, headers=AUTH)
    assert ok.json()["decisions"][0]["reason"] == "resolved" and await desired(h) == 2


@pytest.mark.parametrize(("path", "body", "content_type", "status", "field"), [
    ("aodh", {k: v for k, v in AODH.items() if k != "current"}, "application/json", 422, "current"),
    ("aodh", {**AODH, "current": "burning"}, "application/json", 422, "current"),
    ("aodh", {**AODH, "alarm_name": "\ud800"}, "application/json", 422, "alarm_name"),
    ("aodh", "{", "application/json", 400, None),
    ("aodh", AODH, "text/plain", 415, "Content-Type"),
    ("monasca", {**MONASCA, "state": "FIRING"}, "application/json", 422, "state"),
    ("monasca", {k: v for k, v in MONASCA.items() if k != "alarm_definition_id"}, "application/json", 422,
     "alarm_definition_id"),
    ("monasca", [MONASCA], "application/json", 422, None),
], ids=["aodh-no-current", "aodh-bad-state", "aodh-lone-surrogate", "not-json", "wrong-content-type",
        "monasca-bad-state", "monasca-no-definition", "monasca-not-an-object"])
async def test_bad_alarm_bodies_are_4xx_naming_what_is_wrong(h: Harness, path: str, body: Any, content_type: str,
                                                             status: int, field: str | None) -> None:
    import json
    content = body if isinstance(body, str) else json.dumps(body)
    response = await h.client.post(f"/api/v1/inputs/{path}", content=content.encode("utf-8", "surrogatepass"),
                                   headers={**AUTH, "Content-Type": content_type})
    assert response.status_code == status, response.text
    if field:
        assert response.json()["field"] == field
    assert await decisions(h) == [] and await desired(h) == 1


async def test_an_aodh_signed_input_url_needs_no_token(h: Harness) -> None:
    created = await create(h, input="aodh", note="alarm_actions of cpu_high")
    assert "/api/v1/inputs/aodh/" in created["url"] and created["group"] is None
    fired = await h.client.post(local(created["url"]), json=AODH, headers={"x-openstack-request-id": "req-1"})
    assert fired.status_code == 202 and fired.json()["decisions"][0]["reason"] == "scaled"
    tampered = await h.client.post(tamper_sig(local(created["url"])), json=AODH)
    assert tampered.status_code == 403 and tampered.json()["reason"] == "bad_signature"
    monasca_url = local(created["url"]).replace("/inputs/aodh/", "/inputs/monasca/")  # another target: refused
    assert (await h.client.post(monasca_url, json=MONASCA)).status_code == 403
    assert await desired(h) == 2


async def test_a_signal_is_durable_before_it_is_answered(tmp_path: Path) -> None:
    engine, _, _, store, _ = make_harness(tmp_path, POLICY + INPUTS)
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post("/api/v1/inputs/aodh", json=AODH, headers=AUTH)
        assert response.status_code == 202
    store.close()  # "crash" before any worker ran
    again, _, providers, store2, _ = make_harness(tmp_path, POLICY + INPUTS)  # a new engine, the same database
    try:
        (decision,) = store2.list_decisions(group="web")
        assert (decision.reason.value, decision.trigger.value, decision.action_id is not None) == \
            ("scaled", "signal", True)
        await again.run_once()
        assert providers["web"].status().current == 2
    finally:
        await again.stop()
        store2.close()
