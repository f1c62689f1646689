"""Outgoing notifications as values (``model.notifications``): the exact Monasca and Aodh payloads, the email and
log text, the HMAC signature and its verification, the retry schedule and where an attempt leaves a
notification — all pure, time and jitter passed in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.model.alarms import AlarmState, Style
from alertscaler.model.notifications import (
    AlarmEvent,
    Attempt,
    DeliveryStatus,
    Retry,
    Shape,
    after_attempt,
    body_bytes,
    email_text,
    log_line,
    payload,
    request_id,
    sign,
    verify,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVENT = AlarmEvent("cpu_high", Style.AODH, "critical", "CPU of the web tier", {"hostname": "web-1"}, AlarmState.OK,
                   AlarmState.ALARM, T0, "Transition to alarm due to avg(cpu_util, 600) > 70 is true", ("cpu_util",),
                   "web")
SECRET = b"0123456789abcdef0123"


def event(old: AlarmState, new: AlarmState, style: Style = Style.AODH) -> AlarmEvent:
    return AlarmEvent(EVENT.alarm, style, EVENT.severity, EVENT.description, EVENT.dimensions, old, new, EVENT.at,
                      EVENT.reason, EVENT.metrics, EVENT.group)


def test_the_monasca_payload_has_monasca_notifications_fields() -> None:
    body = payload(event(AlarmState.INSUFFICIENT_DATA, AlarmState.ALARM, Style.MONASCA), Shape.MONASCA)
    assert body == {
        "alarm_id": EVENT.alarm_id, "alarm_definition_id": EVENT.definition_id, "alarm_name": "cpu_high",
        "alarm_description": "CPU of the web tier", "alarm_timestamp": int(T0.timestamp()), "state": "ALARM",
        "old_state": "UNDETERMINED", "message": EVENT.reason, "tenant_id": "",
        "metrics": [{"name": "cpu_util", "dimensions": {"hostname": "web-1"}}],
    }


@pytest.mark.parametrize(
    ("old", "new", "previous", "current", "disposition"),
    [
        (AlarmState.OK, AlarmState.ALARM, "ok", "alarm", "outside"),
        (AlarmState.ALARM, AlarmState.OK, "alarm", "ok", "inside"),
        (AlarmState.OK, AlarmState.INSUFFICIENT_DATA, "ok", "insufficient data", "unknown"),
    ],
    ids=["to-alarm", "to-ok", "to-insufficient-data"],
)
def test_the_aodh_payload_is_what_aodhs_rest_notifier_posts(old: AlarmState, new: AlarmState, previous: str,
                                                             current: str, disposition: str) -> None:
    assert payload(event(old, new), Shape.AODH) == {
        "alarm_name": "cpu_high", "alarm_id": EVENT.alarm_id, "severity": "critical", "previous": previous,
        "current": current, "reason": EVENT.reason, "reason_data": {"type": "threshold", "disposition": disposition},
    }


def test_ids_are_stable_per_alarm_and_dimension_set() -> None:
    other_host = AlarmEvent(EVENT.alarm, EVENT.style, EVENT.severity, "", {"hostname": "web-2"}, EVENT.old,
                            EVENT.new, EVENT.at, "", ())
    assert EVENT.alarm_id == event(AlarmState.ALARM, AlarmState.OK).alarm_id  # any transition of the alarm
    assert EVENT.alarm_id != other_host.alarm_id and EVENT.definition_id == other_host.definition_id
    assert request_id("u-1") == request_id("u-1") != request_id("u-2")
    assert request_id("u-1").startswith("req-")


def test_the_event_round_trips_through_json() -> None:
    assert AlarmEvent.from_json(EVENT.to_json()) == EVENT
    assert json.loads(body_bytes(EVENT, Shape.MONASCA)) == payload(EVENT, Shape.MONASCA)


def test_a_signature_verifies_and_anything_changed_does_not() -> None:
    body = body_bytes(EVENT, Shape.MONASCA)
    ts = 1_780_000_000
    signature = sign(SECRET, ts, body)
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert verify(SECRET, str(ts), body, signature, now=ts + 10)
    refused = {
        "tampered body": verify(SECRET, str(ts), body.replace(b"cpu_high", b"cpu_low_"), signature, now=ts),
        "other timestamp": verify(SECRET, str(ts + 1), body, signature, now=ts),
        "wrong secret": verify(b"another secret of some length", str(ts), body, signature, now=ts),
        "replayed later": verify(SECRET, str(ts), body, signature, now=ts + 301),
        "not a number": verify(SECRET, "12a", body, signature, now=ts),
    }
    assert refused == dict.fromkeys(refused, False)


def test_the_email_names_the_alarm_its_states_and_the_notification_id() -> None:
    subject, text = email_text(event(AlarmState.OK, AlarmState.ALARM, Style.MONASCA), "u-1")
    assert subject == "[alertscaler] cpu_high {hostname=web-1}: ALARM (severity critical)"
    assert "State:       OK -> ALARM" in text and "Reason:      Transition to alarm" in text
    assert "Notification id: u-1" in text and "Group:       web" in text
    assert log_line(EVENT, "u-1") == ("alarm=cpu_high{hostname=web-1} severity=critical: ok -> alarm: "
                                      f"{EVENT.reason} (notification u-1)")


@pytest.mark.parametrize(
    ("failed", "jitter", "seconds"),
    [(1, 0.0, 15.0), (1, 0.5, 22.5), (1, 0.999999, 30.0), (2, 0.0, 30.0), (3, 1.0, 120.0), (5, 1.0, 480.0),
     (6, 1.0, 600.0), (20, 0.0, 300.0), (1, -3.0, 15.0), (1, 7.0, 30.0)],
    ids=["first-least", "first-mid", "first-most", "second", "third", "fifth", "capped", "capped-least",
         "jitter-below-0", "jitter-above-1"],
)
def test_backoff_doubles_up_to_the_cap_with_half_to_full_jitter(failed: int, jitter: float, seconds: float) -> None:
    assert Retry(attempts=6, backoff=30.0, max_backoff=600.0).delay(failed, jitter) == pytest.approx(seconds)


def attempt(n: int, ok: bool) -> Attempt:
    return Attempt(n, T0, "r1", ok, "HTTP 200" if ok else "HTTP 503", "OK" if ok else "Service Unavailable")


@pytest.mark.parametrize(
    ("n", "ok", "status", "next_in", "result"),
    [
        (1, True, DeliveryStatus.DELIVERED, None, "HTTP 200: OK"),
        (1, False, DeliveryStatus.PENDING, 22.5, "HTTP 503: Service Unavailable"),
        (2, False, DeliveryStatus.PENDING, 45.0, "HTTP 503: Service Unavailable"),
        (3, False, DeliveryStatus.FAILED, None, "gave up after 3 attempt(s): HTTP 503: Service Unavailable"),
        (3, True, DeliveryStatus.DELIVERED, None, "HTTP 200: OK"),
    ],
    ids=["delivered", "first-failure-retries", "second-failure-waits-longer", "last-failure-gives-up",
         "last-attempt-delivers"],
)
def test_where_an_attempt_leaves_its_notification(n: int, ok: bool, status: DeliveryStatus, next_in: float | None,
                                                  result: str) -> None:
    outcome = after_attempt(Retry(attempts=3, backoff=30.0, max_backoff=600.0), attempt(n, ok), jitter=0.5)
    assert outcome.status is status and outcome.last_result == result
    assert outcome.next_attempt_at == (None if next_in is None else T0 + timedelta(seconds=next_in))
