"""The routes of the notification outbox (documented in ``api.openapi_notifications``), added to the app by
``api.app``: ``GET /api/v1/notifications`` (filters: alarm, status, method, since, limit; newest first) and
``GET /api/v1/notifications/{id}``, each notification with its delivery attempts. Read-only (the API's read
credentials when ``server.auth.protect_reads``); what is shown never holds a secret, a URL's credentials or its
query. ``view`` is also what ``alertscaler notifications --json`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alertscaler.act.engine import Engine
from alertscaler.api import auth
from alertscaler.api.openapi import LIMIT_DEFAULT, LIMIT_MAX
from alertscaler.ingest import jsonsafe
from alertscaler.ingest.alertmanager import in_range
from alertscaler.model.errors import InputError, NotFound
from alertscaler.model.notifications import URL_METHOD, Attempt, DeliveryStatus, Outgoing
from alertscaler.model.urls import shown_url


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _attempt(a: Attempt) -> dict[str, Any]:
    return {"attempt": a.attempt, "at": a.at.isoformat(), "replica": a.replica, "ok": a.ok, "status": a.status,
            "detail": a.detail, "duration_ms": a.duration_ms}


def view(n: Outgoing) -> dict[str, Any]:
    """One notification as the API shows it."""
    e = n.event
    return {
        "id": n.id, "uid": n.uid, "method": n.method, "kind": n.kind.value,
        "target": shown_url(n.target) if n.method == URL_METHOD else n.target,
        "alarm": n.alarm, "group": n.group, "dimensions": dict(e.dimensions),
        "transition": {"old": e.old.value, "new": e.new.value, "at": e.at.isoformat(), "severity": e.severity,
                       "reason": e.reason},
        "history_id": n.history_id,
        "status": n.status.value, "attempts": n.attempts, "max_attempts": n.max_attempts,
        "created_at": n.created_at.isoformat(),
        "next_attempt_at": n.next_attempt_at.isoformat() if n.status is DeliveryStatus.PENDING else None,
        "finished_at": _time(n.finished_at), "last_result": n.last_result,
        "attempt_history": [_attempt(a) for a in n.history],
    }


def _query(request: Request) -> Mapping[str, str]:
    q = request.query_params
    for key, value in q.multi_items():
        if "\x00" in key or "\x00" in value:
            raise InputError("NUL character not allowed", field=jsonsafe.field_path([key]))
    return q


def _limit(value: str | None) -> int:
    if value is None:
        return LIMIT_DEFAULT
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(LIMIT_MAX))) or not (
            1 <= int(value) <= LIMIT_MAX):
        raise InputError(f"must be an integer from 1 to {LIMIT_MAX}, got {value[:20]!r}", field="limit")
    return int(value)


def _status(value: str | None) -> DeliveryStatus | None:
    if not value:
        return None
    try:
        return DeliveryStatus(value)
    except ValueError:
        raise InputError(f"must be one of {', '.join(s.value for s in DeliveryStatus)}", field="status") from None


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"not an RFC 3339 time: {value[:64]!r}", field="since") from None
    if parsed.tzinfo is None:
        raise InputError("needs a time zone (e.g. 2026-11-21T10:00:00Z)", field="since")
    return in_range(parsed, value[:64], "since")


def _id(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 18) or int(value) < 1:
        raise InputError(f"must be a notification's id (a positive integer), got {value[:20]!r}", field="id")
    return int(value)


def routes(engine: Engine) -> list[Route]:
    async def list_notifications(request: Request) -> Response:
        auth.check(request, engine.policy.server.auth, write=False)
        q = _query(request)
        alarm, method = q.get("alarm") or None, q.get("method") or None
        status, since, limit = _status(q.get("status")), _since(q.get("since")), _limit(q.get("limit"))
        rows = await anyio.to_thread.run_sync(lambda: engine.store.list_notifications(
            alarm=alarm, status=status, method=method, since=since, limit=limit))
        return JSONResponse([view(n) for n in rows])

    async def get_notification(request: Request) -> Response:
        auth.check(request, engine.policy.server.auth, write=False)
        notification_id = _id(request.path_params["id"])
        row = await anyio.to_thread.run_sync(engine.store.get_notification, notification_id)
        if row is None:
            raise NotFound(f"no notification {notification_id}")
        return JSONResponse(view(row))

    return [
        Route("/api/v1/notifications", list_notifications, methods=["GET"]),
        Route("/api/v1/notifications/{id}", get_notification, methods=["GET"]),
    ]
