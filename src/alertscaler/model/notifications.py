"""Outgoing notifications of alarm transitions as values: what is sent (``AlarmEvent``), in which shape (Monasca's
webhook or Aodh's REST notifier, an email, a log line), its signature, the retry schedule, and the outbox's rows
(``Outgoing``) and their delivery attempts (``Attempt``). Pure: no I/O, no clock, no randomness (the jitter is
an argument).

A transition's ``notify:METHOD`` and URL actions become one outbox row each, in the transaction that stores the
transition (``act.notifying.enqueue_for_transition``); ``act.notifying.Notifier`` delivers them. Each row has a
stable id (``uid``), sent with every attempt (``X-Alertscaler-Notification-Id``, the email's ``Message-ID``) so
that a receiver can recognise a re-delivery: delivery is at least once.

Signature (webhooks with a ``secret``): ``X-Alertscaler-Timestamp: <unix seconds>`` and
``X-Alertscaler-Signature: sha256=<hex>``, the hex HMAC-SHA256 of ``<timestamp>.<body>`` keyed with the secret.
A receiver recomputes it over the raw body and refuses a timestamp too far from its clock (a replay).

Called by ``act.notifying``, ``config.notifications``, ``store.sql_outbox`` and ``api``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from alertscaler.model.alarms import AlarmDefinition, AlarmState, Style, Transition, dims_key, shown

SIGNATURE_HEADER: Final = "X-Alertscaler-Signature"
TIMESTAMP_HEADER: Final = "X-Alertscaler-Timestamp"
ID_HEADER: Final = "X-Alertscaler-Notification-Id"
#: a namespace for the stable ids alertscaler gives an alarm (Monasca's alarm_id and alarm_definition_id)
_IDS: Final = uuid.UUID("5b0a3c1e-6f4d-4a8e-9d2b-7c1e0f3a9b64")


class MethodKind(str, Enum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    LOG = "log"


class Shape(str, Enum):
    """A webhook's body: monasca-notification's webhook plugin's, or Aodh's REST notifier's."""

    MONASCA = "monasca"
    AODH = "aodh"


class DeliveryStatus(str, Enum):
    PENDING = "pending"      # not delivered yet: the next attempt is due at next_attempt_at
    DELIVERED = "delivered"  # a receiver took it (HTTP 2xx, SMTP 250, logged)
    FAILED = "failed"        # given up: every attempt failed, or its method is gone from the policy file


URL_METHOD: Final = "url"
"""The ``method`` of an outbox row made by a URL action (an Aodh-style ``http(s)://`` action, no method)."""


# --- what is sent --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmEvent:
    """A transition as notified: everything a payload is made from (stored as JSON in the outbox row, so that
    every attempt sends the same body)."""

    alarm: str
    style: Style
    severity: str
    description: str
    dimensions: Mapping[str, str]
    old: AlarmState
    new: AlarmState
    at: datetime
    reason: str
    metrics: tuple[str, ...] = ()
    group: str | None = None

    @staticmethod
    def of(alarm: AlarmDefinition, transition: Transition) -> AlarmEvent:
        return AlarmEvent(alarm=alarm.name, style=alarm.style, severity=alarm.severity,
                          description=alarm.description, dimensions=dict(transition.dimensions), old=transition.old,
                          new=transition.new, at=transition.at, reason=transition.reason,
                          metrics=tuple(alarm.metrics()), group=alarm.group)

    @property
    def alarm_id(self) -> str:
        """A stable id of the alarm and its dimension set (Aodh's alarm_id, Monasca's alarm_id)."""
        return str(uuid.uuid5(_IDS, f"{self.alarm}\n{dims_key(self.dimensions)}"))

    @property
    def definition_id(self) -> str:
        """A stable id of the alarm definition (Monasca's alarm_definition_id)."""
        return str(uuid.uuid5(_IDS, self.alarm))

    def to_json(self) -> str:
        return json.dumps({"alarm": self.alarm, "style": self.style.value, "severity": self.severity,
                           "description": self.description, "dimensions": dict(self.dimensions),
                           "old": self.old.value, "new": self.new.value, "at": self.at.isoformat(),
                           "reason": self.reason, "metrics": list(self.metrics), "group": self.group},
                          separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    @staticmethod
    def from_json(text: str) -> AlarmEvent:
        d = json.loads(text)
        return AlarmEvent(alarm=d["alarm"], style=Style(d["style"]), severity=d["severity"],
                          description=d["description"], dimensions=dict(d["dimensions"]), old=AlarmState(d["old"]),
                          new=AlarmState(d["new"]), at=datetime.fromisoformat(d["at"]), reason=d["reason"],
                          metrics=tuple(d["metrics"]), group=d.get("group"))


_DISPOSITION: Final = {AlarmState.ALARM: "outside", AlarmState.OK: "inside", AlarmState.INSUFFICIENT_DATA: "unknown"}


def monasca_payload(event: AlarmEvent) -> dict[str, Any]:
    """monasca-notification's webhook body (``plugins/webhook_notifier.py``; ``alarm_timestamp`` in seconds)."""
    return {
        "alarm_id": event.alarm_id, "alarm_definition_id": event.definition_id, "alarm_name": event.alarm,
        "alarm_description": event.description, "alarm_timestamp": int(event.at.timestamp()),
        "state": shown(event.new, Style.MONASCA), "old_state": shown(event.old, Style.MONASCA),
        "message": event.reason, "tenant_id": "",
        "metrics": [{"name": m, "dimensions": dict(event.dimensions)} for m in event.metrics],
    }


def aodh_payload(event: AlarmEvent) -> dict[str, Any]:
    """Aodh's REST notifier body (``aodh/notifier/rest.py``): states as Aodh names them."""
    return {
        "alarm_name": event.alarm, "alarm_id": event.alarm_id, "severity": event.severity,
        "previous": shown(event.old, Style.AODH), "current": shown(event.new, Style.AODH), "reason": event.reason,
        "reason_data": {"type": "threshold", "disposition": _DISPOSITION[event.new]},
    }


def payload(event: AlarmEvent, shape: Shape) -> dict[str, Any]:
    return monasca_payload(event) if shape is Shape.MONASCA else aodh_payload(event)


def body_bytes(event: AlarmEvent, shape: Shape) -> bytes:
    """The webhook's body: the payload as compact JSON (the bytes that are signed)."""
    return json.dumps(payload(event, shape), separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Alertscaler-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: float = 300.0) -> bool:
    """What a receiver does (and the tests): the signature matches and the timestamp is within ``tolerance_s`` of
    ``now`` (seconds since the epoch)."""
    if not timestamp.isascii() or not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def request_id(uid: str) -> str:
    """Aodh's ``x-openstack-request-id`` for a notification: ``req-`` and a UUID made from its stable id, the same
    on every attempt (alertscaler's own Aodh input recognises a re-delivery by it)."""
    return f"req-{uuid.uuid5(_IDS, uid)}"


def email_text(event: AlarmEvent, uid: str) -> tuple[str, str]:
    """An email's subject and plain-text body."""
    state, old = shown(event.new, event.style), shown(event.old, event.style)
    dims = ", ".join(f"{k}={v}" for k, v in sorted(event.dimensions.items()))
    subject = f"[alertscaler] {event.alarm}{' {' + dims + '}' if dims else ''}: {state} (severity {event.severity})"
    lines = [
        f"Alarm:       {event.alarm}",
        *([f"Description: {event.description}"] if event.description else []),
        f"State:       {old} -> {state}",
        f"Severity:    {event.severity}",
        f"At:          {event.at.isoformat(timespec='seconds')}",
        *([f"Dimensions:  {dims}"] if dims else []),
        *([f"Metrics:     {', '.join(event.metrics)}"] if event.metrics else []),
        *([f"Group:       {event.group}"] if event.group else []),
        f"Reason:      {event.reason}",
        "",
        f"Notification id: {uid} (a re-delivery carries the same id and Message-ID)",
    ]
    return subject, "\n".join(lines) + "\n"


def log_line(event: AlarmEvent, uid: str) -> str:
    dims = ",".join(f"{k}={v}" for k, v in sorted(event.dimensions.items()))
    return (f"alarm={event.alarm}{'{' + dims + '}' if dims else ''} severity={event.severity}: "
            f"{shown(event.old, event.style)} -> {shown(event.new, event.style)}: {event.reason} (notification {uid})")


# --- retries --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retry:
    """How a method retries: at most ``attempts`` attempts in all; after the n-th failure the next attempt waits
    ``min(max_backoff, backoff * 2**(n-1))``, scaled by ``0.5 + 0.5 * jitter`` (``jitter`` in [0, 1): half to all
    of it, so that receivers coming back are not hit by every sender at once)."""

    attempts: int = 6
    backoff: float = 30.0
    max_backoff: float = 600.0

    def delay(self, failed: int, jitter: float) -> float:
        """Seconds before the next attempt after ``failed`` failed attempts (``failed`` >= 1)."""
        base = min(self.max_backoff, self.backoff * 2.0 ** max(0, failed - 1))
        return base * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))

    def gives_up(self, failed: int) -> bool:
        return failed >= self.attempts


# --- the outbox ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewOutgoing:
    """A notification to put in the outbox (``store``'s ``enqueue_notifications``)."""

    uid: str
    method: str
    kind: MethodKind
    target: str
    event: AlarmEvent
    max_attempts: int
    group: str | None = None
    history_id: int | None = None


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: ``status`` is ``HTTP 503``, ``SMTP 250``, ``logged`` or ``error``; ``detail`` the
    reply's text or the error's (never a secret)."""

    attempt: int
    at: datetime
    replica: str
    ok: bool
    status: str
    detail: str
    duration_ms: int = 0


@dataclass(frozen=True)
class Outgoing:
    """An outbox row. ``claimed_by`` / ``claimed_until``: the replica sending it right now, and until when its
    claim holds (then another may try)."""

    id: int
    uid: str
    method: str
    kind: MethodKind
    target: str
    alarm: str | None
    group: str | None
    history_id: int | None
    event: AlarmEvent
    status: DeliveryStatus
    attempts: int
    max_attempts: int
    created_at: datetime
    next_attempt_at: datetime
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    finished_at: datetime | None = None
    last_result: str = ""
    history: tuple[Attempt, ...] = field(default=())


@dataclass(frozen=True)
class AttemptOutcome:
    """What an attempt leaves: the row's new status and, when pending, when the next attempt is due."""

    status: DeliveryStatus
    next_attempt_at: datetime | None
    last_result: str


def after_attempt(retry: Retry, attempt: Attempt, jitter: float) -> AttemptOutcome:
    """Where an attempt leaves its notification: delivered; failed after ``retry.attempts`` attempts; else
    pending, the next attempt after ``Retry.delay`` (``jitter`` in [0, 1), passed in)."""
    result = attempt_result(attempt)
    if attempt.ok:
        return AttemptOutcome(DeliveryStatus.DELIVERED, None, result)
    if retry.gives_up(attempt.attempt):
        return AttemptOutcome(DeliveryStatus.FAILED, None, f"gave up after {attempt.attempt} attempt(s): {result}")
    return AttemptOutcome(DeliveryStatus.PENDING, attempt.at + timedelta(seconds=retry.delay(attempt.attempt, jitter)),
                          result)


def attempt_result(attempt: Attempt) -> str:
    """One line for ``last_result``: ``HTTP 503: Service Unavailable``."""
    return f"{attempt.status}: {attempt.detail}" if attempt.detail else attempt.status
