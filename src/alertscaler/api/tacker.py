"""Tacker's five Prometheus-plugin alert endpoints (``/pm_event``, ``/pm_threshold``, ``/alert``,
``/alert/auto_scaling``, ``/alert/auto_healing``), added to the app by ``api.app``: an Alertmanager configured
for Tacker points here by changing only the host.

Each takes Alertmanager's webhook (version 4), checks every alert's Tacker labels (``ingest.tacker``: a bad
alert is a 422 naming the label, where Tacker answers 204 and drops it), and records it exactly like
``POST /api/v1/alerts`` (``Engine.record_async``: durable before the answer, a re-sent webhook never acts
twice), so it is decided by the normal path: the step policies and heal sections ``config.tacker`` gives the
mapped groups (cooldowns, bounds, heal rails), or ``no_group`` when nothing matches. ``/pm_event``,
``/pm_threshold`` and ``/alert`` are recorded and routed the same way (a group policy may match their labels)
but their Tacker features (PM reports, threshold crossings, FM alarms and the notifications) are not built:
the answer says so under ``not_built``.

Credentials: those of the API (``server.auth``) unless ``tacker.auth: open``. Auto-heal alerts get the label
``tacker_member`` (``vnfc_info_id`` without the mapping's ``vnfc_prefix``) before they are recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alertscaler.act.engine import Engine
from alertscaler.api import auth
from alertscaler.config.tacker import MEMBER_LABEL, TackerSection
from alertscaler.ingest import jsonsafe
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.ingest.tacker import SHAPES, Endpoint, check
from alertscaler.model.alerts import Notification
from alertscaler.model.errors import AlertscalerError, InputError, StoreUnavailable

log = logging.getLogger(__name__)

ReadBody = Callable[[Request], Awaitable[bytes]]

#: Tacker's documented Alertmanager example posts thresholds to /vnfpm_threshold, which Tacker's router does not
#: serve (it serves /pm_threshold): both are taken here
THRESHOLD_ALIAS = "/vnfpm_threshold"


def routes(engine: Engine, read_body: ReadBody) -> list[Route]:
    """The routes, reading the policy the engine runs at each request (a reload swaps it)."""

    def handler(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            """
            summary: Tacker's Prometheus-plugin alert endpoint (Alertmanager webhook with Tacker's labels).
            description: Recorded durably and idempotently like /api/v1/alerts, then decided by the policies the
              tacker section maps (auto-scale by aspect, auto-heal batched over timer_interval); needs the API's
              credentials unless tacker.auth is open.
            responses:
              200: {description: recorded; not_built names the Tacker features this alert would need}
              400: {description: body is not JSON}
              401: {description: missing or wrong credentials}
              413: {description: body over server.max_body_bytes}
              415: {description: Content-Type is not application/json}
              422: {description: a field or Tacker label is missing or wrong; the message names it}
              503: {description: store unavailable; Alertmanager will retry}
            """
            section = engine.policy.tacker
            if not section.open:
                auth.check(request, engine.policy.server.auth, write=True)
            try:
                raw = await read_body(request)
                notification = _parse(jsonsafe.loads(raw), raw, endpoint, section)
            except InputError as exc:
                engine.metrics.rejected.labels(str(exc.status_code)).inc()
                raise
            try:
                receipt = await engine.record_async(notification, engine.clock())
            except StoreUnavailable:
                engine.metrics.rejected.labels("503").inc()
                raise
            except AlertscalerError:
                raise
            except Exception:  # a bug of ours, logged once by the engine's recorder
                engine.metrics.rejected.labels("500").inc()
                return JSONResponse({"error": "internal error while recording the notification (see the "
                                              "service log)"}, status_code=500)
            out: dict[str, Any] = {"status": "recorded", "notification_id": receipt.notification_id,
                                   "new": receipt.new, "duplicates": receipt.duplicates,
                                   "function_type": endpoint.value}
            shape = SHAPES[endpoint]
            if not shape.built:
                out["not_built"] = shape.missing
            unmapped = _unmapped(notification, endpoint, section)
            if unmapped:
                out["unmapped"] = unmapped
            return JSONResponse(out)

        return receive

    out = [Route(shape.path, handler(endpoint), methods=["POST"]) for endpoint, shape in SHAPES.items()]
    out.append(Route(THRESHOLD_ALIAS, handler(Endpoint.PM_THRESHOLD), methods=["POST"]))
    return out


def _parse(data: Any, raw: bytes, endpoint: Endpoint, section: TackerSection) -> Notification:
    """The webhook as recorded: checked for ``endpoint``; an auto-heal alert of a mapped VNF instance gets
    ``tacker_member`` (in the recorded body too, so that a notification decided after a restart says the same)."""
    notification = parse_notification(data)
    check(notification, endpoint)
    if endpoint is Endpoint.AUTO_HEAL and isinstance(data, dict):
        changed = False
        for i, alert in enumerate(notification.alerts):
            mapping = section.heal_map(alert.labels["vnf_instance_id"])
            if mapping is None:
                continue
            vnfc = alert.labels["vnfc_info_id"]
            member = vnfc[len(mapping.vnfc_prefix):] if vnfc.startswith(mapping.vnfc_prefix) else vnfc
            data["alerts"][i]["labels"][MEMBER_LABEL] = member
            changed = True
        if changed:
            notification = parse_notification(data)
            return _with_text(notification, json.dumps(data))
    try:
        return _with_text(notification, raw.decode("utf-8"))
    except UnicodeDecodeError:
        return notification


def _with_text(notification: Notification, text: str) -> Notification:
    return replace(notification, raw_text=text)


def _unmapped(notification: Notification, endpoint: Endpoint, section: TackerSection) -> list[dict[str, str]]:
    """The (VNF instance, aspect) of auto-scale alerts, or VNF instances of auto-heal alerts, that the tacker
    section maps to no group (they are decided ``no_group``)."""
    seen: list[dict[str, str]] = []
    for alert in notification.alerts:
        labels = alert.labels
        if endpoint is Endpoint.AUTO_SCALE:
            key = {"vnf_instance_id": labels["vnf_instance_id"], "aspect_id": labels["aspect_id"]}
            if not any(a.vnf_instance_id == key["vnf_instance_id"] and a.aspect_id == key["aspect_id"]
                       for a in section.aspects) and key not in seen:
                seen.append(key)
        elif endpoint is Endpoint.AUTO_HEAL:
            key = {"vnf_instance_id": labels["vnf_instance_id"]}
            if section.heal_map(key["vnf_instance_id"]) is None and key not in seen:
                seen.append(key)
    return seen
