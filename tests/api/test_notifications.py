"""Alarm notifications through the whole service in process (``service.build_engine``, the real API, a SQLite store,
a clock the test moves): an alarm's alert arrives as a webhook, the transition puts its notifications in the outbox
in the same transaction, the engine delivers them to real receivers on loopback (an HTTP server, aiosmtpd), and
``GET /api/v1/notifications`` shows them with every attempt. A restart with a notification still pending delivers
it afterwards, with the same id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alertscaler.model.alarms import ALARM_LABEL, SIGNAL_LABEL
from tests.api.conftest import TOKEN, served
from tests.api.test_openapi import check
from tests.support.receivers import SmtpSink, WebhookReceiver
from tests.support.webhooks import alert, body

SECRET = "notification-hmac-secret-0123456789"
START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def policy(hook: WebhookReceiver, smtp: SmtpSink) -> str:
    return f"""
server:
  auth: {{bearer_token: {TOKEN}, protect_reads: true}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 4
    desired: 1
    scale_out: {{matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}}
notification_methods:
  hook: {{type: webhook, url: "{hook.url}/alarms", secret: {SECRET}, backoff: 10s, retries: 3}}
  mail: {{type: email, to: [ops@example.com], from: alertscaler@example.com, host: 127.0.0.1, port: {smtp.port}}}
alarms:
  cpu_high:
    expression: avg(cpu.user_perc) > 85
    group: web
    severity: HIGH
    alarm_actions: ['scale://web/scale_out', 'notify:hook', 'notify:mail']
    ok_actions: ['notify:hook']
"""


def alarm_alert(status: str = "firing") -> dict[str, Any]:
    return alert("cpu_high_alarm", status=status, starts=START,
                 **{ALARM_LABEL: "cpu_high", SIGNAL_LABEL: "alarm", "alertscaler_group": "web"})


@pytest.fixture
def receivers() -> Iterator[tuple[WebhookReceiver, SmtpSink]]:
    with WebhookReceiver() as hook, SmtpSink() as smtp:
        yield hook, smtp


async def test_an_alarm_transition_notifies_a_webhook_and_an_email_and_shows_every_attempt(
        tmp_path: Path, receivers: tuple[WebhookReceiver, SmtpSink]) -> None:
    hook, smtp = receivers
    async with served(tmp_path, policy(hook, smtp), now=START) as s:
        spec = (await s.client.get("/openapi.json")).json()
        hook.answer(503)
        response = await s.client.post("/api/v1/alerts", json=body(alarm_alert()), headers=AUTH)
        assert response.status_code == 200
        # recorded with the transition, before anything is delivered
        listed = (await s.client.get("/api/v1/notifications", headers=AUTH)).json()
        assert sorted((n["method"], n["status"]) for n in listed) == [("hook", "pending"), ("mail", "pending")]

        await s.engine.run_once()
        assert s.providers["web"].status().current == 2  # the alarm's scale action, beside the notifications
        by_method = {n["method"]: n for n in (await s.client.get("/api/v1/notifications", headers=AUTH)).json()}
        assert by_method["mail"]["status"] == "delivered" and by_method["hook"]["status"] == "pending"
        assert by_method["hook"]["last_result"] == "HTTP 503: Service Unavailable: try again later"

        s.clock.advance(10)  # the hook's backoff is 10 s, x (0.5 .. 1) jitter
        await s.engine.run_once()
        listed = (await s.client.get("/api/v1/notifications", headers=AUTH)).json()
        hooked = next(n for n in listed if n["method"] == "hook")
        assert hooked["status"] == "delivered" and hooked["attempts"] == 2
        assert [(a["attempt"], a["status"], a["ok"]) for a in hooked["attempt_history"]] == [
            (1, "HTTP 503", False), (2, "HTTP 200", True)]
        assert hooked["transition"]["old"] == "insufficient_data" and hooked["transition"]["new"] == "alarm"
        [transition] = (await s.client.get("/api/v1/alarms/cpu_high/history", headers=AUTH)).json()
        assert hooked["history_id"] == transition["id"] == by_method["mail"]["history_id"]  # names its transition
        check(spec, "/api/v1/notifications", "get", 200, listed)
        one = await s.client.get(f"/api/v1/notifications/{hooked['id']}", headers=AUTH)
        assert one.status_code == 200 and one.json() == hooked
        check(spec, "/api/v1/notifications/{id}", "get", 200, one.json())

        # what the receivers got: the webhook twice (one failure), signed, one id; one email
        assert len(hook.received) == 2 and {r.uid for r in hook.received} == {hooked["uid"]}
        assert all(r.verified(SECRET, now=s.clock.now.timestamp()) for r in hook.received)
        payload = hook.ok()[0].json()
        assert (payload["alarm_name"], payload["state"], payload["old_state"]) == (
            "cpu_high", "ALARM", "UNDETERMINED")
        [(_, message)] = smtp.messages
        assert message["Message-ID"] == f"<{by_method['mail']['uid']}@alertscaler>"

        # the alarm goes OK: one more notification (ok_actions), to the webhook only
        resolved = await s.client.post("/api/v1/alerts", json=body(alarm_alert("resolved")), headers=AUTH)
        assert resolved.status_code == 200
        await s.engine.run_once()
        assert [r.json()["state"] for r in hook.ok()] == ["ALARM", "OK"]
        assert len({r.uid for r in hook.received}) == 2 and len(smtp.messages) == 1


@pytest.mark.parametrize(
    ("params", "status", "methods"),
    [({}, 200, ["hook", "mail"]), ({"method": "mail"}, 200, ["mail"]), ({"status": "delivered"}, 200, ["mail"]),
     ({"status": "pending"}, 200, ["hook"]), ({"alarm": "other"}, 200, []), ({"limit": "1"}, 200, ["mail"]),
     ({"since": "2026-11-21T12:00:01Z"}, 200, []), ({"since": "2026-11-21T12:00:00Z"}, 200, ["hook", "mail"]),
     ({"status": "lost"}, 422, None), ({"limit": "0"}, 422, None), ({"since": "yesterday"}, 422, None),
     ({"since": "2026-11-21T12:00:00"}, 422, None)],
    ids=["all", "method", "delivered", "pending", "other-alarm", "limit", "since-later", "since-start",
         "bad-status", "bad-limit", "bad-since", "since-without-zone"],
)
async def test_the_listing_filters(tmp_path: Path, receivers: tuple[WebhookReceiver, SmtpSink],
                                   params: dict[str, str], status: int, methods: list[str] | None) -> None:
    hook, smtp = receivers
    hook.answer(500)
    async with served(tmp_path, policy(hook, smtp), now=START) as s:
        await s.client.post("/api/v1/alerts", json=body(alarm_alert()), headers=AUTH)
        await s.engine.run_once()
        response = await s.client.get("/api/v1/notifications", params=params, headers=AUTH)
        assert response.status_code == status, response.text
        if methods is not None:
            assert sorted(n["method"] for n in response.json()) == methods


@pytest.mark.parametrize(("path", "status"), [("/api/v1/notifications/999", 404),
                                              ("/api/v1/notifications/abc", 422), ("/api/v1/notifications/0", 422)],
                         ids=["unknown", "not-a-number", "zero"])
async def test_one_notification_by_a_wrong_id(tmp_path: Path, receivers: tuple[WebhookReceiver, SmtpSink],
                                              path: str, status: int) -> None:
    async with served(tmp_path, policy(*receivers), now=START) as s:
        response = await s.client.get(path, headers=AUTH)
        assert response.status_code == status and "error" in response.json()
        assert (await s.client.get(path)).status_code == 401  # protect_reads: credentials needed


async def test_a_notification_pending_at_a_restart_is_delivered_after_it_with_the_same_id(
        tmp_path: Path, receivers: tuple[WebhookReceiver, SmtpSink]) -> None:
    hook, smtp = receivers
    hook.answer(503)
    async with served(tmp_path, policy(hook, smtp), now=START) as s:
        await s.client.post("/api/v1/alerts", json=body(alarm_alert()), headers=AUTH)
        await s.engine.run_once()
        [pending] = (await s.client.get("/api/v1/notifications", params={"status": "pending"}, headers=AUTH)).json()
    assert len(hook.received) == 1 and hook.ok() == []

    async with served(tmp_path, policy(hook, smtp), now=START) as again:  # the same store: a restart
        again.clock.advance(10)
        await again.engine.run_once()
        [delivered] = (await again.client.get("/api/v1/notifications", params={"method": "hook"},
                                              headers=AUTH)).json()
        with again.store.engine.connect() as conn:
            outbox = conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
    assert delivered["id"] == pending["id"] and delivered["status"] == "delivered" and delivered["attempts"] == 2
    assert [r.uid for r in hook.received] == [pending["uid"]] * 2 and len(hook.ok()) == 1
    assert outbox == 2 and len(smtp.messages) == 1  # nothing enqueued twice, the email not sent again


async def test_a_reload_applies_a_changed_method_to_the_next_attempt(
        tmp_path: Path, receivers: tuple[WebhookReceiver, SmtpSink]) -> None:
    hook, smtp = receivers
    file = tmp_path / "policy.yml"
    file.write_text(policy(hook, smtp))
    hook.answer(503)
    async with served(tmp_path, file.read_text(), now=START, source=file) as s:
        await s.client.post("/api/v1/alerts", json=body(alarm_alert()), headers=AUTH)
        await s.engine.run_once()
        [refused] = hook.received
        with WebhookReceiver() as moved:
            file.write_text(policy(hook, smtp).replace(f"{hook.url}/alarms", f"{moved.url}/moved"))
            assert s.engine.reloader is not None
            reloaded = await s.engine.reloader.reload("test")
            assert reloaded.diff is not None and reloaded.diff.sections == ("notification_methods",)
            s.clock.advance(10)
            await s.engine.run_once()
            assert [(r.path, r.uid) for r in moved.ok()] == [("/moved", refused.uid)]
            assert moved.ok()[0].verified(SECRET, now=s.clock.now.timestamp())
        assert len(hook.received) == 1


async def test_repeat_actions_notify_again_on_each_resend_while_the_state_holds(
        tmp_path: Path, receivers: tuple[WebhookReceiver, SmtpSink]) -> None:
    """Aodh's ``repeat_actions: true``: Alertmanager's re-send of the firing alert (its repeat_interval) runs the
    ALARM actions again: a new notification with a new uid, no new transition in the history (history_id null)."""
    hook, smtp = receivers
    text = policy(hook, smtp).replace("    ok_actions: ['notify:hook']\n",
                                      "    ok_actions: ['notify:hook']\n    repeat_actions: true\n")
    async with served(tmp_path, text, now=START) as s:
        for _ in range(2):  # the alert, then Alertmanager's repeat of it
            response = await s.client.post("/api/v1/alerts", json=body(alarm_alert()), headers=AUTH)
            assert response.status_code == 200
            s.clock.advance(30)
            await s.engine.run_once()
        history = (await s.client.get("/api/v1/alarms/cpu_high/history", headers=AUTH)).json()
        hooks = [n for n in (await s.client.get("/api/v1/notifications", headers=AUTH)).json() if n["method"] == "hook"]
        assert len(history) == 1
        assert sorted((n["history_id"], n["transition"]["old"], n["transition"]["new"]) for n in hooks
                      if n["history_id"] is not None) == [(history[0]["id"], "insufficient_data", "alarm")]
        assert [(n["transition"]["old"], n["transition"]["new"]) for n in hooks if n["history_id"] is None] == [
            ("alarm", "alarm")]
        assert [r.json()["state"] for r in hook.ok()] == ["ALARM", "ALARM"] and len({r.uid for r in hook.ok()}) == 2
