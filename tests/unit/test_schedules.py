"""Scheduled windows: config validation (model.schedules) and the pure decisions (decide.schedules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from alertscaler.decide.schedules import (
    ActiveWindow,
    active_windows,
    effective_bounds,
    next_change,
    scheduled_desired,
)
from alertscaler.model.cron import CronExpr
from alertscaler.model.policies import Bounds
from alertscaler.model.schedules import Schedule, ScheduleWindow

BERLIN = ZoneInfo("Europe/Berlin")


def window(name: str = "w", cron: str = "0 8 * * 1-5", duration: str = "10h", **sizes: int) -> ScheduleWindow:
    data = {"name": name, "cron": cron, "duration": duration, **(sizes or {"min_size": 4})}
    return ScheduleWindow.model_validate(data)


def berlin(*windows: ScheduleWindow) -> Schedule:
    return Schedule(timezone="Europe/Berlin", windows=list(windows))


# --- model.schedules: validation -------------------------------------------------------------------------


def test_window_parses_and_exposes_its_expression() -> None:
    w = ScheduleWindow.model_validate({"name": "office.hours_1", "cron": "0 8 * * mon-fri", "duration": "10h",
                                       "min_size": 4, "max_size": 10, "desired": 6})
    assert w.duration == 36000.0
    assert w.expr == CronExpr.parse("0 8 * * mon-fri")
    assert w.model_dump(mode="json")["duration"] == "10h"
    schedule = Schedule(windows=[w])
    assert schedule.timezone == "UTC"
    assert schedule.zone == ZoneInfo("UTC")
    assert berlin(w).zone == BERLIN


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "a window must set min_size, max_size or desired"),
        ({"min_size": 5, "max_size": 3}, "min_size (5) is greater than max_size (3)"),
        ({"min_size": 4, "desired": 2}, "desired (2) is less than min_size (4)"),
        ({"max_size": 4, "desired": 6}, "desired (6) is greater than max_size (4)"),
        ({"cron": "0 8 * *", "min_size": 1},
         "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ({"cron": "0 8 * * 1-8", "min_size": 1}, "day-of-week field '1-8': 8 is out of range 0-7"),
        ({"duration": "0s", "min_size": 1}, "must be more than 0s (e.g. 10h)"),
        ({"duration": "32d", "min_size": 1}, "must be at most 31d, got 768h"),
        ({"duration": "soon", "min_size": 1}, "must be a duration like 60s, got 'soon'"),
        ({"name": "", "min_size": 1}, "String should have at least 1 character"),
        ({"name": "office hours", "min_size": 1}, "String should match pattern '^[A-Za-z0-9_.-]+$'"),
        ({"min_size": -1}, "Input should be greater than or equal to 0"),
        ({"desired": 1, "extra": 2}, "Extra inputs are not permitted"),
    ],
    ids=["sets-nothing", "min-above-max", "desired-below-min", "desired-above-max", "cron-field-count",
         "cron-out-of-range", "zero-duration", "too-long", "bad-duration", "empty-name", "name-with-space",
         "negative-size", "unknown-key"],
)
def test_window_validation_errors(data: dict[str, Any], message: str) -> None:
    base = {"name": "w", "cron": "0 8 * * *", "duration": "1h"}
    with pytest.raises(ValidationError) as info:
        ScheduleWindow.model_validate({**base, **data})
    assert message in str(info.value)


def test_window_at_the_limits_is_valid() -> None:
    w = ScheduleWindow.model_validate({"name": "a", "cron": "@daily", "duration": "31d", "min_size": 3,
                                       "max_size": 3, "desired": 3})
    assert w.duration == 31 * 86400


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "Europe/Berln"}, "unknown time zone 'Europe/Berln' (an IANA name such as Europe/Berlin or UTC)"),
        ({"timezone": ""}, "unknown time zone '' (an IANA name such as Europe/Berlin or UTC)"),
        ({"timezone": "Europe"}, "unknown time zone 'Europe' (an IANA name such as Europe/Berlin or UTC)"),
        ({"timezone": "../etc"}, "unknown time zone '../etc' (an IANA name such as Europe/Berlin or UTC)"),
        ({"windows": []}, "List should have at least 1 item"),
        ({"windows": [{"name": "a", "cron": "@daily", "duration": "1h", "min_size": 1},
                      {"name": "b", "cron": "@daily", "duration": "1h", "min_size": 1},
                      {"name": "a", "cron": "@hourly", "duration": "1h", "min_size": 2}]},
         "window name 'a' is used twice"),
    ],
    ids=["misspelt-zone", "empty-zone", "zone-directory", "zone-path", "no-windows", "duplicate-name"],
)
def test_schedule_validation_errors(data: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"windows": [{"name": "a", "cron": "@daily", "duration": "1h", "min_size": 1}]}
    with pytest.raises(ValidationError) as info:
        Schedule.model_validate({**base, **data})
    assert message in str(info.value)


# --- decide.schedules: active_windows ---------------------------------------------------------------------

OFFICE = window("office", "0 8 * * *", "10h", min_size=4)
WEEKEND = window("weekend", "0 22 * * 5", "60h", max_size=2)
GAP = window("gap", "30 2 * * *", "1h", min_size=2)            # 02:30 does not exist on 2026-03-29
FOLD = window("fold", "50 2 * * *", "1h", min_size=2)          # 02:50 happens twice on 2026-10-25


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("w", "now", "opened", "closes"),
    [
        (OFFICE, _utc(2026, 3, 28, 7, 0), _utc(2026, 3, 28, 7, 0), _utc(2026, 3, 28, 17, 0)),     # CET
        (OFFICE, _utc(2026, 3, 28, 6, 59), None, None),
        (OFFICE, _utc(2026, 3, 28, 17, 0), None, None),                                         # closes_at excluded
        (OFFICE, _utc(2026, 3, 29, 6, 0), _utc(2026, 3, 29, 6, 0), _utc(2026, 3, 29, 16, 0)),     # CEST
        (OFFICE, _utc(2026, 3, 29, 6, 59), _utc(2026, 3, 29, 6, 0), _utc(2026, 3, 29, 16, 0)),
        (OFFICE, _utc(2026, 3, 29, 16, 0), None, None),
        (OFFICE, _utc(2026, 10, 25, 6, 30), None, None),                                        # 07:30 CET
        (OFFICE, _utc(2026, 10, 25, 7, 0), _utc(2026, 10, 25, 7, 0), _utc(2026, 10, 25, 17, 0)),  # CET again
        (GAP, _utc(2026, 3, 29, 1, 10), None, None),                                            # 03:10 CEST
        (GAP, _utc(2026, 3, 29, 1, 30), _utc(2026, 3, 29, 1, 30), _utc(2026, 3, 29, 2, 30)),      # 02:30 → 03:30
        (GAP, _utc(2026, 3, 28, 1, 45), _utc(2026, 3, 28, 1, 30), _utc(2026, 3, 28, 2, 30)),      # day before
        (FOLD, _utc(2026, 10, 25, 0, 55), _utc(2026, 10, 25, 0, 50), _utc(2026, 10, 25, 1, 50)),  # first 02:50
        (FOLD, _utc(2026, 10, 25, 1, 10), _utc(2026, 10, 25, 0, 50), _utc(2026, 10, 25, 1, 50)),  # 02:10, 2nd time
        (FOLD, _utc(2026, 10, 25, 1, 50), None, None),                                          # second 02:50: no
    ],
    ids=["cet-opens", "cet-before", "cet-closed", "cest-opens-an-hour-earlier-utc", "cest-open",
         "cest-closed", "fall-back-before", "fall-back-opens", "gap-not-yet", "gap-opens-after-gap",
         "gap-normal-day", "fold-first-occurrence", "fold-repeated-hour-still-open", "fold-opens-once"],
)
def test_active_windows_across_dst(w: ScheduleWindow, now: datetime, opened: datetime | None,
                                   closes: datetime | None) -> None:
    active = active_windows(berlin(w), now)
    if opened is None or closes is None:
        assert active == []
    else:
        assert active == [ActiveWindow(window=w, index=0, opened_at=opened, closes_at=closes)]
        assert active[0].opened_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (datetime(2026, 6, 5, 21, 59, tzinfo=BERLIN), False),   # Friday before 22:00
        (datetime(2026, 6, 5, 22, 0, tzinfo=BERLIN), True),
        (datetime(2026, 6, 6, 0, 30, tzinfo=BERLIN), True),     # past midnight
        (datetime(2026, 6, 7, 9, 0, tzinfo=BERLIN), True),      # Sunday morning
        (datetime(2026, 6, 8, 9, 59, tzinfo=BERLIN), True),     # Monday, 59h59m after opening
        (datetime(2026, 6, 8, 10, 1, tzinfo=BERLIN), False),
        (datetime(2026, 6, 8, 8, 0, tzinfo=ZoneInfo("America/New_York")), False),  # 14:00 Berlin
    ],
    ids=["friday-before", "friday-opens", "after-midnight", "sunday", "monday-last-minute", "monday-after",
         "now-in-another-zone"],
)
def test_window_over_midnight_and_weekend(now: datetime, active: bool) -> None:
    found = active_windows(berlin(WEEKEND), now)
    assert bool(found) is active
    if found:
        assert found[0].opened_at == datetime(2026, 6, 5, 20, 0, tzinfo=UTC)
        assert found[0].closes_at == datetime(2026, 6, 8, 8, 0, tzinfo=UTC)
        assert found[0].key == "weekend@2026-06-05T20:00:00+00:00"


def test_latest_opening_wins_when_duration_exceeds_period() -> None:
    hourly = window("h", "@hourly", "3h", min_size=1)
    [found] = active_windows(Schedule(windows=[hourly]), _utc(2026, 6, 1, 12, 20))
    assert (found.opened_at, found.closes_at) == (_utc(2026, 6, 1, 12, 0), _utc(2026, 6, 1, 15, 0))


def test_active_windows_sorted_by_index_and_naive_now_rejected() -> None:
    schedule = berlin(window("b", "@daily", "1d", max_size=9), OFFICE, window("c", "0 22 * * *", "1h", min_size=1))
    found = active_windows(schedule, datetime(2026, 6, 1, 12, 0, tzinfo=BERLIN))
    assert [(a.index, a.window.name) for a in found] == [(0, "b"), (1, "office")]
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        active_windows(schedule, datetime(2026, 6, 1, 12, 0))


# --- effective_bounds / scheduled_desired -----------------------------------------------------------------

T0 = _utc(2026, 6, 1, 8, 0)


def _active(index: int, opened: datetime = T0, **sizes: int) -> ActiveWindow:
    w = window(f"w{index}", "@hourly", "1h", **sizes)
    return ActiveWindow(window=w, index=index, opened_at=opened, closes_at=opened)


@pytest.mark.parametrize(
    ("active", "expected"),
    [
        ([], (1, 10)),
        ([_active(0, min_size=4)], (4, 10)),
        ([_active(0, max_size=6)], (1, 6)),
        ([_active(0, min_size=2, max_size=3)], (2, 3)),
        ([_active(0, desired=7)], (1, 10)),
        ([_active(0, min_size=4), _active(1, min_size=2)], (2, 10)),
        ([_active(1, min_size=2), _active(0, min_size=4)], (2, 10)),
        ([_active(0, min_size=5), _active(1, max_size=3)], (3, 3)),
        ([_active(0, max_size=3), _active(1, min_size=5)], (5, 5)),
        ([_active(0, min_size=12)], (12, 12)),
        ([_active(0, max_size=0)], (0, 0)),
        ([_active(0, min_size=6, max_size=8), _active(1, max_size=4), _active(2, min_size=2)], (2, 4)),
    ],
    ids=["none", "min", "max", "both", "desired-only", "later-min-wins", "index-order-not-list-order",
         "later-max-below-min-moves-min", "later-min-above-max-moves-max", "min-above-base-max",
         "max-below-base-min", "three-windows"],
)
def test_effective_bounds(active: list[ActiveWindow], expected: tuple[int, int]) -> None:
    result = effective_bounds(Bounds(min_size=1, max_size=10), active)
    assert isinstance(result, Bounds)
    assert (result.min_size, result.max_size) == expected


@pytest.mark.parametrize(
    ("active", "expected"),
    [
        ([], None),
        ([_active(0, min_size=3)], None),
        ([_active(0, desired=5)], (0, 5)),
        ([_active(0, desired=5), _active(1, _utc(2026, 6, 1, 7, 0), desired=3)], (0, 5)),
        ([_active(1, desired=5), _active(0, _utc(2026, 6, 1, 9, 0), desired=3)], (0, 3)),
        ([_active(0, desired=5), _active(1, desired=3), _active(2, min_size=1)], (1, 3)),
        ([_active(2, desired=5), _active(1, desired=3)], (2, 5)),
    ],
    ids=["none", "no-desired", "one", "most-recent-opening", "most-recent-lower-index", "tie-higher-index",
         "tie-any-order"],
)
def test_scheduled_desired(active: list[ActiveWindow], expected: tuple[int, int] | None) -> None:
    result = scheduled_desired(active)
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert (result[0].index, result[1]) == expected


# --- next_change ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("windows", "now", "expected"),
    [
        ([window("o", "0 8 * * 1-5")], datetime(2026, 6, 6, 10, 0, tzinfo=BERLIN),
         datetime(2026, 6, 8, 6, 0, tzinfo=UTC)),                                      # Sat → Mon 08:00
        ([window("o", "0 8 * * 1-5")], datetime(2026, 6, 3, 9, 0, tzinfo=BERLIN),
         datetime(2026, 6, 3, 16, 0, tzinfo=UTC)),                                     # open until 18:00
        ([window("o", "0 8 * * 1-5"), window("n", "0 12 * * *", "1h", max_size=3)],
         datetime(2026, 6, 3, 9, 0, tzinfo=BERLIN), datetime(2026, 6, 3, 10, 0, tzinfo=UTC)),
        ([OFFICE], _utc(2026, 3, 29, 5, 0), _utc(2026, 3, 29, 6, 0)),                      # into summer time
        ([FOLD], _utc(2026, 10, 25, 1, 10), _utc(2026, 10, 25, 1, 50)),                  # the open one closes
        ([FOLD], _utc(2026, 10, 25, 1, 55), _utc(2026, 10, 26, 1, 50)),                  # not the 2nd 02:50
        ([window("o", "0 3 * * *", "1h")], _utc(2026, 10, 25, 0, 55), _utc(2026, 10, 25, 2, 0)),
        ([window("x", "0 0 31 2 *")], _utc(2026, 6, 1), None),
    ],
    ids=["next-opening", "active-closes", "earliest-of-several", "dst-spring", "fold-close",
         "fold-next-day", "after-fold", "never"],
)
def test_next_change(windows: list[ScheduleWindow], now: datetime, expected: datetime | None) -> None:
    assert next_change(berlin(*windows), now) == expected


# --- cross-check around DST changes against enumerating every wall-clock minute ----------------------------


def _openings(w: ScheduleWindow, first: datetime, last: datetime) -> list[datetime]:
    """Every opening (aware UTC) of ``w`` whose wall time (Berlin, fold=0) lies in [first, last]."""
    out, minute = [], first
    while minute <= last:
        if w.expr.matches(minute):
            out.append(minute.replace(tzinfo=BERLIN, fold=0).astimezone(UTC))
        minute += timedelta(minutes=1)
    return out


@pytest.mark.parametrize(
    "cron", ["*/20 1-3 * * *", "50 2 * * *", "0 2,3 * * *", "10,50 2-3 * * *", "* 2 * * *"],
    ids=["every-20-at-night", "in-the-changed-hour", "both-hours", "out-of-order-minutes", "every-minute"],
)
@pytest.mark.parametrize("day", [datetime(2026, 3, 29), datetime(2026, 10, 25)], ids=["spring", "autumn"])
def test_active_and_next_match_enumeration_around_dst(cron: str, day: datetime) -> None:
    w = window("x", cron, "40m", min_size=1)
    schedule = berlin(w)
    start = day.replace(tzinfo=UTC) - timedelta(hours=2)
    for step in range(0, 6 * 60, 5):
        now = start + timedelta(minutes=step)
        wall = now.astimezone(BERLIN).replace(tzinfo=None)
        openings = _openings(w, wall - timedelta(hours=5), wall + timedelta(hours=28))
        last = max((t for t in openings if t <= now), default=None)
        upcoming = min(t for t in openings if t > now)
        found = active_windows(schedule, now)
        if last is not None and now < last + timedelta(minutes=40):
            assert [(a.opened_at, a.closes_at) for a in found] == [(last, last + timedelta(minutes=40))], now
            assert next_change(schedule, now) == min(upcoming, last + timedelta(minutes=40)), now
        else:
            assert found == [], now
            assert next_change(schedule, now) == upcoming, now
