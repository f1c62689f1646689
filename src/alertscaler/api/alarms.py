"""The alarm routes (documented in ``api.openapi_alarms``), added to the app by ``api.app``:
``GET /api/v1/alarms`` (every alarm of the policy file with its definition and its state per dimension set;
filter ``state``) and ``GET /api/v1/alarms/{id}/history`` (its transitions, newest first). Read-only (the API's
read credentials when ``server.auth.protect_reads``). ``alarm_view`` / ``transition_view`` are also what
``alertscaler alarms --json`` prints.

An alarm no alert has reached yet shows its initial state (``since`` null): Aodh's ``insufficient data``, or
Monasca's ``UNDETERMINED`` (``OK`` when deterministic); with ``match_by``, one state per dimension set seen,
none before the first.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alertscaler.act.engine import Engine
from alertscaler.api import auth
from alertscaler.api.openapi import LIMIT_DEFAULT, LIMIT_MAX
from alertscaler.config.alarms import alarm_definitions
from alertscaler.model.alarms import AlarmDefinition, AlarmState, AlarmStatus, Style, Transition, shown
from alertscaler.model.errors import InputError, NotFound

#: what ``?state=`` takes: the state, or its Aodh or Monasca name (case-insensitive)
_STATE_NAMES = {**{s.value: s for s in AlarmState},
                **{shown(s, style).lower(): s for s in AlarmState for style in Style}}


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def summary_state(alarm: AlarmDefinition, states: list[AlarmStatus]) -> AlarmState:
    """One state for the alarm: ALARM if any dimension set is, else INSUFFICIENT_DATA if any is, else OK (no
    dimension set yet: the initial state)."""
    found = {s.state for s in states}
    for state in (AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA, AlarmState.OK):
        if state in found:
            return state
    return alarm.initial_state


def status_view(alarm: AlarmDefinition, s: AlarmStatus) -> dict[str, Any]:
    return {"dimensions": dict(s.dimensions), "state": s.state.value, "shown": shown(s.state, alarm.style),
            "since": _time(s.since), "updated_at": _time(s.updated_at), "reason": s.reason,
            "firing": sorted(fp for fp, m in s.alerts.items() if m.firing)}


def alarm_view(alarm: AlarmDefinition, stored: list[AlarmStatus]) -> dict[str, Any]:
    """One alarm as ``GET /api/v1/alarms`` shows it."""
    states = stored if stored or alarm.match_by else [AlarmStatus.initial(alarm, {})]
    state = summary_state(alarm, states)
    return {
        "id": alarm.name, "name": alarm.name, "style": alarm.style.value, "description": alarm.description,
        "severity": alarm.severity, "enabled": alarm.enabled, "condition": str(alarm.condition),
        "deterministic": alarm.deterministic, "match_by": list(alarm.match_by), "group": alarm.group,
        "actions": {"alarm": [str(a) for a in alarm.actions.alarm], "ok": [str(a) for a in alarm.actions.ok],
                    "insufficient_data": [str(a) for a in alarm.actions.insufficient_data]},
        "repeat_actions": alarm.repeat_actions,
        "state": state.value, "shown": shown(state, alarm.style),
        "states": [status_view(alarm, s) for s in states],
    }


def transition_view(alarm: AlarmDefinition | None, t: Transition, actions: list[str]) -> dict[str, Any]:
    """One transition as ``GET /api/v1/alarms/{id}/history`` shows it."""
    style = alarm.style if alarm is not None else Style.AODH
    return {"id": t.id, "alarm": t.alarm, "dimensions": dict(t.dimensions), "old": t.old.value, "new": t.new.value,
            "old_shown": shown(t.old, style), "new_shown": shown(t.new, style), "at": _time(t.at),
            "recorded_at": _time(t.recorded_at), "reason": t.reason, "actions": actions,
            "notification_id": t.notification_id}


def _state(value: str | None) -> AlarmState | None:
    if not value:
        return None
    state = _STATE_NAMES.get(value.strip().lower())
    if state is None:
        raise InputError("must be ok, alarm or insufficient_data (or Aodh's / Monasca's name: insufficient data, "
                         f"UNDETERMINED), got {value[:40]!r}", field="state")
    return state


def _limit(value: str | None) -> int:
    if value is None:
        return LIMIT_DEFAULT
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(LIMIT_MAX))) or not (
            1 <= int(value) <= LIMIT_MAX):
        raise InputError(f"must be an integer from 1 to {LIMIT_MAX}, got {value[:20]!r}", field="limit")
    return int(value)


def routes(engine: Engine) -> list[Route]:
    async def list_alarms(request: Request) -> Response:
        auth.check(request, engine.policy.server.auth, write=False)
        wanted = _state(request.query_params.get("state"))
        alarms = alarm_definitions(engine.policy.alarms)
        stored = await anyio.to_thread.run_sync(engine.store.alarm_states)
        by_alarm: dict[str, list[AlarmStatus]] = {}
        for status in stored:
            by_alarm.setdefault(status.alarm, []).append(status)
        views = [alarm_view(a, by_alarm.get(name, [])) for name, a in alarms.items()]
        return JSONResponse([v for v in views if wanted is None or v["state"] == wanted.value])

    async def alarm_history(request: Request) -> Response:
        auth.check(request, engine.policy.server.auth, write=False)
        name = request.path_params["id"]
        alarm = alarm_definitions(engine.policy.alarms).get(name)
        if alarm is None:
            raise NotFound(f"no alarm named {name[:100]!r} in the policy file")
        limit = _limit(request.query_params.get("limit"))
        rows = await anyio.to_thread.run_sync(lambda: engine.store.alarm_history(name, limit))
        return JSONResponse([transition_view(alarm, t, actions) for t, actions in rows])

    return [
        Route("/api/v1/alarms", list_alarms, methods=["GET"]),
        Route("/api/v1/alarms/{id}/history", alarm_history, methods=["GET"]),
    ]
