"""The Starlette application: routes, auth, error mapping. Built by ``service`` (and by tests) around an
``act.engine.Engine``.

Client mistakes get 4xx with a message naming what is wrong; a store that cannot take a write gets 503 so
that Alertmanager retries; 500 is only ever a bug of ours.
"""

from __future__ import annotations

import base64
import binascii
import gc
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from alertscaler.act.engine import Engine
from alertscaler.act.removals import removed_ids
from alertscaler.api import auth, openapi, views
from alertscaler.api.alarms import routes as alarm_routes
from alertscaler.api.notifications import routes as notification_routes
from alertscaler.api.signals import routes as signal_routes
from alertscaler.api.tacker import routes as tacker_routes
from alertscaler.ingest import jsonsafe
from alertscaler.ingest.alertmanager import in_range, parse_body
from alertscaler.model.decisions import ActionState, Outcome, Reason
from alertscaler.model.durations import format_duration, parse_duration
from alertscaler.model.errors import (
    AlertscalerError,
    AuthError,
    Conflict,
    InputError,
    NotFound,
    PayloadTooLarge,
    StoreError,
    StoreUnavailable,
)
from alertscaler.model.groups import MemberState
from alertscaler.store.base import ActiveAlert

log = logging.getLogger(__name__)

MAX_DESIRED = openapi.MAX_DESIRED


def create_app(engine: Engine, manage_engine: bool = True) -> Starlette:
    """The API around ``engine``. With ``manage_engine`` the app starts and stops the engine's loops. Every request
    reads the policy the engine runs now (``engine.policy``: a reload swaps it, credentials included)."""

    async def read_body(request: Request) -> bytes:
        """The body of a JSON route: ``Content-Type: application/json`` required (415 otherwise: a browser's
        cross-site form cannot send it without a CORS preflight, so basic auth cached by a browser cannot be
        ridden), at most ``server.max_body_bytes`` (413), read in chunks so that a lying or missing
        Content-Length changes nothing."""
        max_body = engine.policy.server.max_body_bytes
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            shown = media_type[:60] or "none"
            raise InputError(f"must be application/json, got {shown!r}", field="Content-Type",
                             status_code=415)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            raise PayloadTooLarge(f"body of {length} bytes is over the limit of {max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise PayloadTooLarge(f"body is over the limit of {max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def alerts(request: Request) -> Response:
        """
        summary: Alertmanager webhook (format version 4). Point webhook_configs.url here.
        description: The notification is durably recorded before 200 is returned. Re-sent notifications
          (retries, HA peers) are recognised and never act twice. 503 means "retry later".
        responses:
          200: {description: recorded; body says how many alerts were new and how many duplicates}
          400: {description: body is not JSON}
          401: {description: missing or wrong credentials}
          413: {description: body over server.max_body_bytes}
          415: {description: Content-Type is not application/json}
          422: {description: a field is missing, wrong or cannot be stored; the message names it}
          503: {description: store unavailable; Alertmanager will retry}
        """
        started = time.perf_counter()  # alertscaler_webhook_duration_seconds, by the answer's status
        status = "500"
        try:
            response = await record_notification(request)
            status = str(response.status_code)
            return response
        except AlertscalerError as exc:
            status = ("401" if isinstance(exc, AuthError) else "503" if isinstance(exc, StoreUnavailable)
                      else str(getattr(exc, "status_code", None) or 500))
            raise
        finally:
            engine.metrics.webhook_duration.labels(status).observe(time.perf_counter() - started)

    async def record_notification(request: Request) -> Response:
        auth.check(request, engine.policy.server.auth, write=True)
        try:
            body = await read_body(request)
            notification = parse_body(body)
        except InputError as exc:
            engine.metrics.rejected.labels(str(exc.status_code)).inc()
            raise
        received = engine.clock()
        try:
            receipt = await engine.record_async(notification, received)
        except StoreUnavailable:
            engine.metrics.rejected.labels("503").inc()
            raise
        except AlertscalerError:
            raise
        except Exception:  # a bug of ours, logged once by the engine's recorder: an answer, never a hang
            engine.metrics.rejected.labels("500").inc()
            return error(500, "internal error while recording the notification (see the service log)")
        return JSONResponse({"status": "recorded", "notification_id": receipt.notification_id,
                             "new": receipt.new, "duplicates": receipt.duplicates})

    async def list_groups(request: Request) -> Response:
        """
        summary: All groups with desired and current capacity.
        """
        auth.check(request, engine.policy.server.auth, write=False)
        states = {s.name: s for s in await anyio.to_thread.run_sync(engine.reads.group_states)}
        pauses = await anyio.to_thread.run_sync(engine.reads.pauses)
        approvals = await anyio.to_thread.run_sync(engine.reads.approvals)
        predictions = engine.predictions()
        return JSONResponse([views.group(n, g, states.get(n), engine.statuses.get(n), now=engine.clock(),
                                         pauses=pauses, approvals=approvals, prediction=predictions.get(n))
                             for n, g in engine.policy.groups.items()])

    async def get_group(request: Request) -> Response:
        """
        summary: One group with desired, current capacity and members (read live from the provider).
        responses:
          404: {description: no such group}
        """
        auth.check(request, engine.policy.server.auth, write=False)
        name = request.path_params["name"]
        config = engine.policy.groups.get(name)
        if config is None:
            raise NotFound(f"no group named {name!r}")
        state = await anyio.to_thread.run_sync(engine.reads.get_group_state, name)
        pauses = await anyio.to_thread.run_sync(engine.reads.pauses)
        approvals = await anyio.to_thread.run_sync(engine.reads.approvals, name)
        status = await engine.live_status(name)
        return JSONResponse(views.group(name, config, state, status, members=True, now=engine.clock(),
                                        pauses=pauses, approvals=approvals,
                                        prediction=engine.predictions().get(name)))

    async def scale(request: Request) -> Response:
        """
        summary: Manually set a group's desired capacity (JSON body with an integer desired).
        description: Bounds apply, cooldowns do not.
        responses:
          202: {description: decision recorded (and an action queued when it acts)}
          404: {description: no such group}
          422: {description: desired missing or not a non-negative integer}
        """
        auth.check(request, engine.policy.server.auth, write=True)
        name = request.path_params["name"]
        if name not in engine.policy.groups:
            raise NotFound(f"no group named {name!r}")
        data = jsonsafe.loads(await read_body(request))
        desired = data.get("desired") if isinstance(data, dict) else None
        if not isinstance(desired, int) or isinstance(desired, bool) or not 0 <= desired <= MAX_DESIRED:
            raise InputError(f"required: an integer from 0 to {MAX_DESIRED}", field="desired")
        hold = _duration(data, "hold")
        result = await engine.operator.manual_scale(name, desired, hold)
        v = result.verdict
        out = {"decision_id": result.decision_id, "action_id": result.action_id,
               "outcome": v.outcome.value, "reason": v.reason.value,
               "from": v.from_capacity, "to": v.to_capacity, "message": v.message,
               "held_until": views.plain(result.held_until), "policies_from": views.plain(result.policies_from)}
        return JSONResponse(out, status_code=202)

    async def pause_body(request: Request) -> tuple[datetime | None, str]:
        """A pause's body: ``{"for": "2h", "reason": "..."}``, both optional (no ``for``: until resumed)."""
        data = jsonsafe.loads(await read_body(request))
        if not isinstance(data, dict):
            raise InputError("must be a JSON object like {\"for\": \"2h\", \"reason\": \"incident 42\"}")
        seconds = _duration(data, "for")
        reason = data.get("reason", "")
        if not isinstance(reason, str) or len(reason) > openapi.MAX_REASON:
            raise InputError(f"must be a string of at most {openapi.MAX_REASON} characters", field="reason")
        return (engine.clock() + timedelta(seconds=seconds) if seconds else None), reason

    async def resume_body(request: Request) -> None:
        """A resume's body: a JSON object (``{}``): a POST of JSON, like every write (see ``read_body``)."""
        if not isinstance(jsonsafe.loads(await read_body(request)), dict):
            raise InputError("must be a JSON object: {}")

    async def pause_group(request: Request) -> Response:
        """
        summary: Pause a group (JSON body, optional "for" duration and "reason").
        """
        auth.check(request, engine.policy.server.auth, write=True)
        name = request.path_params["name"]
        if name not in engine.policy.groups:
            raise NotFound(f"no group named {name!r}")
        until, reason = await pause_body(request)
        return JSONResponse(views.pause(await engine.operator.pause(name, until, reason), engine.clock()))

    async def resume_group(request: Request) -> Response:
        """
        summary: Resume a paused group.
        """
        auth.check(request, engine.policy.server.auth, write=True)
        name = request.path_params["name"]
        if name not in engine.policy.groups:
            raise NotFound(f"no group named {name!r}")
        await resume_body(request)
        ended = await engine.operator.resume(name)
        return JSONResponse({"group": name, "resumed": ended is not None})

    async def pause_all(request: Request) -> Response:
        """
        summary: Pause every group (JSON body, optional "for" duration and "reason").
        """
        auth.check(request, engine.policy.server.auth, write=True)
        until, reason = await pause_body(request)
        return JSONResponse(views.pause(await engine.operator.pause(None, until, reason), engine.clock()))

    async def resume_all(request: Request) -> Response:
        """
        summary: End the pause of every group (a group's own pause stays).
        """
        auth.check(request, engine.policy.server.auth, write=True)
        await resume_body(request)
        ended = await engine.operator.resume(None)
        return JSONResponse({"group": None, "resumed": ended is not None})

    async def decisions(request: Request) -> Response:
        """
        summary: Decisions, newest first. Query - group, outcome (acted|skipped), reason, since, until
          (RFC 3339), limit (default 100, max 1000). Each carries its timing breakdown in timing_ms.
        """
        auth.check(request, engine.policy.server.auth, write=False)
        q = _query(request)
        rows = await anyio.to_thread.run_sync(lambda: engine.reads.list_decisions(
            group=q.get("group"),
            outcome=_enum(Outcome, q.get("outcome"), "outcome"),
            reason=_enum(Reason, q.get("reason"), "reason"),
            since=_time(q.get("since"), "since"),
            until=_time(q.get("until"), "until"),
            limit=_limit(q.get("limit")),
        ))
        return JSONResponse([views.decision(d) for d in rows])

    async def actions(request: Request) -> Response:
        """
        summary: Provider actions, newest first. Query - group, state (pending|running|succeeded|failed), limit.
        """
        auth.check(request, engine.policy.server.auth, write=False)
        q = _query(request)
        rows = await anyio.to_thread.run_sync(lambda: engine.reads.list_actions(
            group=q.get("group"), state=_enum(ActionState, q.get("state"), "state"), limit=_limit(q.get("limit"))))
        return JSONResponse([views.action(a) for a in rows])

    async def active_alerts(request: Request) -> Response:
        """
        summary: The alerts alertscaler believes firing (optionally of one group), with each one's fingerprint,
          policy, labels, start, last confirmation and last decision's reason.
        responses:
          404: {description: no such group}
        """
        auth.check(request, engine.policy.server.auth, write=False)
        group = request.query_params.get("group")
        rows = await engine.operator.active_alerts(group)
        return JSONResponse([_active_alert(a) for a in rows])

    async def clear_alert(request: Request) -> Response:
        """
        summary: End one believed-firing alert by hand (recorded as a cleared decision).
        description: A new notification of the alert makes it fire again.
        responses:
          404: {description: no such group, or no active alert with that fingerprint}
        """
        auth.check(request, engine.policy.server.auth, write=True)
        name, fingerprint = request.path_params["name"], request.path_params["fingerprint"]
        if name not in engine.policy.groups:
            raise NotFound(f"no group named {name!r}")
        if not isinstance(jsonsafe.loads(await read_body(request)), dict):  # a POST of JSON, like every write
            raise InputError("must be a JSON object: {}")
        done = await engine.operator.clear_alert(name, fingerprint)
        return JSONResponse({"group": name, "fingerprint": fingerprint, "cleared": len(done),
                             "decision_ids": [r.decision_id for r in done]})

    async def targets(request: Request) -> Response:
        """
        summary: Every managed instance in Prometheus http_sd format (labels alertscaler_group,
          alertscaler_member, alertscaler_provider, alertscaler_state). Members being removed (a scale-in's
          victims while they drain, members stopping) and removed ones are left out, so that Prometheus drops
          them before they stop.
        """
        auth.check(request, engine.policy.server.auth, write=False)
        out = []
        removed = await engine.store.call(removed_ids, engine.store, engine.clock())
        for name, group in engine.policy.groups.items():
            status = engine.statuses.get(name) or await engine.live_status(name)
            leaving = removed.get(name, frozenset())
            for m in status.members:
                if not m.address or m.state is MemberState.STOPPING or m.id in leaving:
                    continue
                out.append({"targets": [m.address], "labels": {
                    "alertscaler_group": name, "alertscaler_member": m.id,
                    "alertscaler_provider": group.provider_type, "alertscaler_state": m.state.value}})
        return JSONResponse(out)

    async def list_approvals(request: Request) -> Response:
        """
        summary: Changes waiting for an operator's approval, newest first. Query - group, all (true - the ended
          ones too), limit.
        responses:
          404: {description: no such group}
        """
        auth.check(request, engine.policy.server.auth, write=False)
        q = _query(request)
        every = _flag(q.get("all"), "all")
        rows = await engine.operator.approvals(q.get("group") or None, every, _limit(q.get("limit")))
        now = engine.clock()
        return JSONResponse([views.approval(a, now) for a in rows])

    async def decide_approval(request: Request, approving: bool) -> Response:
        """Approve or reject one approval (JSON body, optional "by": who, shown in the decision)."""
        auth.check(request, engine.policy.server.auth, write=True)
        decision_id = _approval_id(request.path_params["id"])
        data = jsonsafe.loads(await read_body(request))
        if not isinstance(data, dict):
            raise InputError("must be a JSON object like {\"by\": \"alice\"}")
        by = _who(request, data)
        done = await (engine.operator.approve if approving else engine.operator.reject)(decision_id, by)
        ended = await anyio.to_thread.run_sync(engine.reads.get_approval, decision_id)
        assert ended is not None and done.verdict is not None
        return JSONResponse({"approval": views.approval(ended, engine.clock()), "decision_id": done.decision_id,
                             "action_id": done.action_id, "outcome": done.outcome.value,
                             "reason": done.reason.value, "message": done.verdict.message})

    async def approve_change(request: Request) -> Response:
        """
        summary: Approve a change that waits (recorded as an acted approved decision; the action runs).
        responses:
          404: {description: no such approval}
          409: {description: it cannot be approved now (expired, already ended, the group moved or is paused)}
        """
        return await decide_approval(request, approving=True)

    async def reject_change(request: Request) -> Response:
        """
        summary: Reject a change that waits (recorded as a rejected decision; nothing runs).
        responses:
          404: {description: no such approval}
          409: {description: already ended or expired}
        """
        return await decide_approval(request, approving=False)

    async def healthz(request: Request) -> Response:
        """
        summary: Liveness - the process answers.
        """
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        """
        summary: Readiness - the store answers and the engine runs.
        responses:
          503: {description: not ready; the body says why}
        """
        try:
            await anyio.to_thread.run_sync(engine.reads.ping)
        except StoreError as exc:
            return PlainTextResponse(f"store unavailable: {exc}", status_code=503)
        if manage_engine and not engine.started:
            return PlainTextResponse("engine not started", status_code=503)
        return PlainTextResponse("ready")

    async def metrics(request: Request) -> Response:
        """
        summary: alertscaler's own metrics in Prometheus text format.
        """
        return Response(generate_latest(engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    documents: dict[int, dict[str, Any]] = {}  # per policy (a reload may change auth and the body limit)

    async def openapi_json(request: Request) -> Response:
        """
        summary: This document (api/openapi.py).
        """
        server = engine.policy.server
        key = id(engine.policy)
        if key not in documents:
            documents.clear()
            documents[key] = openapi.spec(server.auth, server.max_body_bytes, open_tacker=engine.policy.tacker.open)
        return JSONResponse(documents[key])

    async def reload(request: Request) -> Response:
        """
        summary: Re-read the policy file and apply it whole (groups added, changed, removed), or keep the one
          running and say why (every problem with its path; a setting that needs a restart).
        responses:
          200: {description: applied; the body says what changed}
          422: {description: refused, the running configuration stays; error and problems say why}
        """
        auth.check(request, engine.policy.server.auth, write=True)
        await resume_body(request)
        if engine.reloader is None:
            raise NotFound("this service cannot reload its policy file")
        done = await engine.reloader.reload("POST /-/reload")
        return JSONResponse(views.reloaded(done), status_code=200 if done.applied else 422)

    def error(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
        return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)

    async def on_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InputError)
        return error(exc.status_code, str(exc), field=exc.field or None)

    async def on_auth(request: Request, exc: Exception) -> Response:
        if request.url.path == "/api/v1/alerts":
            engine.metrics.rejected.labels("401").inc()
        return error(401, str(exc), {"WWW-Authenticate": auth.challenge(engine.policy.server.auth)})

    async def on_conflict(request: Request, exc: Exception) -> Response:
        return error(409, str(exc))

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return error(404, str(exc))

    async def on_store(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StoreUnavailable):  # permanent: retrying cannot help, so never 503
            log.error("store error for %s %s: %s", request.method, request.url.path, exc)
            return error(500, f"internal error: {exc}")
        log.warning("store unavailable for %s %s: %s", request.method, request.url.path, exc)
        return error(503, f"store unavailable, retry later: {exc}", {"Retry-After": "5"})

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, str(exc.detail), exc.headers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_engine:
            await engine.start()
            # What exists now lives as long as the process: keep it out of the garbage collector's full
            # collections, which otherwise pause every request for tens of milliseconds.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if manage_engine:
                await engine.stop()

    routes = [
        Route("/api/v1/alerts", alerts, methods=["POST"]),
        Route("/api/v1/groups", list_groups, methods=["GET"]),
        Route("/api/v1/groups/{name}", get_group, methods=["GET"]),
        Route("/api/v1/groups/{name}/scale", scale, methods=["POST"]),
        Route("/api/v1/groups/{name}/pause", pause_group, methods=["POST"]),
        Route("/api/v1/groups/{name}/resume", resume_group, methods=["POST"]),
        Route("/api/v1/pause", pause_all, methods=["POST"]),
        Route("/api/v1/resume", resume_all, methods=["POST"]),
        Route("/api/v1/decisions", decisions, methods=["GET"]),
        Route("/api/v1/actions", actions, methods=["GET"]),
        Route("/api/v1/targets", targets, methods=["GET"]),
        Route("/api/v1/alerts/active", active_alerts, methods=["GET"]),
        Route("/api/v1/groups/{name}/alerts/{fingerprint}/clear", clear_alert, methods=["POST"]),
        Route("/api/v1/approvals", list_approvals, methods=["GET"]),
        Route("/api/v1/approvals/{id}/approve", approve_change, methods=["POST"]),
        Route("/api/v1/approvals/{id}/reject", reject_change, methods=["POST"]),
        Route("/-/reload", reload, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *signal_routes(engine, read_body),  # signed URLs, Aodh / Monasca inputs (api.signals)
        *notification_routes(engine),  # the notification outbox (api.notifications)
        *alarm_routes(engine),  # alarms and their history (api.alarms)
        *tacker_routes(engine, read_body),  # Tacker's five alert endpoints (api.tacker)
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            InputError: on_input, AuthError: on_auth, NotFound: on_not_found, Conflict: on_conflict,
            StoreUnavailable: on_store, StoreError: on_store, HTTPException: on_http,
        },
    )


def _duration(data: Any, name: str) -> float | None:
    """An optional duration field of a JSON body (``"30m"``, ``"2h"``), more than 0 and at most
    ``openapi.MAX_DURATION_S``; None when absent or null."""
    value = data.get(name) if isinstance(data, dict) else None
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InputError(str(exc)[:200], field=name) from None
    if not 0 < seconds <= openapi.MAX_DURATION_S:
        raise InputError(f"must be more than 0s and at most {format_duration(openapi.MAX_DURATION_S)}", field=name)
    return seconds


def _enum(kind: Any, value: str | None, name: str) -> Any:
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InputError(f"must be one of {allowed}", field=name) from None


def _query(request: Request) -> Mapping[str, str]:
    """The query parameters, refused (422) if one holds a NUL: PostgreSQL cannot compare with it."""
    q = request.query_params
    for key, value in q.multi_items():
        if "\x00" in key or "\x00" in value:
            raise InputError("NUL character not allowed", field=jsonsafe.field_path([key]))
    return q


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"not an RFC 3339 time: {value[:64]!r}", field=name) from None
    if parsed.tzinfo is None:
        raise InputError("needs a time zone (e.g. 2026-11-21T10:00:00Z)", field=name)
    return in_range(parsed, value[:64], name)


def _flag(value: str | None, name: str) -> bool:
    if value in (None, "", "false"):
        return False
    if value == "true":
        return True
    raise InputError("must be true or false", field=name)


def _approval_id(value: str) -> int:
    """An approval's id in a path: its pending_approval decision's id, a positive integer."""
    if not (value.isascii() and value.isdigit() and len(value) <= 18) or int(value) < 1:
        raise InputError(f"must be an approval's id (a positive integer), got {value[:20]!r}", field="id")
    return int(value)


def _who(request: Request, data: dict[str, Any]) -> str:
    """Who approves or rejects: the body's "by", else the basic-auth user, else "an operator (API)"."""
    by = data.get("by")
    if by is not None:
        if not isinstance(by, str) or not 0 < len(by) <= openapi.MAX_BY:
            raise InputError(f"must be a string of 1 to {openapi.MAX_BY} characters", field="by")
        return by
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[0] or "an operator (API)"
        except (binascii.Error, UnicodeDecodeError):
            pass
    return "an operator (API)"


def _limit(value: str | None) -> int:
    if value is None:
        return openapi.LIMIT_DEFAULT
    top = openapi.LIMIT_MAX
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(top))) or not 1 <= int(value) <= top:
        raise InputError(f"must be an integer from 1 to {top}, got {value[:20]!r}", field="limit")
    return int(value)


def _active_alert(a: ActiveAlert) -> dict[str, Any]:
    """One believed-firing alert as ``GET /api/v1/alerts/active`` shows it."""
    return {"group": a.group, "policy": a.policy, "fingerprint": a.fingerprint, "labels": a.labels,
            "starts_at": views.plain(a.starts_at), "last_seen_at": views.plain(a.last_seen_at),
            "last_reason": a.last_reason}
