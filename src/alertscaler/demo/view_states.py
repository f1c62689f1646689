"""What the live view of ``alertscaler demo`` shows, as data: ``ViewState`` and its rows (``InstanceRow``,
``AlertRow``, ``DecisionRow``), plain frozen dataclasses, and ``build_state(...)`` making one from the raw
answers (load generator snapshot and history, alertscaler's group and decisions, Prometheus' utilisation
query and alerts) — pure, so it is testable without a terminal or a network.

Built by ``demo.polling.Poller``; drawn by ``demo.view``; ``demo.running`` and ``demo.summaries`` use the
decision rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from alertscaler.demo.load_stats import SecondSummary, Snapshot

__all__ = [
    "AlertRow",
    "DecisionRow",
    "InstanceRow",
    "ViewState",
    "build_state",
    "parse_alerts",
    "parse_decision",
    "per_target_rates",
    "utilisation_by_instance",
]

_RATE_SECONDS = 3  # per-instance req/s: averaged over the last complete seconds


# -- the state --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceRow:
    """One member of the group."""

    id: str
    address: str
    state: str  # running, starting, stopping, ... (the provider's word)
    utilisation: float | None = None  # 0..1, Prometheus' last sample of workload_utilisation
    rps: float | None = None  # requests/s the load generator sent it (last few seconds)


@dataclass(frozen=True)
class AlertRow:
    """An alert Prometheus holds (pending or firing)."""

    name: str
    state: str  # pending | firing
    value: float | None = None
    active_for: float | None = None  # seconds since it became active
    group: str | None = None


@dataclass(frozen=True)
class DecisionRow:
    """One decision alertscaler recorded."""

    id: int
    policy: str | None
    trigger: str
    outcome: str  # acted | skipped
    reason: str
    from_capacity: int | None
    to_capacity: int | None
    message: str
    at: float | None = None  # demo seconds (load start = 0); negative before the load started
    members: tuple[str, ...] = ()  # the members a heal decision is about (its alerts' or its judgement's)

    @property
    def scale_out(self) -> bool:
        return self.outcome == "acted" and self.policy == "scale_out"

    @property
    def scale_in(self) -> bool:
        return self.outcome == "acted" and self.policy == "scale_in"


@dataclass(frozen=True)
class ViewState:
    """Everything the view shows at one moment."""

    group: str = "web"
    elapsed: float = 0.0  # seconds since the load started
    duration: float = 0.0  # seconds the replay lasts
    trace_time: datetime | None = None  # the moment of the original trace being replayed
    compression: float = 1.0  # demo time is this many times faster than the trace
    target_rps: float = 0.0  # the replay's rate now
    last_second: SecondSummary | None = None  # the load generator's last complete second
    sent: int = 0
    ok: int = 0
    overloaded: int = 0  # 503
    errors: int = 0  # other failures: connection errors, timeouts, other statuses
    no_target: int = 0
    desired: int | None = None
    current: int | None = None
    min_size: int = 1
    max_size: int = 1
    per_instance_rps: float = 1.0
    instances: tuple[InstanceRow, ...] = ()
    alerts: tuple[AlertRow, ...] = ()
    decisions: tuple[DecisionRow, ...] = ()  # newest first
    demand: tuple[float, ...] = ()  # req/s asked of the group, one value per second
    capacity: tuple[float, ...] = ()  # req/s the running instances can serve, one value per second
    links: tuple[tuple[str, str], ...] = ()  # (name, url)
    attribution: str = ""
    problems: tuple[str, ...] = ()  # what could not be polled last time
    finished: bool = False

    @property
    def running(self) -> int:
        return sum(1 for i in self.instances if i.state == "running")

    @property
    def capacity_rps(self) -> float:
        return self.running * self.per_instance_rps

    @property
    def firing(self) -> tuple[AlertRow, ...]:
        return tuple(a for a in self.alerts if a.state == "firing")

    @property
    def mean_utilisation(self) -> float | None:
        values = [i.utilisation for i in self.instances if i.utilisation is not None]
        return sum(values) / len(values) if values else None


# -- building it from the raw answers (pure) ----------------------------------------------------------------------


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        # Prometheus writes nanoseconds (2026-01-01T10:00:00.123456789Z): keep microseconds
        head, dot, rest = text.partition(".")
        if not dot:
            return None
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        try:
            parsed = datetime.fromisoformat(f"{head}.{digits[:6]}{zone}".replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed


def utilisation_by_instance(query_answer: Any) -> dict[str, float]:
    """``{member id or address: value}`` from a Prometheus instant-query answer for ``workload_utilisation``."""
    out: dict[str, float] = {}
    try:
        results = query_answer["data"]["result"]
    except (KeyError, TypeError):
        return out
    for item in results if isinstance(results, list) else []:
        if not isinstance(item, dict):
            continue
        metric = item.get("metric") if isinstance(item.get("metric"), dict) else {}
        value = item.get("value")
        number = _number(value[1]) if isinstance(value, list) and len(value) == 2 else None
        if number is None or not isinstance(metric, dict):
            continue
        for key in ("alertscaler_member", "instance"):
            label = metric.get(key)
            if isinstance(label, str) and label:
                out[label] = number
    return out


def parse_alerts(alerts_answer: Any, now: datetime) -> tuple[AlertRow, ...]:
    """Firing alerts first, then pending ones, from Prometheus' ``GET /api/v1/alerts`` answer."""
    try:
        items = alerts_answer["data"]["alerts"]
    except (KeyError, TypeError):
        return ()
    rows = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
        assert isinstance(labels, dict)
        active = _parse_time(item.get("activeAt"))
        rows.append(AlertRow(
            name=str(labels.get("alertname", "?")),
            state=str(item.get("state", "?")),
            value=_number(item.get("value")),
            active_for=None if active is None else max(0.0, (now - active).total_seconds()),
            group=labels.get("alertscaler_group") if isinstance(labels.get("alertscaler_group"), str) else None,
        ))
    rows.sort(key=lambda a: (a.state != "firing", a.name))
    return tuple(rows)


def parse_decision(data: Mapping[str, Any], load_started: datetime | None) -> DecisionRow:
    decided = _parse_time(data.get("decided_at"))
    at = None if decided is None or load_started is None else (decided - load_started).total_seconds()
    return DecisionRow(
        id=int(data.get("id", 0)),
        policy=data.get("policy"),
        trigger=str(data.get("trigger", "")),
        outcome=str(data.get("outcome", "")),
        reason=str(data.get("reason", "")),
        from_capacity=data.get("from_capacity"),
        to_capacity=data.get("to_capacity"),
        message=str(data.get("message", "")),
        at=at,
        members=_members(data.get("alerts")),
    )


def _members(alerts: Any) -> tuple[str, ...]:
    """The members a decision's alerts name: ``member`` of a heal judgement, else the ``alertscaler_member`` (or
    ``instance``) label of an alert."""
    out: list[str] = []
    for item in alerts if isinstance(alerts, list) else []:
        if not isinstance(item, Mapping):
            continue
        labels = item.get("labels")
        labels = labels if isinstance(labels, Mapping) else {}
        member = item.get("member") or labels.get("alertscaler_member") or labels.get("instance")
        if isinstance(member, str) and member:
            out.append(member)
    return tuple(dict.fromkeys(out))


def per_target_rates(history: Sequence[SecondSummary], seconds: int = _RATE_SECONDS) -> dict[str, float]:
    """Requests/s sent to each target over the last ``seconds`` complete seconds."""
    recent = list(history)[-seconds:]
    totals: dict[str, float] = {}
    for summary in recent:
        for target, count in summary.per_target.items():
            totals[target] = totals.get(target, 0.0) + count
    return {t: n / len(recent) for t, n in totals.items()} if recent else {}


def build_state(
    base: ViewState,
    *,
    snapshot: Snapshot | None,
    history: Sequence[SecondSummary],
    group: Mapping[str, Any] | None,
    utilisation: Mapping[str, float],
    alerts: tuple[AlertRow, ...],
    decisions: Sequence[DecisionRow],
    capacity: Sequence[float],
    trace_start: datetime | None = None,
    seconds_per_minute: float = 1.0,
    problems: Sequence[str] = (),
    decision_rows: int = 8,
) -> ViewState:
    """A new ``ViewState`` from ``base`` (static fields: group, duration, links, ...) and the polled answers."""
    rates = per_target_rates(history)
    instances = []
    desired, current = base.desired, base.current
    min_size, max_size = base.min_size, base.max_size
    if group is not None:
        desired = group.get("desired", desired)
        current = group.get("current", current)
        min_size = group.get("min_size", min_size)
        max_size = group.get("max_size", max_size)
        for m in group.get("members") or []:
            if not isinstance(m, dict):
                continue
            address = str(m.get("address") or "")
            member_id = str(m.get("id", "?"))
            util = utilisation.get(member_id, utilisation.get(address))
            instances.append(InstanceRow(member_id, address, str(m.get("state", "?")), util,
                                         rates.get(address, 0.0 if address else None)))
    else:
        instances = list(base.instances)
    elapsed = snapshot.elapsed if snapshot is not None else base.elapsed
    trace_time = None
    if trace_start is not None and seconds_per_minute > 0:
        trace_time = trace_start + timedelta(minutes=min(elapsed, base.duration) / seconds_per_minute)
    totals = snapshot.totals if snapshot is not None else None
    newest_first = sorted(decisions, key=lambda d: d.id, reverse=True)[:decision_rows]
    return replace(
        base,
        elapsed=elapsed,
        trace_time=trace_time,
        compression=60.0 / seconds_per_minute if seconds_per_minute > 0 else base.compression,
        target_rps=snapshot.target_rate if snapshot is not None else base.target_rps,
        last_second=snapshot.last if snapshot is not None else base.last_second,
        sent=totals.sent if totals else base.sent,
        ok=totals.ok if totals else base.ok,
        overloaded=totals.overloaded if totals else base.overloaded,
        errors=(totals.http_errors + totals.connection_errors + totals.timeouts) if totals else base.errors,
        no_target=totals.no_target + totals.dropped if totals else base.no_target,
        desired=desired,
        current=current,
        min_size=min_size,
        max_size=max_size,
        instances=tuple(instances),
        alerts=alerts,
        decisions=tuple(newest_first),
        demand=tuple(s.target_rate for s in history),
        capacity=tuple(capacity),
        problems=tuple(problems),
    )
