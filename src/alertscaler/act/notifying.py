"""Notifications of alarm transitions: put in the outbox with the transition (``enqueue_for_transition``, called by
``act.alarming`` inside the transaction that stores the transition), then delivered by ``Notifier`` (the engine's
notification loop, wired by ``service.build_engine`` as ``Loops.notifier``) through the policy file's
``notification_methods``: a webhook (Monasca's or Aodh's body, signed with the method's secret), an email (SMTP)
or a log line; a URL action is a webhook in the alarm's own style, unsigned.

Delivery is at least once. Each notification is claimed in the store before each attempt (``claim_notification``:
of two replicas only one sends), by the replica driving its group (``Ownership.drives``; a notification of an
alarm without a group: the replica driving the policy file's first group, by name). Every attempt is recorded
(when, which replica, HTTP status / SMTP reply / error text, never a secret); a failed one is retried after an
exponential backoff with jitter, until the method's ``retries`` are spent (then ``failed``). Pending notifications
survive restarts: they are rows of the store, and the loop picks them up when due. A receiver de-duplicates on
the notification's stable id (``X-Alertscaler-Notification-Id``, the email's ``Message-ID``), the same on every
attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final

import anyio
import httpx

from alertscaler import __version__
from alertscaler.act.ownership import Drives
from alertscaler.config import PolicyFile
from alertscaler.config.notifications import (
    DEFAULT_URL_METHOD,
    EmailMethod,
    LogMethod,
    NotificationMethod,
    WebhookMethod,
)
from alertscaler.model.alarms import (
    AlarmDefinition,
    HealAction,
    NotifyAction,
    ScaleAction,
    Style,
    Transition,
    UrlAction,
)
from alertscaler.model.notifications import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    URL_METHOD,
    AlarmEvent,
    Attempt,
    DeliveryStatus,
    MethodKind,
    NewOutgoing,
    Outgoing,
    Retry,
    Shape,
    after_attempt,
    body_bytes,
    email_text,
    log_line,
    request_id,
    sign,
)
from alertscaler.model.urls import shown_url
from alertscaler.store.base import StateStore, Tx

log = logging.getLogger(__name__)

BATCH: Final = 50            # due notifications looked at per pass
CONCURRENCY: Final = 8       # attempts in flight at once
CLAIM_MARGIN_S: Final = 10.0  # a claim lasts the method's timeout and this
_DETAIL: Final = 300         # characters of a reply's body kept with a failed attempt


# --- enqueue (in the transition's transaction) ------------------------------------------------------------------


def delivering_group(alarm: AlarmDefinition) -> str | None:
    """The group whose driving replica delivers the alarm's notifications: its ``group``, else the group of its
    first scale or heal action; None: the policy file's first group's (``Notifier``)."""
    if alarm.group is not None:
        return alarm.group
    for action in (*alarm.actions.alarm, *alarm.actions.ok, *alarm.actions.insufficient_data):
        if isinstance(action, ScaleAction | HealAction):
            return action.group
    return None


def new_uid() -> str:
    return str(uuid.uuid4())


def enqueue_for_transition(tx: Tx, alarm: AlarmDefinition, transition: Transition, now: datetime,
                           methods: Mapping[str, NotificationMethod], history_id: int | None = None) -> list[int]:
    """Put the notifications of ``transition``'s ``notify:`` and URL actions in the outbox, in ``tx`` (the
    transaction storing the transition: both or neither). Returns their ids."""
    event = AlarmEvent.of(alarm, transition)
    group = delivering_group(alarm)
    items = []
    for action in transition.actions:
        if isinstance(action, NotifyAction):
            method = methods.get(action.method)
            if method is None:  # config.loading refuses this; a policy changed under a running transaction
                log.error("alarm=%s: notification method %s is not in the policy file; not notified", alarm.name,
                          action.method)
                continue
            items.append(NewOutgoing(new_uid(), action.method, method.kind, action.method, event,
                                     method.retry().attempts, group, history_id))
        elif isinstance(action, UrlAction):
            items.append(NewOutgoing(new_uid(), URL_METHOD, MethodKind.WEBHOOK, action.url, event,
                                     DEFAULT_URL_METHOD.retry().attempts, group, history_id))
    return tx.enqueue_notifications(items, now) if items else []


# --- sending ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What one attempt gave: ``status`` ``HTTP 200`` / ``SMTP 250`` / ``logged`` / ``error``, and the text."""

    ok: bool
    status: str
    detail: str = ""


def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def webhook_request(n: Outgoing, method: WebhookMethod | None, unix_now: int) -> tuple[str, bytes, dict[str, str]]:
    """URL, body and headers of a webhook attempt (``method`` None: a URL action, in the alarm's style)."""
    if method is None:
        url, shape = n.target, Shape.AODH if n.event.style is Style.AODH else Shape.MONASCA
    else:
        url, shape = method.url, method.shape
    body = body_bytes(n.event, shape)
    headers = {"Content-Type": "application/json", "User-Agent": f"alertscaler/{__version__}", ID_HEADER: n.uid}
    if shape is Shape.AODH:
        headers["X-OpenStack-Request-Id"] = request_id(n.uid)
    if method is not None and method.secret is not None:
        headers[TIMESTAMP_HEADER] = str(unix_now)
        headers[SIGNATURE_HEADER] = sign(method.secret.get_secret_value().encode(), unix_now, body)
    return url, body, headers


async def send_webhook(client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str],
                       timeout: float) -> Sent:
    """POST once; any 2xx is a delivery. Errors name no credential (the URL is shown without them)."""
    try:
        response = await client.post(url, content=body, headers=dict(headers), timeout=timeout)
    except httpx.TimeoutException:
        return Sent(False, "error", f"no answer from {shown_url(url)} within {timeout:g}s")
    except httpx.HTTPError as exc:
        text = str(exc).replace(url, shown_url(url)) or type(exc).__name__
        return Sent(False, "error", f"{type(exc).__name__}: {text}"[:_DETAIL])
    if 200 <= response.status_code < 300:
        return Sent(True, f"HTTP {response.status_code}", response.reason_phrase)
    reply = response.text.strip().replace("\n", " ")[:_DETAIL]
    return Sent(False, f"HTTP {response.status_code}", f"{response.reason_phrase}{': ' + reply if reply else ''}")


def email_message(n: Outgoing, method: EmailMethod) -> EmailMessage:
    subject, text = email_text(n.event, n.uid)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = method.from_
    msg["To"] = ", ".join(method.to)
    msg["Date"] = format_datetime(n.created_at)
    msg["Message-ID"] = f"<{n.uid}@alertscaler>"
    msg[ID_HEADER] = n.uid
    msg.set_content(text)
    return msg


def send_email(method: EmailMethod, msg: EmailMessage) -> Sent:
    """Send one email over SMTP (blocking: run in a thread). The result is the server's reply to the message
    (``SMTP 250``) or the first refusal; the password never appears in it."""
    context = _ssl_context(method.ca_file) if method.security != "none" else None
    try:
        smtp: smtplib.SMTP = (smtplib.SMTP_SSL(method.host, method.smtp_port, timeout=method.timeout, context=context)
                              if method.security == "ssl"
                              else smtplib.SMTP(method.host, method.smtp_port, timeout=method.timeout))
        with smtp:
            if method.security == "starttls":
                smtp.starttls(context=context)
            if method.username is not None and method.password is not None:
                smtp.login(method.username, method.password.get_secret_value())
            smtp.ehlo_or_helo_if_needed()
            code, reply = smtp.mail(method.from_)
            if code != 250:
                return Sent(False, f"SMTP {code}", f"sender refused: {_text(reply)}")
            for rcpt in method.to:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    return Sent(False, f"SMTP {code}", f"recipient {rcpt} refused: {_text(reply)}")
            code, reply = smtp.data(msg.as_bytes())
            return Sent(code == 250, f"SMTP {code}", _text(reply))
    except smtplib.SMTPResponseException as exc:
        return Sent(False, f"SMTP {exc.smtp_code}", _text(exc.smtp_error))
    except (smtplib.SMTPException, OSError) as exc:
        return Sent(False, "error", f"{type(exc).__name__}: {exc or 'no detail'} ({method.host}:{method.smtp_port})"
                    [:_DETAIL])


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return text.replace("\n", " ").strip()[:_DETAIL]


SendEmail = Callable[[EmailMethod, EmailMessage], Sent]


# --- the delivery loop --------------------------------------------------------------------------------------------


class Notifier:
    """Delivers the due notifications of the groups this replica drives (``run_due``: one pass, called by the
    engine's notification loop and by ``Engine.run_once``). ``jitter`` gives a number in [0, 1) for each retry's
    wait (tests pass a constant); ``client`` makes the HTTP client of a pass (tests may give their own)."""

    def __init__(self, policy: PolicyFile, store: StateStore, clock: Callable[[], datetime], replica: str,
                 drives: Drives, *, jitter: Callable[[], float] = random.random,
                 client: Callable[[], httpx.AsyncClient] | None = None, email: SendEmail = send_email) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.replica = replica
        self.drives = drives
        self.jitter = jitter
        self.client = client or (lambda: httpx.AsyncClient(follow_redirects=False))
        self.email = email
        self.leader = min(policy.groups) if policy.groups else None

    def _group_of(self, n: Outgoing) -> str | None:
        return n.group if n.group in self.policy.groups else self.leader

    def mine(self, n: Outgoing, now: datetime) -> bool:
        group = self._group_of(n)
        return group is not None and self.drives(group, now)

    async def run_due(self, now: datetime | None = None) -> list[Outgoing]:
        """Attempt every due notification this replica delivers (at most ``BATCH``); the rows as they were
        claimed (an attempt was made on each)."""
        now = now or self.clock()
        due = [n for n in await anyio.to_thread.run_sync(self.store.due_notifications, now, BATCH)
               if self.mine(n, now)]
        if not due:
            return []
        gate = asyncio.Semaphore(CONCURRENCY)
        async with self.client() as client:
            async def one(n: Outgoing) -> Outgoing | None:
                async with gate:
                    return await self.deliver(n, client, now)
            # every attempt ends before the client closes; one failing (the store down) does not stop the others
            done = await asyncio.gather(*(one(n) for n in due), return_exceptions=True)
        failed = [d for d in done if isinstance(d, BaseException)]
        for exc in failed[:1]:
            log.error("delivering %d notification(s) failed; their claims end and they are retried", len(failed),
                      exc_info=exc)
        return [d for d in done if isinstance(d, Outgoing)]

    def _method(self, n: Outgoing) -> NotificationMethod | None:
        return self.policy.notification_methods.get(n.method)

    async def deliver(self, n: Outgoing, client: httpx.AsyncClient, now: datetime) -> Outgoing | None:
        """Claim ``n``, make one attempt, record it. None: another replica holds it, or it is no longer due."""
        method = self._method(n)
        timeout = method.timeout if method is not None else DEFAULT_URL_METHOD.timeout
        until = now + timedelta(seconds=timeout + CLAIM_MARGIN_S)
        claimed = await anyio.to_thread.run_sync(self.store.claim_notification, n.id, self.replica, now, until)
        if claimed is None:
            return None
        started = time.monotonic()
        try:
            sent = await self._send(claimed, method, client)
        except Exception as exc:  # a bug of ours: recorded like a failed attempt, so the row is not stuck
            log.exception("notification %s (%s): sending failed unexpectedly", claimed.id, claimed.method)
            sent = Sent(False, "error", f"internal error: {type(exc).__name__}")
        at = self.clock()
        attempt = Attempt(claimed.attempts + 1, at, self.replica, sent.ok, sent.status, sent.detail,
                          int((time.monotonic() - started) * 1000))
        # the method's retries as the policy file says now (a method gone: no retry)
        retry = (method.retry() if method is not None
                 else DEFAULT_URL_METHOD.retry() if claimed.method == URL_METHOD else Retry(attempts=1))
        outcome = after_attempt(retry, attempt, self.jitter())
        moved = await anyio.to_thread.run_sync(self.store.finish_notification, claimed.id, self.replica, attempt,
                                               outcome)
        _log_attempt(claimed, attempt, outcome.status, outcome.next_attempt_at, moved)
        return claimed

    async def _send(self, n: Outgoing, method: NotificationMethod | None, client: httpx.AsyncClient) -> Sent:
        if method is None and n.method != URL_METHOD:
            return Sent(False, "error", f"notification method {n.method!r} is no longer in the policy file")
        if n.method == URL_METHOD or isinstance(method, WebhookMethod):
            webhook = method if isinstance(method, WebhookMethod) else None
            url, body, headers = webhook_request(n, webhook, int(self.clock().timestamp()))
            timeout = webhook.timeout if webhook is not None else DEFAULT_URL_METHOD.timeout
            if webhook is not None and webhook.ca_file is not None:
                async with httpx.AsyncClient(verify=_ssl_context(webhook.ca_file), follow_redirects=False) as own:
                    return await send_webhook(own, url, body, headers, timeout)
            return await send_webhook(client, url, body, headers, timeout)
        if isinstance(method, EmailMethod):
            msg = email_message(n, method)
            return await anyio.to_thread.run_sync(self.email, method, msg)
        if isinstance(method, LogMethod):
            log.log(logging.getLevelName(method.level.upper()), "notification via %s: %s", n.method,
                    log_line(n.event, n.uid))
            return Sent(True, "logged")
        return Sent(False, "error", f"notification method {n.method!r} has changed its type")


def _log_attempt(n: Outgoing, attempt: Attempt, status: DeliveryStatus, next_at: datetime | None,
                 moved: bool) -> None:
    what = f"notification {n.id} ({n.method} {n.kind.value}, alarm {n.alarm}) attempt {attempt.attempt}"
    result = f"{attempt.status}{': ' + attempt.detail if attempt.detail else ''}"
    if not moved:
        log.warning("%s: %s, but its claim had ended (another replica may send it too)", what, result)
    elif status is DeliveryStatus.DELIVERED:
        log.info("%s: delivered (%s)", what, result)
    elif status is DeliveryStatus.FAILED:
        log.error("%s: %s; given up", what, result)
    else:
        log.warning("%s: %s; next attempt at %s", what, result,
                    next_at.isoformat(timespec="seconds") if next_at else "?")
