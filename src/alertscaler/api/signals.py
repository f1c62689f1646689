"""The routes of outside signals and signed URLs (documented in ``api.openapi_signals``), added to the app by
``api.app``; the work is ``act.signals.Signals``'.

Signed (no token; the query's signature is the credential, refused with 403 and a recorded ``refused`` decision):

- ``POST /api/v1/signal/{group}/{policy}/{id}``: the policy's alert fires (one step), or an alarm body's state
  says resolved / no data (recorded, no action);
- ``POST /api/v1/inputs/aodh/{id}``, ``/api/v1/inputs/monasca/{id}``: an alarm service's notification, mapped to
  groups and policies by the policy file's ``inputs``.

With the API's credentials: ``POST /api/v1/inputs/aodh`` and ``/api/v1/inputs/monasca`` (the same, authenticated
by token or basic auth); ``/api/v1/urls`` (create, list), ``/api/v1/urls/{id}/revoke``, ``/api/v1/urls/keys``
(list) and ``/api/v1/urls/keys/rotate``.

Every signal is recorded (and decided) before it is answered: 202 with its decisions, or 200 ``duplicate`` for a
retry recognised by its key (``act.signals.request_key``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alertscaler.act.engine import Engine
from alertscaler.act.recording import Recorded, publish
from alertscaler.act.signals import Signals, request_key
from alertscaler.api import auth
from alertscaler.ingest import jsonsafe
from alertscaler.ingest.openstack import parse_aodh, parse_monasca, signed_body
from alertscaler.model.decisions import Decision
from alertscaler.model.durations import parse_duration
from alertscaler.model.errors import Conflict, Forbidden, InputError, PayloadTooLarge
from alertscaler.model.signals import Signal, SignalSource
from alertscaler.model.signing import SignedUrl, SigningKey, UrlTarget, signal_path

log = logging.getLogger(__name__)

ReadBody = Callable[[Request], Awaitable[bytes]]
_PARSERS: dict[SignalSource, Callable[[Any], Signal]] = {SignalSource.AODH: parse_aodh,
                                                          SignalSource.MONASCA: parse_monasca}


def routes(engine: Engine, read_body: ReadBody) -> list[Route]:
    """The routes, reading the policy the engine runs at each request (a reload swaps it)."""
    cache: dict[int, Signals] = {}

    def signals() -> Signals:
        policy = engine.policy
        if id(policy) not in cache:
            cache.clear()
            cache[id(policy)] = Signals(policy, engine.store, engine.clock,
                                        lambda done: publish(done, engine.metrics, engine.workers))
        return cache[id(policy)]

    def base(request: Request) -> str:
        return engine.policy.server.public_url or str(request.base_url)

    async def optional_json(request: Request) -> tuple[Any, str]:
        """A signed URL's body: none at all (any Content-Type), or JSON (application/json)."""
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        raw = await read_body(request) if media == "application/json" else await _read_limited(
            request, engine.policy.server.max_body_bytes)
        if not raw.strip():
            return None, ""
        if media != "application/json":
            raise InputError(f"must be application/json (or no body at all), got {media[:60] or 'none'!r}",
                             field="Content-Type", status_code=415)
        return jsonsafe.loads(raw), raw.decode("utf-8", "replace")

    async def signed(request: Request, target: UrlTarget) -> SignedUrl | Response:
        """The stored URL the request proves, or the 403 answer (the refusal recorded). The path verified is the
        route's own (``model.signing.signal_path`` of its parameters), whatever prefix a proxy added."""
        s, params = signals(), request.path_params
        url_id = params["id"]
        path = signal_path(target, url_id, params.get("group"), params.get("policy"))
        try:
            return await engine.store.call(s.verified, request.method, path, request.query_params.multi_items(),
                                           url_id)
        except Conflict as exc:  # no signing secret: nothing can be verified
            refusal = Forbidden(f"signed URL refused: {exc}", "no_secret")
        except Forbidden as exc:
            refusal = exc
        log.warning("signed URL refused (%s): %s %s", refusal.reason, request.method, path[:120])
        await engine.store.call(s.refuse, refusal, request.method, path, url_id)
        return JSONResponse({"error": str(refusal), "reason": refusal.reason}, status_code=403)

    async def answer(signal: Signal, source: SignalSource, url: SignedUrl | None, body: str,
                     request: Request) -> Response:
        key = request_key({k.lower(): v for k, v in request.headers.items()})
        if key is not None:
            signal = replace(signal, key=key)
        received = await engine.store.call(signals().receive, signal, source, url, body)
        ids = [r.decision_id for r in received.recorded if r.decision_id is not None]
        decided = await engine.store.call(lambda: [engine.store.get_decision(i) for i in ids])
        return JSONResponse({"status": "duplicate" if received.duplicate else "recorded",
                             "signal_id": received.signal_id,
                             "decisions": [_brief(d, r) for d, r in zip(decided, received.recorded, strict=False)],
                             "first_decisions": list(received.first_decisions)},
                            status_code=200 if received.duplicate else 202)

    async def signal_url(request: Request) -> Response:
        """
        summary: A signed URL of a group's policy: the policy's alert fires (one step). No token.
        """
        url = await signed(request, UrlTarget.POLICY)
        if isinstance(url, Response):
            return url
        data, raw = await optional_json(request)
        return await answer(signed_body(data), SignalSource.URL, url, raw, request)

    def input_url(source: SignalSource) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            """
            summary: A signed URL of an alarm service's input (Aodh / Monasca). No token.
            """
            url = await signed(request, UrlTarget(source.value))
            if isinstance(url, Response):
                return url
            raw = await read_body(request)
            return await answer(_PARSERS[source](jsonsafe.loads(raw)), source, url, raw.decode("utf-8", "replace"),
                                request)
        return handler

    def input_token(source: SignalSource) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            """
            summary: An alarm service's notification (Aodh alarm action / Monasca webhook), with the API's
              credentials.
            """
            auth.check(request, engine.policy.server.auth, write=True)
            raw = await read_body(request)
            return await answer(_PARSERS[source](jsonsafe.loads(raw)), source, None, raw.decode("utf-8", "replace"),
                                request)
        return handler

    async def create_url(request: Request) -> Response:
        """
        summary: Hand out a signed URL for a group's policy or an alarm input (shown once, in full).
        """
        auth.check(request, engine.policy.server.auth, write=True)
        data = jsonsafe.loads(await read_body(request))
        if not isinstance(data, dict):
            raise InputError('must be a JSON object like {"group": "web", "policy": "scale_out", "expires": "30d"}')
        target, group, policy = _target(data)
        expires = _expires(data.get("expires"))
        note = data.get("note", "")
        if not isinstance(note, str):
            raise InputError("must be a string", field="note")
        try:
            created = await engine.store.call(signals().create, target, group, policy, expires, note, base(request))
        except Conflict as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        now = engine.clock()
        return JSONResponse({**url_view(created.url, now), "url": created.full}, status_code=201)

    async def list_urls(request: Request) -> Response:
        """
        summary: The signed URLs handed out (their signatures cut short), newest first.
        """
        auth.check(request, engine.policy.server.auth, write=True)
        group = request.query_params.get("group")
        urls = await engine.store.call(engine.store.signed_urls, group, 1000)
        keys = await engine.store.call(engine.store.signing_keys)
        s, now, at = signals(), engine.clock(), base(request)
        return JSONResponse([{**url_view(u, now, keys), "url": s.shown(u, at)} for u in urls])

    async def revoke_url(request: Request) -> Response:
        """
        summary: Revoke a signed URL (from now on it is refused, 403).
        """
        auth.check(request, engine.policy.server.auth, write=True)
        if not isinstance(jsonsafe.loads(await read_body(request)), dict):
            raise InputError("must be a JSON object: {}")
        url = await engine.store.call(signals().revoke, request.path_params["id"])
        return JSONResponse(url_view(url, engine.clock()))

    async def list_keys(request: Request) -> Response:
        """
        summary: The signing keys' ids (never a key), oldest first.
        """
        auth.check(request, engine.policy.server.auth, write=True)
        keys = await engine.store.call(engine.store.signing_keys)
        return JSONResponse([key_view(k, engine.clock()) for k in keys])

    async def rotate_key(request: Request) -> Response:
        """
        summary: Sign new URLs with a new key; older URLs stay valid unless retire_old.
        """
        auth.check(request, engine.policy.server.auth, write=True)
        data = jsonsafe.loads(await read_body(request))
        retire = data.get("retire_old", False) if isinstance(data, dict) else None
        if not isinstance(retire, bool):
            raise InputError("must be true or false", field="retire_old")
        try:
            key, retired = await engine.store.call(signals().rotate, retire)
        except Conflict as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"key": key_view(key, engine.clock()), "retired": retired})

    return [
        Route("/api/v1/signal/{group}/{policy}/{id}", signal_url, methods=["POST"]),
        Route("/api/v1/inputs/aodh", input_token(SignalSource.AODH), methods=["POST"]),
        Route("/api/v1/inputs/monasca", input_token(SignalSource.MONASCA), methods=["POST"]),
        Route("/api/v1/inputs/aodh/{id}", input_url(SignalSource.AODH), methods=["POST"]),
        Route("/api/v1/inputs/monasca/{id}", input_url(SignalSource.MONASCA), methods=["POST"]),
        Route("/api/v1/urls", create_url, methods=["POST"]),
        Route("/api/v1/urls", list_urls, methods=["GET"]),
        Route("/api/v1/urls/{id}/revoke", revoke_url, methods=["POST"]),
        Route("/api/v1/urls/keys", list_keys, methods=["GET"]),
        Route("/api/v1/urls/keys/rotate", rotate_key, methods=["POST"]),
    ]


async def _read_limited(request: Request, max_body: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise PayloadTooLarge(f"body is over the limit of {max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _target(data: dict[str, Any]) -> tuple[UrlTarget, str | None, str | None]:
    """What a create body asks for: ``{"group", "policy"}`` or ``{"input": "aodh" | "monasca"}``."""
    given = data.get("input")
    if given is not None:
        if given not in (UrlTarget.AODH.value, UrlTarget.MONASCA.value):
            raise InputError("must be aodh or monasca", field="input")
        if data.get("group") is not None or data.get("policy") is not None:
            raise InputError("give input, or group and policy, not both", field="input")
        return UrlTarget(given), None, None
    group, policy = data.get("group"), data.get("policy")
    if not isinstance(group, str) or not group:
        raise InputError("required: the group (or input: aodh | monasca)", field="group")
    if not isinstance(policy, str) or not policy:
        raise InputError("required: scale_out or scale_in", field="policy")
    return UrlTarget.POLICY, group, policy


def _expires(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InputError(str(exc)[:200], field="expires") from None


def url_view(url: SignedUrl, now: datetime, keys: list[SigningKey] | None = None) -> dict[str, Any]:
    """A signed URL's record as the API shows it (never its signature)."""
    return {"id": url.id, "target": url.target.value, "group": url.group, "policy": url.policy,
            "key_id": url.key_id, "note": url.note, "created_at": url.created_at.isoformat(),
            "expires_at": url.expires_at.isoformat(),
            "revoked_at": url.revoked_at.isoformat() if url.revoked_at else None,
            "last_used_at": url.last_used_at.isoformat() if url.last_used_at else None,
            "uses": url.uses, "state": url.state(now, keys or ())}


def key_view(key: SigningKey, now: datetime) -> dict[str, Any]:
    return {"kid": key.kid, "created_at": key.created_at.isoformat(),
            "retired_at": key.retired_at.isoformat() if key.retired_at else None, "retired": key.retired(now)}


def _brief(d: Decision | None, r: Recorded) -> dict[str, Any]:
    """A decision a signal gave, as its answer shows it."""
    return {"decision_id": r.decision_id, "group": r.group, "policy": d.policy if d else None,
            "outcome": r.outcome.value, "reason": r.reason.value, "action_id": r.action_id,
            "from": d.from_capacity if d else None, "to": d.to_capacity if d else None,
            "message": d.message if d else ""}
