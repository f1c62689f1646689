"""Cron expressions as values: parsing the five-field syntax and finding matching minutes.

Owns the cron grammar (``*``, ``a``, ``a-b``, lists, steps, month/day names, ``@daily``-style macros),
Vixie cron's day-of-month / day-of-week rule, and the search for the previous / next matching minute.
Everything works on naive wall-clock datetimes and takes time as an argument: no clock, no time zones
(the caller converts to and from the schedule's zone). Called by ``model.schedules`` (to validate a
window's ``cron``) and ``decide.schedules`` (to find when windows opened and will open).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property

FIELDS = "minute hour day-of-month month day-of-week"

_MACROS: Mapping[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    name: i + 1
    for i, name in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
}
_DAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # highest value accepted in the text (7 for day-of-week)
    last: int  # highest value of ``*`` and of ``a/n`` (6 for day-of-week)
    names: Mapping[str, int]

    def error(self, part: str, problem: str) -> ValueError:
        return ValueError(f"{self.name} field '{part}': {problem}")

    def value(self, part: str, token: str) -> int:
        if token.isdigit():
            number = int(token)
            if not self.low <= number <= self.high:
                raise self.error(part, f"{number} is out of range {self.low}-{self.high}")
            return number
        if token.lower() in self.names:
            return self.names[token.lower()]
        if token == part:
            raise self.error(part, "not a number or name")
        raise self.error(part, f"'{token}' is not a number or name")

    def parse(self, text: str) -> frozenset[int]:
        values: set[int] = set()
        for part in text.split(","):
            if not part:
                raise self.error(text, "empty item in list")
            values.update(self._part(part))
        if self.name == "day-of-week":
            values = {v % 7 for v in values}  # 7 is Sunday too
        return frozenset(values)

    def _part(self, part: str) -> range:
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit():
                raise self.error(part, f"step '{step_text}' is not a number")
            step = int(step_text)
            if step < 1:
                raise self.error(part, "step must be at least 1")
        if base == "*":
            return range(self.low, self.last + 1, step)
        start_text, dash, end_text = base.partition("-")
        if dash:
            if not start_text or not end_text:
                raise self.error(part, "a range needs a start and an end, e.g. 1-5")
            start, end = self.value(part, start_text), self.value(part, end_text)
            if start > end:
                raise self.error(part, f"range start {start} is after its end {end}")
            return range(start, end + 1, step)
        start = self.value(part, base)
        return range(start, max(start, self.last) + 1, step) if slash else range(start, start + 1)


_MINUTE = _Field("minute", 0, 59, 59, {})
_HOUR = _Field("hour", 0, 23, 23, {})
_DOM = _Field("day-of-month", 1, 31, 31, {})
_MONTH = _Field("month", 1, 12, 12, _MONTHS)
_DOW = _Field("day-of-week", 0, 7, 6, _DAYS)


@dataclass(frozen=True)
class CronExpr:
    """A parsed five-field cron expression. ``days_of_week`` uses 0 = Sunday.

    ``dom_restricted`` / ``dow_restricted`` say whether day-of-month / day-of-week were restricted; as in
    Vixie cron a field that starts with ``*`` (``*``, ``*/2``) is not. When both are restricted a day
    matches if either matches (``0 0 1 * 1``: the 1st and every Monday); otherwise both must match.
    """

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    dom_restricted: bool
    dow_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        """Parse ``text``; raise ValueError naming the field and the bad part."""
        stripped = text.strip()
        spec = stripped
        if stripped.startswith("@"):
            if stripped.lower() not in _MACROS:
                raise ValueError(f"unknown macro '{stripped}' (one of {', '.join(_MACROS)})")
            spec = _MACROS[stripped.lower()]
        parts = spec.split()
        if len(parts) != 5:
            raise ValueError(f"expected 5 fields ({FIELDS}), got {len(parts)}")
        minute, hour, dom, month, dow = parts
        return cls(
            text=stripped,
            minutes=_MINUTE.parse(minute),
            hours=_HOUR.parse(hour),
            days_of_month=_DOM.parse(dom),
            months=_MONTH.parse(month),
            days_of_week=_DOW.parse(dow),
            dom_restricted=not dom.startswith("*"),
            dow_restricted=not dow.startswith("*"),
        )

    def __str__(self) -> str:
        return self.text

    @cached_property
    def _hours_desc(self) -> tuple[int, ...]:
        return tuple(sorted(self.hours, reverse=True))

    @cached_property
    def _minutes_desc(self) -> tuple[int, ...]:
        return tuple(sorted(self.minutes, reverse=True))

    def day_matches(self, day: date) -> bool:
        """Whether any minute of ``day`` can match (month, then Vixie's day-of-month / day-of-week rule)."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days_of_month
        dow = day.isoweekday() % 7 in self.days_of_week
        if self.dom_restricted and self.dow_restricted:
            return dom or dow
        return dom and dow

    def matches(self, at: datetime) -> bool:
        """Whether the wall-clock minute of ``at`` matches (tzinfo and seconds are ignored)."""
        return at.minute in self.minutes and at.hour in self.hours and self.day_matches(at.date())

    def _latest_in_day(self, hour: int, minute: int) -> time | None:
        """The latest matching time of day at or before ``hour:minute``."""
        for h in self._hours_desc:
            if h > hour:
                continue
            limit = minute if h == hour else 59
            for m in self._minutes_desc:
                if m <= limit:
                    return time(h, m)
        return None

    def _earliest_in_day(self, hour: int, minute: int) -> time | None:
        """The earliest matching time of day at or after ``hour:minute``."""
        for h in reversed(self._hours_desc):
            if h < hour:
                continue
            start = minute if h == hour else 0
            for m in reversed(self._minutes_desc):
                if m >= start:
                    return time(h, m)
        return None

    def previous(self, at: datetime, limit_days: int = 400) -> datetime | None:
        """The latest matching minute at or before ``at``, as a naive wall-clock datetime.

        Looks at the day of ``at`` and the ``limit_days`` days before it; None if nothing matches there.
        """
        start = at.replace(tzinfo=None, second=0, microsecond=0)
        day, earliest = start.date(), start.date() - timedelta(days=limit_days)
        hour, minute = start.hour, start.minute
        while day >= earliest:
            if day.month not in self.months:
                day = day.replace(day=1) - timedelta(days=1)  # last day of the month before
                hour, minute = 23, 59
                continue
            if self.day_matches(day):
                found = self._latest_in_day(hour, minute)
                if found is not None:
                    return datetime.combine(day, found)
            day -= timedelta(days=1)
            hour, minute = 23, 59
        return None

    def next_after(self, at: datetime, limit_days: int = 400) -> datetime | None:
        """The earliest matching minute strictly after ``at``, as a naive wall-clock datetime.

        Looks at the day of the minute after ``at`` and the ``limit_days`` days after it; None if nothing
        matches there.
        """
        start = at.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        day, latest = start.date(), start.date() + timedelta(days=limit_days)
        hour, minute = start.hour, start.minute
        while day <= latest:
            if day.month not in self.months:
                day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)  # first day of the next month
                hour, minute = 0, 0
                continue
            if self.day_matches(day):
                found = self._earliest_in_day(hour, minute)
                if found is not None:
                    return datetime.combine(day, found)
            day += timedelta(days=1)
            hour, minute = 0, 0
        return None
