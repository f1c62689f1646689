"""JSON shapes of the API's resources. Used by ``api.app``."""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from alertscaler.act.reloading import Reloaded
from alertscaler.config import GroupConfig
from alertscaler.decide.approvals import next_freeze, open_freeze
from alertscaler.decide.schedules import active_windows, effective_bounds, next_change
from alertscaler.model.approvals import ApprovalState, PendingApproval
from alertscaler.model.controls import Pause, pause_of
from alertscaler.model.decisions import Action, Decision
from alertscaler.model.groups import GroupState, GroupStatus, Member
from alertscaler.model.prediction import BAND, PredictionView


def plain(value: Any) -> Any:
    """Dataclasses, enums and datetimes → JSON-ready values."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _ms(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds() * 1000, 3)


def decision(d: Decision) -> dict[str, Any]:
    out: dict[str, Any] = plain(d)
    out["timing_ms"] = {
        "alert_to_arrival": _ms(d.received_at, d.alert_starts_at),
        "arrival_to_decision": _ms(d.decided_at, d.received_at),
        "decision_to_provider_call": _ms(d.provider_call_at, d.decided_at),
        "arrival_to_provider_call": _ms(d.provider_call_at, d.received_at),
    }
    return out


def action(a: Action) -> dict[str, Any]:
    out: dict[str, Any] = plain(a)
    return out


def member(m: Member) -> dict[str, Any]:
    out: dict[str, Any] = plain(asdict(m))
    return out


def pause(p: Pause, now: datetime) -> dict[str, Any]:
    """A pause as the API shows it (``group`` None: every group's)."""
    return {"group": None if p.global_ else p.scope, "since": plain(p.since), "until": plain(p.until),
            "reason": p.reason, "active": p.holds(now)}


def approval(a: PendingApproval, now: datetime) -> dict[str, Any]:
    """A change that waits (or waited) for approval; ``id`` is its ``pending_approval`` decision's. A pending one
    whose time has passed is shown ``expired`` (the expiry pass records it)."""
    state = ApprovalState.EXPIRED if a.state is ApprovalState.PENDING and not a.waiting(now) else a.state
    return {"id": a.decision_id, "group": a.group, "kind": a.kind.value, "state": state.value, "policy": a.policy,
            "trigger": a.trigger.value, "from": a.from_capacity, "to": a.to_capacity, "targets": plain(a.targets),
            "what": a.describe(), "why": a.why, "message": a.message, "created_at": plain(a.created_at),
            "expires_at": plain(a.expires_at), "resolved_at": plain(a.resolved_at), "resolved_by": a.resolved_by,
            "resolution_id": a.resolution_id}


def change_freeze(config: GroupConfig, now: datetime) -> dict[str, Any]:
    """A group's change freeze at ``now``: the window open (null: none) and when one next opens."""
    assert config.change_freeze is not None
    found = open_freeze(config.change_freeze, now)
    upcoming = next_freeze(config.change_freeze, now)
    return {"timezone": config.change_freeze.timezone,
            "open": {"name": found.name, "reason": found.reason, "opened_at": plain(found.opened_at),
                     "closes_at": plain(found.closes_at)} if found is not None else None,
            "next_opens": plain(upcoming) if upcoming else None}


def group(name: str, config: GroupConfig, state: GroupState | None, status: GroupStatus | None,
          members: bool = False, now: datetime | None = None, pauses: list[Pause] | None = None,
          approvals: list[PendingApproval] | None = None,
          prediction: PredictionView | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "provider": config.provider_type,
        "min_size": config.min_size,
        "max_size": config.max_size,
        "desired": state.desired if state else config.initial_desired,
        "current": status.current if status else None,
        "dry_run": config.dry_run,
        "last_scale_out_at": plain(state.last_scale_out_at) if state else None,
        "last_scale_in_at": plain(state.last_scale_in_at) if state else None,
        "policies": {d.value: {"matchers": p.matchers, "adjustment_type": p.adjustment_type.value,
                               "adjustment": p.adjustment, "cooldown_s": p.cooldown}
                     for d, p in config.policies()},
    }
    if now is not None and pauses is not None:
        found = pause_of(pauses, name, now)
        out["paused"] = pause(found, now) if found is not None else None
    if now is not None:
        out["held_until"] = plain(state.held_until) if state is not None and state.held(now) else None
    if config.schedule is not None and now is not None:
        out["schedule"] = schedule(config, now)
    if config.change_freeze is not None and now is not None:
        out["change_freeze"] = change_freeze(config, now)
    if approvals is not None and now is not None:
        out["pending_approvals"] = [approval(a, now) for a in approvals if a.group == name and a.waiting(now)]
    if config.predict is not None:
        out["predict"] = predict(prediction, config.predict.forecast_only)
    if status is not None and status.detail:
        out["detail"] = status.detail
    if members:
        out["members"] = [member(m) for m in (status.members if status else ())]
    return out


def predict(view: PredictionView | None, forecast_only: bool) -> dict[str, Any]:
    """A predict group's forecast (null: none yet) and why there is none or the last read failed."""
    f = view.forecast if view is not None else None
    return {
        "forecast_only": forecast_only,
        "problem": view.problem if view is not None else "no forecast yet (made at the group's tracking evaluations)",
        "forecast": None if f is None else {
            "made_at": plain(f.made_at), "for": plain(f.for_at), "mean": f.mean, "lower": f.lower, "upper": f.upper,
            "band": BAND, "planned": f.planned, "quantile": f.quantile, "desired": f.ask, "skill": f.skill,
            "applied": f.applies and not forecast_only,
            "points": f.points, "seasons_s": list(f.seasons), "fitted_at": plain(f.fitted_at),
            "data_until": plain(f.data_until)},
    }


def schedule(config: GroupConfig, now: datetime) -> dict[str, Any]:
    """A scheduled group's windows at ``now``: which are open, the bounds in force, when that next changes."""
    assert config.schedule is not None
    active = active_windows(config.schedule, now)
    bounds = effective_bounds(config.bounds, active)
    upcoming = next_change(config.schedule, now)
    return {
        "timezone": config.schedule.timezone,
        "min_size": bounds.min_size,
        "max_size": bounds.max_size,
        "open": [{"name": a.window.name, "opened_at": plain(a.opened_at), "closes_at": plain(a.closes_at)}
                 for a in active],
        "next_change": plain(upcoming) if upcoming else None,
    }


def reloaded(r: Reloaded) -> dict[str, Any]:
    """A reload of the policy file (``POST /-/reload``): what it changed, or why it was refused (``error``,
    ``reason``: invalid / needs_restart / failed, and the file's ``problems`` with their paths)."""
    out: dict[str, Any] = {"status": "reloaded" if r.applied else "refused", "at": plain(r.at),
                           "message": r.describe()}
    if r.applied and r.diff is not None:
        d = r.diff
        out.update(added=list(d.added), changed=list(d.changed), removed=list(d.removed),
                   unchanged=list(d.unchanged), new_providers=list(d.new_providers), settings=list(d.sections))
    else:
        out.update(error=r.error, reason=r.refusal,
                   problems=[{"path": p.path, "message": p.message} for p in r.problems])
    return out
