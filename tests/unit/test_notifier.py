"""Delivering the outbox (``act.notifying``): a real SQLite store, real receivers on loopback (an HTTP server and
aiosmtpd), the time and the jitter passed in. Each test enqueues an alarm transition's notifications as
``act.alarming`` does (``enqueue_for_transition``) and runs delivery passes at chosen times."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertscaler.act.notifying import Notifier, enqueue_for_transition
from alertscaler.config import PolicyFile, load_policy
from alertscaler.config.alarms import alarm_definitions
from alertscaler.model.alarms import AlarmState, Transition
from alertscaler.model.notifications import DeliveryStatus, Outgoing
from alertscaler.store.sql import SqlStore
from tests.support.receivers import SmtpSink, WebhookReceiver, free_port

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "hmac-secret-of-the-ops-hook-0123"
SMTP_PASSWORD = "smtp-password-42"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> datetime:
        self.now = T0 + timedelta(seconds=seconds)
        return self.now


@dataclass
class World:
    tmp: Path
    hook: WebhookReceiver
    smtp: SmtpSink
    store: SqlStore
    clock: Clock = field(default_factory=Clock)

    def policy(self, actions: str, methods: str = "", group: str = "") -> PolicyFile:
        return load_policy(f"""
server: {{auth: {{insecure_no_auth: true}}}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 5
    scale_out: {{matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}}
  api:
    provider: {{type: fake}}
    min_size: 1
    max_size: 5
notification_methods:
  hook: {{type: webhook, url: "{self.hook.url}/monasca", secret: {SECRET}, retries: 2, backoff: 30s}}
  aodh-hook: {{type: webhook, url: "{self.hook.url}/aodh", shape: aodh}}
  mail: {{type: email, to: [ops@example.com, dev@example.com], from: alertscaler@example.com, host: 127.0.0.1,
          port: {self.smtp.port}, username: alertscaler, password: {SMTP_PASSWORD}, timeout: 5s}}
  audit: {{type: log}}
{methods}
alarms:
  cpu_high:
    description: CPU of the web tier
    meter_name: cpu_util
    threshold: 70
    comparison_operator: gt
    severity: critical
    {group}
    alarm_actions: {actions}
    ok_actions: {actions}
""", base_dir=self.tmp)

    def transition(self, policy: PolicyFile, new: AlarmState = AlarmState.ALARM, alarm: str = "cpu_high") -> list[int]:
        definition = alarm_definitions(policy.alarms)[alarm]
        old = AlarmState.OK if new is AlarmState.ALARM else AlarmState.ALARM
        t = Transition(alarm, {"hostname": "web-1"}, old, new, self.clock.now, f"Transition to {new.value}",
                       definition.actions.on(new))
        with self.store.transaction() as tx:
            return enqueue_for_transition(tx, definition, t, self.clock.now, policy.notification_methods)

    def notifier(self, policy: PolicyFile, replica: str = "r1", drives: tuple[str, ...] = ("web", "api"),
                 ) -> Notifier:
        return Notifier(policy, self.store, self.clock, replica, lambda group, now: group in drives,
                        jitter=lambda: 0.5)

    def row(self, notification_id: int) -> Outgoing:
        row = self.store.get_notification(notification_id)
        assert row is not None
        return row


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    with WebhookReceiver() as hook, SmtpSink(credentials=("alertscaler", SMTP_PASSWORD)) as smtp:
        yield World(tmp_path, hook, smtp, store)
    store.close()


async def test_a_webhook_is_delivered_once_signed_with_its_stable_id(world: World) -> None:
    policy = world.policy('["notify:hook"]', group="group: web")
    [nid] = world.transition(policy)
    notifier = world.notifier(policy)

    assert [n.id for n in await notifier.run_due(world.clock.at(0))] == [nid]
    assert await notifier.run_due(world.clock.at(60)) == []  # delivered: never again

    [request] = world.hook.received
    row = world.row(nid)
    assert request.path == "/monasca" and request.uid == row.uid
    assert request.verified(SECRET, now=T0.timestamp())
    assert not request.verified("another-secret-of-16+chars", now=T0.timestamp())
    body = request.json()
    assert (body["alarm_name"], body["state"], body["old_state"]) == ("cpu_high", "ALARM", "OK")
    assert (row.status, row.attempts, row.last_result, row.finished_at) == (
        DeliveryStatus.DELIVERED, 1, "HTTP 200: OK", T0)
    [attempt] = row.history
    assert (attempt.attempt, attempt.at, attempt.replica, attempt.ok, attempt.status) == (1, T0, "r1", True,
                                                                                         "HTTP 200")


async def test_a_failing_receiver_is_retried_with_backoff_then_delivered(world: World) -> None:
    policy = world.policy('["notify:hook"]')
    [nid] = world.transition(policy)
    notifier = world.notifier(policy)
    world.hook.answer(503, 503)

    assert len(await notifier.run_due(world.clock.at(0))) == 1
    row = world.row(nid)
    assert (row.status, row.attempts, row.next_attempt_at) == (DeliveryStatus.PENDING, 1, T0 + timedelta(seconds=22.5))
    assert row.last_result == "HTTP 503: Service Unavailable: try again later"
    assert await notifier.run_due(world.clock.at(22)) == []  # backoff: 30 s x (0.5 + 0.5 x jitter 0.5)
    assert len(await notifier.run_due(world.clock.at(22.5))) == 1
    assert world.row(nid).next_attempt_at == T0 + timedelta(seconds=22.5 + 45)  # doubled
    assert await notifier.run_due(world.clock.at(67)) == []
    assert len(await notifier.run_due(world.clock.at(67.5))) == 1

    row = world.row(nid)
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 3)
    assert [(a.attempt, a.status, a.at) for a in row.history] == [
        (1, "HTTP 503", T0), (2, "HTTP 503", T0 + timedelta(seconds=22.5)),
        (3, "HTTP 200", T0 + timedelta(seconds=67.5))]
    requests = world.hook.received
    assert len(requests) == 3 and {r.uid for r in requests} == {row.uid} and len({r.body for r in requests}) == 1
    assert all(r.verified(SECRET, now=T0.timestamp()) for r in requests)  # each attempt signed anew


async def test_it_gives_up_after_the_methods_attempts_and_says_so(world: World) -> None:
    policy = world.policy('["notify:hook"]')
    [nid] = world.transition(policy)
    notifier = world.notifier(policy)
    world.hook.answer(500, 500, 500)
    for at in (0, 22.5, 67.5):
        assert len(await notifier.run_due(world.clock.at(at))) == 1
    row = world.row(nid)
    assert (row.status, row.attempts, row.max_attempts) == (DeliveryStatus.FAILED, 3, 3)
    assert row.last_result == "gave up after 3 attempt(s): HTTP 500: Internal Server Error: try again later"
    assert await notifier.run_due(world.clock.at(3600)) == []


async def test_an_unreachable_receiver_is_an_error_that_names_no_secret(world: World) -> None:
    port = free_port()
    policy = world.policy('["notify:gone"]', methods=(
        f'  gone: {{type: webhook, url: "http://user:pw-in-url@127.0.0.1:{port}/x?token=abc", secret: {SECRET}}}'))
    [nid] = world.transition(policy)
    await world.notifier(policy).run_due(world.clock.at(0))
    row = world.row(nid)
    [attempt] = row.history
    assert row.status is DeliveryStatus.PENDING and attempt.status == "error" and not attempt.ok
    assert "ConnectError" in attempt.detail
    shown = f"{row.last_result} {attempt.detail} {row.target}"
    assert SECRET not in shown and "pw-in-url" not in shown and "token=abc" not in shown


async def test_an_email_goes_through_smtp_with_a_login_and_a_stable_message_id(world: World) -> None:
    policy = world.policy('["notify:mail"]')
    [nid] = world.transition(policy)
    world.smtp.refuse("451 4.3.0 Mailbox busy, try later")
    notifier = world.notifier(policy)

    await notifier.run_due(world.clock.at(0))
    row = world.row(nid)
    assert (row.status, row.last_result) == (DeliveryStatus.PENDING, "SMTP 451: 4.3.0 Mailbox busy, try later")
    await notifier.run_due(world.clock.at(30))  # mail's backoff: the default 30 s, x 0.75

    row = world.row(nid)
    assert (row.status, row.history[-1].status, row.history[-1].detail) == (
        DeliveryStatus.DELIVERED, "SMTP 250", "2.0.0 Ok: queued")
    [(envelope, message)] = world.smtp.messages
    assert envelope.mail_from == "alertscaler@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "dev@example.com"]
    assert message["Message-ID"] == f"<{row.uid}@alertscaler>"
    assert message["X-Alertscaler-Notification-Id"] == row.uid
    assert message["Subject"] == "[alertscaler] cpu_high {hostname=web-1}: alarm (severity critical)"
    assert "CPU of the web tier" in message.get_payload()
    assert world.smtp.logins == ["alertscaler", "alertscaler"]
    assert all(SMTP_PASSWORD not in a.detail for a in row.history)


async def test_a_wrong_smtp_password_is_a_failed_attempt_without_the_password(world: World) -> None:
    policy = world.policy('["notify:badmail"]', methods=(
        f"  badmail: {{type: email, to: [ops@example.com], from: a@example.com, host: 127.0.0.1, "
        f"port: {world.smtp.port}, username: alertscaler, password: wrong-password-7}}"))
    [nid] = world.transition(policy)
    await world.notifier(policy).run_due(world.clock.at(0))
    row = world.row(nid)
    assert row.history[0].status == "SMTP 535" and "wrong-password-7" not in row.last_result
    assert world.smtp.messages == []


async def test_a_log_method_writes_one_line(world: World, caplog: pytest.LogCaptureFixture) -> None:
    policy = world.policy('["notify:audit"]')
    [nid] = world.transition(policy, AlarmState.OK)
    with caplog.at_level(logging.INFO, logger="alertscaler.act.notifying"):
        await world.notifier(policy).run_due(world.clock.at(0))
    row = world.row(nid)
    assert (row.status, row.last_result) == (DeliveryStatus.DELIVERED, "logged")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == [f"notification via audit: alarm=cpu_high{{hostname=web-1}} severity=critical: alarm -> ok: "
                     f"Transition to ok (notification {row.uid})"]


async def test_a_url_action_posts_aodhs_body_unsigned(world: World) -> None:
    policy = world.policy(f'["{world.hook.url}/aodh-url?x=1", "notify:aodh-hook"]')
    ids = world.transition(policy)
    await world.notifier(policy).run_due(world.clock.at(0))
    by_path = {r.path: r for r in world.hook.received}
    assert set(by_path) == {"/aodh-url?x=1", "/aodh"}
    for request, nid in zip([by_path["/aodh-url?x=1"], by_path["/aodh"]], ids, strict=True):
        row = world.row(nid)
        assert row.status is DeliveryStatus.DELIVERED
        assert request.json()["current"] == "alarm" and request.json()["previous"] == "ok"
        assert request.headers["x-openstack-request-id"].startswith("req-")
        assert "x-alertscaler-signature" not in request.headers and request.uid == row.uid
    assert world.row(ids[0]).method == "url" and world.row(ids[0]).target == f"{world.hook.url}/aodh-url?x=1"


@pytest.mark.parametrize(
    ("group", "drives", "delivered"),
    [("group: web", ("web",), True), ("group: web", ("api",), False),
     ("", ("api",), True),  # no group: the replica driving the first group by name (api < web)
     ("", ("web",), False)],
    ids=["its-group", "not-its-group", "no-group-first-group-driver", "no-group-other-replica"],
)
async def test_only_the_replica_driving_the_group_delivers(world: World, group: str, drives: tuple[str, ...],
                                                           delivered: bool) -> None:
    policy = world.policy('["notify:hook"]', group=group)
    world.transition(policy)
    assert bool(await world.notifier(policy, drives=drives).run_due(world.clock.at(0))) is delivered
    assert len(world.hook.received) == int(delivered)


async def test_two_replicas_racing_send_it_once(world: World) -> None:
    policy = world.policy('["notify:hook"]')
    world.transition(policy)
    one, two = world.notifier(policy, "r1"), world.notifier(policy, "r2")
    done = await asyncio.gather(one.run_due(world.clock.at(0)), two.run_due(world.clock.at(0)))
    assert sorted(len(d) for d in done) == [0, 1] and len(world.hook.received) == 1


async def test_a_method_removed_from_the_policy_fails_its_notifications(world: World) -> None:
    policy = world.policy('["notify:hook"]')
    [nid] = world.transition(policy)
    reloaded = world.policy('["notify:audit"]')
    await world.notifier(reloaded.model_copy(update={"notification_methods": {
        k: v for k, v in reloaded.notification_methods.items() if k != "hook"}})).run_due(world.clock.at(0))
    row = world.row(nid)
    assert (row.status, row.last_result) == (
        DeliveryStatus.FAILED, "gave up after 1 attempt(s): error: notification method 'hook' is no longer in the "
                               "policy file")
    assert world.hook.received == []
