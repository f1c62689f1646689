"""The live view of ``alertscaler demo``: what the load generator sends, what each instance does, which
alerts fire, the group's size and the decisions alertscaler takes, with their reasons.

Three parts, so that most of it is testable without a terminal or a network:

* ``ViewState`` (plain frozen dataclasses) and ``build_state(...)`` — pure: the raw answers (load generator
  snapshot and history, alertscaler's group and decisions, Prometheus' utilisation query and alerts) in,
  one consistent state out.
* ``render(state)`` — pure: a rich renderable (header with the demand vs capacity sparklines, instances,
  alerts, decisions, the traffic attribution). ``status_line`` / ``decision_line`` are the one-line forms
  used when there is no terminal (``--no-view``).
* ``Poller`` — a background thread polling alertscaler and Prometheus (sync httpx, short timeouts) and the
  load generator's ``stats()`` every ``interval``; ``state()`` returns the latest ``ViewState`` at once, so
  the thread that draws never waits for the network and the load generator's event loop is never blocked.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from alertscaler.demo.load_stats import SecondSummary, Snapshot

__all__ = [
    "AlertRow",
    "DecisionRow",
    "InstanceRow",
    "Poller",
    "ViewState",
    "bar",
    "build_state",
    "decision_line",
    "render",
    "resample",
    "sparkline",
    "status_line",
]

_BLOCKS = " ▁▂▃▄▅▆▇█"
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
    )


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


# -- rendering (pure) --------------------------------------------------------------------------------------------


def clock(seconds: float) -> str:
    """``m:ss`` (negative: ``-m:ss``)."""
    whole = int(abs(seconds))
    sign = "-" if seconds < 0 and whole else ""
    return f"{sign}{whole // 60}:{whole % 60:02d}"


def sparkline(values: Sequence[float], top: float, width: int) -> str:
    """The last ``width`` values as block characters, ``top`` being a full block (above it: full too)."""
    if width <= 0:
        return ""
    recent = list(values)[-width:]
    if top <= 0:
        top = max(recent, default=0.0) or 1.0
    steps = len(_BLOCKS) - 1
    chars = []
    for v in recent:
        level = 0 if v <= 0 else max(1, min(steps, round(v / top * steps)))
        chars.append(_BLOCKS[level])
    return "".join(chars)


def resample(values: Sequence[float], per_point: float) -> list[float]:
    """Means of consecutive runs of ``per_point`` values (>= 1; fractional runs alternate in length)."""
    if per_point <= 1:
        return list(values)
    out = []
    for i in range(math.ceil(len(values) / per_point)):
        chunk = values[math.floor(i * per_point):math.floor((i + 1) * per_point)] or values[-1:]
        out.append(sum(chunk) / len(chunk))
    return out


def bar(fraction: float | None, width: int = 10) -> str:
    """``████░░░░░░`` for a fraction in 0..1 (None: blank)."""
    if fraction is None:
        return " " * width
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def _util_style(value: float | None) -> str:
    if value is None:
        return "dim"
    if value > 0.75:
        return "red"
    if value < 0.35:
        return "cyan"
    return "green"


class _Sparklines:
    """Demand and capacity since the start, as wide as the console allows: the whole replay fits the width
    (one character per second when it is short enough), so the line fills up from left to right."""

    def __init__(self, state: ViewState) -> None:
        self.state = state

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s = self.state
        label = 10
        tail = len(" 0000.0 req/s")
        width = max(10, options.max_width - label - tail)
        per_point = max(1.0, s.duration / width, len(s.demand) / width)
        demand, capacity = resample(s.demand, per_point), resample(s.capacity, per_point)
        top = max([s.max_size * s.per_instance_rps, *demand, *capacity])
        demand_now = s.demand[-1] if s.demand else s.target_rps
        capacity_now = s.capacity[-1] if s.capacity else s.capacity_rps
        pad = max(0, len(demand) - len(capacity))  # the same second at the same column
        lines = [
            Text.assemble(("demand    ", "bold"), (sparkline(demand, top, width).ljust(width), "magenta"),
                          f" {demand_now:6.1f} req/s"),
            Text.assemble(("capacity  ", "bold"), (" " * pad + sparkline(capacity, top, width - pad), "blue"),
                          " " * max(0, width - len(capacity) - pad) + f" {capacity_now:6.1f} req/s"),
        ]
        for line in lines:
            line.no_wrap = True
            line.overflow = "crop"
            yield line


def _header(s: ViewState) -> RenderableType:
    last = s.last_second
    per_second = "sent -/s  ok -/s  503 -/s"
    if last is not None:
        c = last.counts
        p95 = "" if last.p95 is None else f"  p95 {last.p95 * 1000:.0f} ms"
        per_second = (f"sent {c.sent}/s  [green]ok {c.ok}/s[/green]  "
                      f"[{'red' if c.overloaded else 'dim'}]503 {c.overloaded}/s[/]{p95}")
    when = "" if s.trace_time is None else f"   trace {s.trace_time:%Y-%m-%d %H:%M} (x{s.compression:.0f})"
    line1 = (f"[bold]elapsed {clock(s.elapsed)} / {clock(s.duration)}[/bold]{when}   "
             f"demand [magenta]{s.target_rps:.1f} req/s[/magenta]   {per_second}")
    capacity = s.capacity_rps
    load = s.target_rps / capacity if capacity > 0 else None
    load_text = "no instance running" if load is None else f"{load:.0%} of capacity"
    style = "red" if load is None or load > 1 else "yellow" if load > 0.75 else "green"
    size = (f"group [bold]{escape(s.group)}[/bold]: desired [bold]{_opt(s.desired)}[/bold]  current "
            f"[bold]{_opt(s.current)}[/bold]  (min {s.min_size}, max {s.max_size})   capacity "
            f"{capacity:.0f} req/s = {s.running} x {s.per_instance_rps:.0f}   "
            f"[{style}]{bar(None if load is None else min(1.0, load), 12)} {load_text}[/{style}]")
    totals = (f"[dim]since start: sent {s.sent}  ok {s.ok}  503 {s.overloaded}  errors {s.errors}"
              + (f"  not sent (no instance / too many in flight) {s.no_target}" if s.no_target else "") + "[/dim]")
    return Group(Text.from_markup(line1), Text.from_markup(size), Text.from_markup(totals), _Sparklines(s))


def _opt(value: int | None) -> str:
    return "?" if value is None else str(value)


def _instances(s: ViewState) -> RenderableType:
    table = Table(expand=True, box=None, pad_edge=False, show_edge=False)
    table.add_column("instance", no_wrap=True)
    table.add_column("address", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("utilisation", no_wrap=True)
    table.add_column("req/s", justify="right", no_wrap=True)
    for i in s.instances:
        style = _util_style(i.utilisation)
        util = "  -" if i.utilisation is None else f"{i.utilisation:4.0%}"
        state_style = "green" if i.state == "running" else "yellow"
        table.add_row(escape(i.id), escape(i.address), f"[{state_style}]{escape(i.state)}[/{state_style}]",
                      f"[{style}]{bar(i.utilisation)} {util}[/{style}]",
                      "-" if i.rps is None else f"{i.rps:.1f}")
    if not s.instances:
        table.add_row("[dim](none yet)[/dim]", "", "", "", "")
    return Panel(table, title=f"instances ({len(s.instances)})", title_align="left", border_style="blue")


def _alerts(s: ViewState) -> RenderableType:
    if not s.alerts:
        return Text.from_markup("[dim]alerts: none pending or firing[/dim]")
    parts = []
    for a in s.alerts:
        style = "bold red" if a.state == "firing" else "yellow"
        value = "" if a.value is None else f" {a.value:.0%}"
        since = "" if a.active_for is None else f" for {a.active_for:.0f}s"
        parts.append(f"[{style}]{escape(a.name)}[/{style}] {a.state}{value}{since}")
    return Text.from_markup("alerts: " + "   ".join(parts))


def _decisions(s: ViewState) -> RenderableType:
    table = Table(expand=True, box=None, pad_edge=False, show_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("at", justify="right", no_wrap=True)
    table.add_column("policy", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("size", no_wrap=True)
    table.add_column("message", ratio=1, overflow="ellipsis", no_wrap=True)
    for d in s.decisions:
        style = "green" if d.outcome == "acted" else "yellow"
        size = f"{d.from_capacity}→{d.to_capacity}" if d.from_capacity is not None else ""
        table.add_row(str(d.id), "" if d.at is None else clock(d.at), escape(d.policy or d.trigger),
                      f"[{style}]{escape(d.outcome)}[/{style}]", escape(d.reason), size, escape(d.message))
    if not s.decisions:
        table.add_row("", "", "[dim](none yet)[/dim]", "", "", "", "")
    return Panel(table, title="last decisions (newest first)", title_align="left", border_style="green")


def render(state: ViewState) -> RenderableType:
    """The whole view for one state."""
    s = state
    title = "alertscaler demo" + (" — finished" if s.finished else "")
    parts: list[RenderableType] = [
        Panel(_header(s), title=title, title_align="left", border_style="magenta"),
        _instances(s),
        _alerts(s),
        _decisions(s),
    ]
    if s.problems:
        parts.append(Text.from_markup("[yellow]" + escape("; ".join(s.problems)) + "[/yellow]"))
    links = "   ".join(f"{name} {url}" for name, url in s.links)
    footer = [f"[dim]{escape(links)}[/dim]"] if links else []
    if s.attribution:
        reference, available, where = s.attribution.partition(" Available at ")
        footer.append(f"[dim]traffic shape: {escape(reference)}[/dim]")
        if available:
            footer.append(f"[dim]  available at {escape(where)}[/dim]")
    footer.append("[dim]Ctrl-C stops everything[/dim]")
    parts.append(Text.from_markup("\n".join(footer)))
    return Group(*parts)


def status_line(s: ViewState) -> str:
    """One line of the state, for ``--no-view``."""
    last = s.last_second
    counts = "sent - ok - 503 -" if last is None else (
        f"sent {last.counts.sent} ok {last.counts.ok} 503 {last.counts.overloaded}")
    utils = " ".join("-" if i.utilisation is None else f"{i.utilisation:.0%}" for i in s.instances)
    firing = ", ".join(a.name for a in s.firing) or "none"
    when = "" if s.trace_time is None else f" (trace {s.trace_time:%H:%M})"
    return (f"[{clock(s.elapsed)}/{clock(s.duration)}]{when} demand {s.target_rps:5.1f} req/s | {counts} /s | "
            f"{s.group} desired {_opt(s.desired)} current {_opt(s.current)} capacity {s.capacity_rps:.0f} req/s | "
            f"utilisation {utils or '-'} | firing: {firing}")


def decision_line(d: DecisionRow) -> str:
    """One line per decision, for ``--no-view`` (and the summary)."""
    at = "" if d.at is None else f"[{clock(d.at)}] "
    size = f" {d.from_capacity}→{d.to_capacity}" if d.from_capacity is not None else ""
    return f"{at}decision #{d.id}: {d.policy or '-'} {d.outcome} ({d.reason}){size} [{d.trigger}]: {d.message}"


# -- polling (a background thread) -------------------------------------------------------------------------------


class LoadStats(Protocol):
    def stats(self) -> Snapshot: ...

    def history(self) -> list[SecondSummary]: ...


@dataclass
class _Seen:
    decisions: dict[int, DecisionRow] = field(default_factory=dict)
    capacity: list[float] = field(default_factory=list)
    max_current: int = 0


class Poller:
    """Polls alertscaler, Prometheus and the load generator every ``interval`` seconds in a daemon thread.

    ``state()`` returns the latest ``ViewState``; ``decisions()`` every decision seen so far (oldest first);
    ``max_current`` the largest group size seen.
    """

    def __init__(
        self,
        base: ViewState,
        *,
        loadgen: LoadStats,
        alertscaler_url: str,
        prometheus_url: str,
        trace_start: datetime | None = None,
        seconds_per_minute: float = 1.0,
        interval: float = 0.5,
        timeout: float = 1.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.loadgen = loadgen
        self.alertscaler_url = alertscaler_url.rstrip("/")
        self.prometheus_url = prometheus_url.rstrip("/")
        self.trace_start = trace_start
        self.seconds_per_minute = seconds_per_minute
        self.interval = interval
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._state = base
        self._seen = _Seen()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._load_started: datetime | None = None
        self._polls = 0

    # -- control ------------------------------------------------------------------------------------------------

    def start(self) -> Poller:
        self._thread = threading.Thread(target=self._run, name="demo-view-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def state(self) -> ViewState:
        with self._lock:
            return self._state

    def decisions(self) -> list[DecisionRow]:
        with self._lock:
            return [self._seen.decisions[k] for k in sorted(self._seen.decisions)]

    @property
    def max_current(self) -> int:
        with self._lock:
            return self._seen.max_current

    @property
    def polls(self) -> int:
        """Rounds completed so far."""
        return self._polls

    @property
    def load_started(self) -> datetime | None:
        """Wall-clock time of the load generator's second 0 (None before it started)."""
        return self._load_started

    # -- polling ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, trust_env=False, headers=self.headers) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    self.poll(client)
                except Exception as exc:  # never let the view thread die: show the problem instead
                    with self._lock:
                        self._state = replace(self._state, problems=(f"view: {type(exc).__name__}: {exc}",))
                self._stop.wait(max(0.05, self.interval - (time.monotonic() - began)))

    def _get(self, client: httpx.Client, url: str, problems: list[str], **params: Any) -> Any:
        try:
            response = client.get(url, params=params or None)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            problems.append(f"{url.split('/', 3)[-1]}: {type(exc).__name__}")
            return None

    def poll(self, client: httpx.Client, decisions_limit: int = 50) -> ViewState:
        """One round: read everything, build the new state, remember decisions and capacity."""
        problems: list[str] = []
        snapshot = self.loadgen.stats()
        history = self.loadgen.history()
        now = datetime.now().astimezone()
        if self._load_started is None and snapshot.elapsed > 0:
            self._load_started = now - timedelta(seconds=snapshot.elapsed)
        base = self.state()
        group = self._get(client, f"{self.alertscaler_url}/api/v1/groups/{base.group}", problems)
        raw_decisions = self._get(client, f"{self.alertscaler_url}/api/v1/decisions", problems,
                                  group=base.group, limit=decisions_limit)
        util_answer = self._get(client, f"{self.prometheus_url}/api/v1/query", problems,
                                query=f'workload_utilisation{{alertscaler_group="{base.group}"}}')
        alerts_answer = self._get(client, f"{self.prometheus_url}/api/v1/alerts", problems)
        if snapshot.discovery_errors and snapshot.last_discovery_error and not snapshot.targets:
            problems.append(f"load generator: targets: {snapshot.last_discovery_error}")
        with self._lock:
            seen = self._seen
            if isinstance(raw_decisions, list):
                for item in raw_decisions:
                    if isinstance(item, dict) and "id" in item:
                        row = parse_decision(item, self._load_started)
                        seen.decisions[row.id] = row
            if isinstance(group, dict):
                current = group.get("current")
                if isinstance(current, int):
                    seen.max_current = max(seen.max_current, current)
                running = sum(1 for m in group.get("members") or [] if isinstance(m, dict)
                              and m.get("state") == "running")
                capacity_now = running * base.per_instance_rps
                fill = seen.capacity[-1] if seen.capacity else capacity_now
                complete = history[-1].second + 1 if history else 0
                while len(seen.capacity) < complete:  # seconds that passed since the last poll
                    seen.capacity.append(fill)
                if seen.capacity:
                    seen.capacity[-1] = capacity_now
            state = build_state(
                base,
                snapshot=snapshot,
                history=history,
                group=group if isinstance(group, dict) else None,
                utilisation=utilisation_by_instance(util_answer),
                alerts=parse_alerts(alerts_answer, now) if alerts_answer is not None else base.alerts,
                decisions=list(seen.decisions.values()),
                capacity=seen.capacity[-len(history):] if history else (),
                trace_start=self.trace_start,
                seconds_per_minute=self.seconds_per_minute,
                problems=problems,
            )
            self._state = state
            self._polls += 1
        return state

    def finish(self) -> ViewState:
        """Mark the state finished (for the last frame of the live view)."""
        with self._lock:
            self._state = replace(self._state, finished=True)
            return self._state
