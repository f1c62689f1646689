"""Alarm notifications end to end and all real: Prometheus evaluates an alarm's generated rule on a metric the test
sets, Alertmanager delivers it, alertscaler (its own process, SQLite store) stores the transition to ALARM, scales
the group and sends the alarm's notifications to real receivers on loopback owned by the test: a webhook receiver
(Monasca's body, HMAC-signed; Aodh's body) and an SMTP server (aiosmtpd). The Monasca receiver refuses (503) until
alertscaler is killed with SIGKILL, the notification still pending; after a restart it is delivered, once, with the
same notification id, and nothing else is sent again."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from alertscaler.demo.children import signal_group
from tests.e2e.harness import Pipeline, needs_stack
from tests.support.receivers import SmtpSink, WebhookReceiver

pytestmark = [pytest.mark.e2e, needs_stack]

SECRET = "e2e-notification-secret-0123456789"
POLICY = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 2s}
groups:
  web:
    provider: {type: fake, initial: 1}
    min_size: 1
    max_size: 6
    desired: 1
    scale_out: {matchers: ['alertname="NotThisOne"'], adjustment: 1, cooldown: 1h}
notification_methods:
  monasca: {type: webhook, url: "$HOOK/monasca", secret: $SECRET, backoff: 1s, max_backoff: 2s, retries: 20}
  aodh: {type: webhook, url: "$HOOK/aodh", shape: aodh}
  mail: {type: email, to: [ops@example.com], from: alertscaler@example.com, host: 127.0.0.1, port: $SMTP}
alarms:
  load_high:
    description: the web tier is overloaded
    expression: max(control_value{name=load}, deterministic) > 50
    group: web
    severity: HIGH
    alarm_actions: ['scale://web/scale_out', 'notify:monasca', 'notify:aodh', 'notify:mail']
"""


def kill9(pipe: Pipeline) -> None:
    """SIGKILL alertscaler (no clean stop: nothing handed back, nothing flushed) and reap it."""
    child = pipe.stack.children.pop("alertscaler")
    assert child.pid is not None
    signal_group(child.pid, signal.SIGKILL)
    child.stop()
    assert child.returncode == -signal.SIGKILL


def notifications(pipe: Pipeline, **params: Any) -> list[dict[str, Any]]:
    response = pipe.http.get("/api/v1/notifications", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


def test_an_alarm_notifies_and_a_pending_notification_survives_a_kill(tmp_path: Path) -> None:
    with WebhookReceiver() as hook, SmtpSink() as smtp:
        hook.answer(*[503] * 1000, path="/monasca")
        policy = POLICY.replace("$HOOK", hook.url).replace("$SECRET", SECRET).replace("$SMTP", str(smtp.port))
        with Pipeline(tmp_path, policy) as pipe:
            pipe.control.set("load", 100)
            pipe.wait(lambda: len(hook.received) >= 3 and hook.ok() and smtp.messages
                      and pipe.group("web")["desired"] == 2, timeout=90,
                      what="the alarm scaled web and notified: the Monasca hook refused twice, Aodh and mail taken")
            refused = [r for r in hook.received if r.path == "/monasca"]
            uid = refused[0].uid
            assert {r.uid for r in refused} == {uid} and all(r.verified(SECRET) for r in refused)
            body = refused[0].json()
            assert (body["alarm_name"], body["state"], body["old_state"], body["alarm_description"]) == (
                "load_high", "ALARM", "OK", "the web tier is overloaded")
            assert body["metrics"] == [{"name": "control_value", "dimensions": {}}]
            [aodh] = [r for r in hook.received if r.path == "/aodh"]
            assert (aodh.json()["current"], aodh.json()["previous"]) == ("alarm", "ok")
            assert "x-alertscaler-signature" not in aodh.headers  # that method has no secret
            [(_, message)] = smtp.messages
            assert message["Subject"] == "[alertscaler] load_high: ALARM (severity high)"
            [pending] = notifications(pipe, method="monasca")
            assert pending["status"] == "pending" and pending["uid"] == uid and pending["attempts"] >= 2

            kill9(pipe)
            hook.clear()  # the receiver is back: it answers 200 from now on
            pipe.stack.start_alertscaler(pipe.policy_file)

            pipe.wait(lambda: hook.ok(), timeout=60, what="the pending notification delivered after the restart")
            [delivered] = notifications(pipe, method="monasca")
            assert delivered["id"] == pending["id"] and delivered["status"] == "delivered"
            assert [r.uid for r in hook.ok()] == [uid] and hook.ok()[0].verified(SECRET)
            replicas = {a["replica"] for a in delivered["attempt_history"]}
            assert len(replicas) == 2  # attempts before the kill, and the restarted process's
            assert {n["method"]: n["status"] for n in notifications(pipe)} == {
                "monasca": "delivered", "aodh": "delivered", "mail": "delivered"}
            assert len(smtp.messages) == 1 and [r.path for r in hook.received] == ["/monasca"]
            assert pipe.group("web")["desired"] == 2  # the restart did not scale again either
