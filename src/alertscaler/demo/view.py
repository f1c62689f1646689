"""The live view of ``alertscaler demo``: what the load generator sends, what each instance does, which
alerts fire, the group's size and the decisions alertscaler takes, with their reasons.

``render(state)`` — pure: a rich renderable of one ``ViewState`` (header with the demand vs capacity
sparklines, instances, alerts, decisions, the traffic attribution). ``status_line`` / ``decision_line`` are
the one-line forms used when there is no terminal (``--no-view``).

Called by ``demo.running``, with the states that ``demo.polling.Poller`` collects (``demo.view_states``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from alertscaler.demo.view_states import DecisionRow, ViewState

__all__ = [
    "bar",
    "clock",
    "decision_line",
    "render",
    "resample",
    "sparkline",
    "status_line",
]

_BLOCKS = " ▁▂▃▄▅▆▇█"


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
