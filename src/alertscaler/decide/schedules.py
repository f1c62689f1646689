"""Scheduled windows, decided: which are open at a given moment and what they do to a group's bounds.

Pure: the moment is always passed in (an aware datetime), nothing reads a clock or config. Called by
``act.scheduling`` (applies the bounds and, once per opening, the desired size) and by ``sim``.

Time zones: a window's cron is read on the wall clock of the schedule's zone. A wall time that does not
exist (skipped by a DST gap) or exists twice (repeated when clocks go back) is read with ``fold=0``: a
skipped time takes the offset from before the gap (``30 2 * * *`` on the spring-forward day in
Europe/Berlin opens at 03:30 summer time), a repeated time is its first occurrence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from alertscaler.model.cron import CronExpr
from alertscaler.model.policies import Bounds
from alertscaler.model.schedules import Schedule, ScheduleWindow


@dataclass(frozen=True)
class ActiveWindow:
    """A window that is open: ``opened_at`` / ``closes_at`` are aware UTC datetimes of this opening."""

    window: ScheduleWindow
    index: int
    opened_at: datetime
    closes_at: datetime

    @property
    def key(self) -> str:
        """Identifies this one opening of the window (to apply its ``desired`` once)."""
        return f"{self.window.name}@{self.opened_at.isoformat()}"


class Timed(Protocol):
    """A window's timing (a schedule's window, a change-freeze window): it opens when ``expr`` fires and
    stays open ``duration`` seconds."""

    @property
    def expr(self) -> CronExpr: ...

    @property
    def duration(self) -> float: ...


_SHIFT = timedelta(hours=3)
"""More than any daylight-saving shift (at most 2h in the IANA data): how far apart in time wall-clock
times can be out of order around a change of UTC offset."""


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be an aware datetime (with a time zone), got naive {now.isoformat()}")


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The aware UTC instant of a naive wall-clock time in ``zone`` (``fold=0``, see the module docstring)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time in ``zone`` of an aware instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _steady(zone: ZoneInfo, *instants: datetime) -> bool:
    """Whether ``zone``'s UTC offset does not change within ``_SHIFT`` of each instant (a zone changes it
    at most once in a few hours, so comparing both sides is enough). Wall-clock order and time order of
    fires can only disagree near such a change: away from one the quick search is exact."""
    return all((at - _SHIFT).astimezone(zone).utcoffset() == (at + _SHIFT).astimezone(zone).utcoffset()
               for at in instants)


def _lookback_days(window: Timed) -> int:
    """Days ``previous()`` must search: an opening older than the duration cannot be open now (+1 day
    for the partial first day and DST shifts)."""
    return math.ceil(window.duration / 86400) + 1


def _last_opening(window: Timed, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The latest opening (aware UTC) at or before ``now``; None if there is none within the window's
    duration (an older one cannot be open)."""
    expr, wall, limit = window.expr, _wall(now, zone), _lookback_days(window)
    fire = expr.previous(wall, limit_days=limit)
    if fire is not None:
        opened = _instant(fire, zone)
        if opened <= now and _steady(zone, opened, now):
            return opened
    elif _steady(zone, now):
        return None
    # Near a DST change a later wall time can be an earlier instant (and one skipped by a gap can map
    # past ``now``): look at every fire that can be out of order and keep the latest instant <= now.
    oldest = wall - timedelta(seconds=window.duration) - _SHIFT
    best: datetime | None = None
    fire = expr.previous(wall + _SHIFT, limit_days=limit + 1)
    while fire is not None and fire >= oldest:
        if best is not None and fire < _wall(best, zone) - _SHIFT:
            break  # earlier wall times can only be earlier instants
        opened = _instant(fire, zone)
        if opened <= now and (best is None or opened > best):
            best = opened
        fire = expr.previous(fire - timedelta(minutes=1), limit_days=limit + 1)
    return best


def _next_opening(window: Timed, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The earliest opening (aware UTC) after ``now`` within ``next_after``'s default look-ahead, or None."""
    expr, wall = window.expr, _wall(now, zone)
    fire = expr.next_after(wall)
    if fire is not None:
        opened = _instant(fire, zone)
        if opened > now and _steady(zone, now, opened):
            return opened
    # Near a DST change (see _last_opening): keep the earliest instant > now among the fires out of order.
    best: datetime | None = None
    fire = expr.next_after(wall - _SHIFT)
    while fire is not None:
        if best is not None and fire > _wall(best, zone) + _SHIFT:
            break  # later wall times can only be later instants
        opened = _instant(fire, zone)
        if opened > now and (best is None or opened < best):
            best = opened
        fire = expr.next_after(fire)
    return best


def open_span(window: Timed, zone: ZoneInfo, now: datetime) -> tuple[datetime, datetime] | None:
    """(opened_at, closes_at), aware UTC, of ``window``'s opening in ``zone`` that is open at ``now``; None when
    it is closed. The rule of ``active_windows`` for one window. Raises ValueError for a naive ``now``."""
    _require_aware(now)
    now_utc = now.astimezone(UTC)
    opened = _last_opening(window, now_utc, zone)
    if opened is None:
        return None
    closes = opened + timedelta(seconds=window.duration)
    return (opened, closes) if now_utc < closes else None


def next_opening(window: Timed, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When ``window`` next opens after ``now`` (aware UTC; None: not within the look-ahead of 400 days)."""
    _require_aware(now)
    return _next_opening(window, now.astimezone(UTC), zone)


def active_windows(schedule: Schedule, now: datetime) -> list[ActiveWindow]:
    """The windows open at ``now`` (aware, any zone), in the order of ``schedule.windows``.

    A window is open iff its latest opening ``opened_at`` (the last time its cron fired on the
    schedule's wall clock) satisfies ``opened_at <= now < opened_at + duration``; when the duration is
    longer than the cron's period the latest opening wins. Raises ValueError for a naive ``now``.
    """
    _require_aware(now)
    zone, now_utc = schedule.zone, now.astimezone(UTC)
    active: list[ActiveWindow] = []
    for index, window in enumerate(schedule.windows):
        opened = _last_opening(window, now_utc, zone)
        if opened is None:
            continue
        closes = opened + timedelta(seconds=window.duration)
        if now_utc < closes:
            active.append(ActiveWindow(window=window, index=index, opened_at=opened, closes_at=closes))
    return active


def effective_bounds(base: Bounds, active: Sequence[ActiveWindow]) -> Bounds:
    """``base`` with the active windows' min_size / max_size applied in index order, each overriding
    what it sets. When a window's value contradicts what is left from before (its min_size above the
    current max_size, or its max_size below the current min_size) the window wins and the other bound
    moves to it: base 1..10, window A min_size 5, later window B max_size 3 → 3..3."""
    low, high = base.min_size, base.max_size
    for item in sorted(active, key=lambda a: a.index):
        window = item.window
        if window.min_size is not None and window.max_size is not None:
            low, high = window.min_size, window.max_size
        elif window.min_size is not None:
            low, high = window.min_size, max(high, window.min_size)
        elif window.max_size is not None:
            low, high = min(low, window.max_size), window.max_size
    return base.model_copy(update={"min_size": low, "max_size": high})


def scheduled_desired(active: Sequence[ActiveWindow]) -> tuple[ActiveWindow, int] | None:
    """The active window that sets ``desired`` and opened most recently (ties: the higher index), with
    its desired size; None if no active window sets one. The caller applies it once per opening (by
    ``ActiveWindow.key``) and clamps it to the effective bounds."""
    best: ActiveWindow | None = None
    for item in active:
        if item.window.desired is None:
            continue
        if best is None or (item.opened_at, item.index) > (best.opened_at, best.index):
            best = item
    if best is None or best.window.desired is None:
        return None
    return best, best.window.desired


def next_change(schedule: Schedule, now: datetime) -> datetime | None:
    """The earliest moment (aware UTC) after ``now`` at which a window opens or an open one closes; None
    if nothing is open and nothing opens within ``CronExpr.next_after``'s default look-ahead (400 days).
    Raises ValueError for a naive ``now``."""
    _require_aware(now)
    zone, now_utc = schedule.zone, now.astimezone(UTC)
    moments = [item.closes_at for item in active_windows(schedule, now_utc)]
    for window in schedule.windows:
        opened = _next_opening(window, now_utc, zone)
        if opened is not None:
            moments.append(opened)
    return min(moments, default=None)
