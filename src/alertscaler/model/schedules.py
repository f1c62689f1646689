"""Scheduled windows as config values: "weekdays 08:00 Europe/Berlin for 10h: min_size 4".

A ``Schedule`` is a time zone and named ``ScheduleWindow`` s; each window opens when its ``cron`` fires
(in the schedule's zone) and stays open for ``duration``, overriding the group's min_size / max_size
while open and asking once per opening for ``desired``. Validation only: which windows are open and
what they change is decided in ``decide.schedules``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alertscaler.model.cron import CronExpr
from alertscaler.model.durations import Duration, format_duration

MAX_WINDOW_DURATION = 31 * 86400.0
"""Longest window (seconds): also bounds how far back ``decide.schedules`` looks for its opening."""


@lru_cache(maxsize=1024)
def _parse_cron(text: str) -> CronExpr:
    """Parsed once per distinct text: a CronExpr is an immutable value, safe to share."""
    return CronExpr.parse(text)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CronWindow(_Frozen):
    """A named window that opens when ``cron`` fires (in its list's time zone) and stays open ``duration``:
    the part a schedule's window and a change freeze's window share (``model.approvals.FreezeWindow``)."""

    EXAMPLE_DURATION: ClassVar[str] = "10h"  # named in the error for a duration that is not more than 0s

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    cron: str
    duration: Duration

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        _parse_cron(value)  # raises ValueError naming the field and the bad part
        return value

    @field_validator("duration")
    @classmethod
    def _valid_duration(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"must be more than 0s (e.g. {cls.EXAMPLE_DURATION})")
        if value > MAX_WINDOW_DURATION:
            raise ValueError(f"must be at most 31d, got {format_duration(value)}")
        return value

    @property
    def expr(self) -> CronExpr:
        return _parse_cron(self.cron)


class ZonedWindows(_Frozen):
    """Windows (a subclass declares ``windows``, at least one, names unique) read in ``timezone``, an IANA name:
    what ``Schedule`` and a change freeze (``model.approvals.ChangeFreeze``) share."""

    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone '{value}' (an IANA name such as Europe/Berlin or UTC)") from None
        return value

    @field_validator("windows", check_fields=False)
    @classmethod
    def _unique_names(cls, value: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for window in value:
            if window.name in seen:
                raise ValueError(f"window name '{window.name}' is used twice")
            seen.add(window.name)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class ScheduleWindow(CronWindow):
    """One named window: opens when ``cron`` fires, stays open ``duration``, and sets at least one of
    ``min_size`` / ``max_size`` (overrides while open) and ``desired`` (applied once per opening)."""

    min_size: Annotated[int, Field(ge=0)] | None = None
    max_size: Annotated[int, Field(ge=0)] | None = None
    desired: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleWindow:
        low, high, desired = self.min_size, self.max_size, self.desired
        if low is None and high is None and desired is None:
            raise ValueError("a window must set min_size, max_size or desired")
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_size ({low}) is greater than max_size ({high})")
        if desired is not None and low is not None and desired < low:
            raise ValueError(f"desired ({desired}) is less than min_size ({low})")
        if desired is not None and high is not None and desired > high:
            raise ValueError(f"desired ({desired}) is greater than max_size ({high})")
        return self


class Schedule(ZonedWindows):
    """Windows whose cron expressions are read in ``timezone`` (an IANA name)."""

    windows: Annotated[list[ScheduleWindow], Field(min_length=1)]
