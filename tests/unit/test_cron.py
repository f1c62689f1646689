"""Cron expressions: syntax, error messages, Vixie day rule, previous / next_after; table-driven."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from alertscaler.model.cron import CronExpr

ALL_MINUTES = frozenset(range(60))
WEEKDAYS = frozenset({1, 2, 3, 4, 5})


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("* * * * *", "minutes", ALL_MINUTES),
        ("7 * * * *", "minutes", {7}),
        ("10-13 * * * *", "minutes", {10, 11, 12, 13}),
        ("1,5,10-12 * * * *", "minutes", {1, 5, 10, 11, 12}),
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("10-30/10 * * * *", "minutes", {10, 20, 30}),
        ("50/4 * * * *", "minutes", {50, 54, 58}),
        ("0 */6 * * *", "hours", {0, 6, 12, 18}),
        ("0 23 * * *", "hours", {23}),
        ("0 0 1,15,31 * *", "days_of_month", {1, 15, 31}),
        ("0 0 */10 * *", "days_of_month", {1, 11, 21, 31}),
        ("0 0 * jan,JUL-Sep *", "months", {1, 7, 8, 9}),
        ("0 0 * 2/5 *", "months", {2, 7, 12}),
        ("0 0 * * mon-fri", "days_of_week", WEEKDAYS),
        ("0 0 * * SUN,sat", "days_of_week", {0, 6}),
        ("0 0 * * 7", "days_of_week", {0}),
        ("0 0 * * 5-7", "days_of_week", {5, 6, 0}),
        ("0 0 * * *", "days_of_week", {0, 1, 2, 3, 4, 5, 6}),
        ("0 0 * * */2", "days_of_week", {0, 2, 4, 6}),
        ("0 0 * * 1-5/2", "days_of_week", {1, 3, 5}),
        ("  0   0 *\t* 1  ", "days_of_week", {1}),
    ],
    ids=["star", "single", "range", "list", "star-step", "range-step", "start-step", "hour-step", "hour",
         "dom-list", "dom-step", "month-names-mixed-case", "month-start-step", "dow-name-range",
         "dow-names-upper", "dow-7-is-sunday", "dow-range-to-7", "dow-star", "dow-step", "dow-range-step",
         "extra-whitespace"],
)
def test_parse_forms(text: str, field: str, expected: set[int]) -> None:
    assert getattr(CronExpr.parse(text), field) == frozenset(expected)


@pytest.mark.parametrize(
    ("macro", "same_as"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
    ids=["yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly", "upper-case"],
)
def test_macros(macro: str, same_as: str) -> None:
    parsed, plain = CronExpr.parse(macro), CronExpr.parse(same_as)
    assert parsed.text == macro
    assert (parsed.minutes, parsed.hours, parsed.days_of_month, parsed.months, parsed.days_of_week) == (
        plain.minutes, plain.hours, plain.days_of_month, plain.months, plain.days_of_week)
    assert (parsed.dom_restricted, parsed.dow_restricted) == (plain.dom_restricted, plain.dow_restricted)


@pytest.mark.parametrize(
    ("text", "dom", "dow"),
    [("0 0 * * *", False, False), ("0 0 1 * *", True, False), ("0 0 * * 1", False, True),
     ("0 0 1 * 1", True, True), ("0 0 */2 * *", False, False), ("0 0 1-31 * 0-6", True, True)],
    ids=["neither", "dom", "dow", "both", "star-step-is-unrestricted", "full-range-is-restricted"],
)
def test_restricted_flags(text: str, dom: bool, dow: bool) -> None:
    expr = CronExpr.parse(text)
    assert (expr.dom_restricted, expr.dow_restricted) == (dom, dow)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 8 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 8 * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"),
        ("", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"),
        ("60 * * * *", "minute field '60': 60 is out of range 0-59"),
        ("0 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
        ("0 0 * 13 *", "month field '13': 13 is out of range 1-12"),
        ("0 0 * * 1-8", "day-of-week field '1-8': 8 is out of range 0-7"),
        ("*/0 * * * *", "minute field '*/0': step must be at least 1"),
        ("*/x * * * *", "minute field '*/x': step 'x' is not a number"),
        ("1-5/ * * * *", "minute field '1-5/': step '' is not a number"),
        ("0 x * * *", "hour field 'x': not a number or name"),
        ("0 1-x * * *", "hour field '1-x': 'x' is not a number or name"),
        ("0 0 * foo *", "month field 'foo': not a number or name"),
        ("0 0 * * monday", "day-of-week field 'monday': not a number or name"),
        ("0 0 * * mon-foo", "day-of-week field 'mon-foo': 'foo' is not a number or name"),
        ("0 0 * sun *", "month field 'sun': not a number or name"),
        ("5-1 * * * *", "minute field '5-1': range start 5 is after its end 1"),
        ("0 0 * * fri-mon", "day-of-week field 'fri-mon': range start 5 is after its end 1"),
        ("-1 * * * *", "minute field '-1': a range needs a start and an end, e.g. 1-5"),
        ("1- * * * *", "minute field '1-': a range needs a start and an end, e.g. 1-5"),
        ("1,,2 * * * *", "minute field '1,,2': empty item in list"),
        ("@often", "unknown macro '@often' (one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, "
                   "@hourly)"),
    ],
    ids=["4-fields", "6-fields", "empty", "minute-range", "hour-range", "dom-zero", "month-13", "dow-8",
         "step-zero", "step-not-number", "step-empty", "hour-word", "range-end-word", "month-bad-name",
         "dow-long-name", "dow-range-bad-name", "day-name-in-month", "reversed", "reversed-names",
         "negative", "open-range", "empty-list-item", "unknown-macro"],
)
def test_parse_errors_name_field_and_part(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        CronExpr.parse(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "at", "hit"),
    [
        ("0 0 13 * 5", datetime(2026, 2, 13), True),       # Friday the 13th: both
        ("0 0 13 * 5", datetime(2026, 2, 20), True),       # a Friday, not the 13th: OR
        ("0 0 13 * 5", datetime(2026, 4, 13), True),       # the 13th, a Monday: OR
        ("0 0 13 * 5", datetime(2026, 4, 14), False),      # neither
        ("0 0 13 * *", datetime(2026, 4, 13), True),       # dow unrestricted: dom alone decides
        ("0 0 13 * *", datetime(2026, 2, 20), False),
        ("0 0 * * 5", datetime(2026, 2, 20), True),        # dom unrestricted: dow alone decides
        ("0 0 * * 5", datetime(2026, 4, 13), False),
        ("0 0 */2 * 5", datetime(2026, 2, 20), False),     # '*/2' is unrestricted (Vixie): AND, 20 is even
        ("0 0 */2 * 5", datetime(2026, 2, 13), True),      # odd day and Friday
        ("0 0 1 jan 1", datetime(2026, 6, 1), False),      # OR of days, but the month must still match
        ("0 0 1 jan 1", datetime(2026, 1, 5), True),       # a Monday in January
        ("30 8 * * *", datetime(2026, 1, 5, 8, 30, 59, tzinfo=UTC), True),  # seconds and tzinfo ignored
        ("30 8 * * *", datetime(2026, 1, 5, 8, 31), False),
        ("0 0 * * 7", datetime(2026, 1, 4), True),         # 2026-01-04 is a Sunday
    ],
    ids=["both", "dow-only-or", "dom-only-or", "neither", "dom-alone", "dom-alone-miss", "dow-alone",
         "dow-alone-miss", "star-step-and-miss", "star-step-and-hit", "month-still-applies", "month-and-dow",
         "seconds-tz-ignored", "minute-miss", "sunday-7"],
)
def test_matches_vixie_day_rule(text: str, at: datetime, hit: bool) -> None:
    assert CronExpr.parse(text).matches(at) is hit


@pytest.mark.parametrize(
    ("text", "at", "expected"),
    [
        ("0 8 * * 1-5", datetime(2026, 6, 6, 10, 0), datetime(2026, 6, 5, 8, 0)),          # Sat → Fri
        ("0 8 * * 1-5", datetime(2026, 6, 5, 8, 0, 30), datetime(2026, 6, 5, 8, 0)),       # same minute
        ("0 8 * * 1-5", datetime(2026, 6, 5, 7, 59), datetime(2026, 6, 4, 8, 0)),
        ("*/15 9-17 * * *", datetime(2026, 6, 5, 12, 44), datetime(2026, 6, 5, 12, 30)),
        ("*/15 9-17 * * *", datetime(2026, 6, 5, 8, 0), datetime(2026, 6, 4, 17, 45)),
        ("0 0 1 * *", datetime(2026, 1, 1, 0, 0), datetime(2026, 1, 1, 0, 0)),
        ("0 0 1 * *", datetime(2025, 12, 31, 23, 59), datetime(2025, 12, 1, 0, 0)),
        ("59 23 31 12 *", datetime(2026, 12, 31, 23, 58), datetime(2025, 12, 31, 23, 59)),  # year end
        ("0 12 31 * *", datetime(2026, 5, 1, 0, 0), datetime(2026, 3, 31, 12, 0)),          # skips April
        ("0 0 29 2 *", datetime(2024, 3, 1, 0, 0), datetime(2024, 2, 29, 0, 0)),
        ("@hourly", datetime(2026, 1, 1, 0, 30), datetime(2026, 1, 1, 0, 0)),
        ("@hourly", datetime(2026, 1, 1, 0, 0), datetime(2026, 1, 1, 0, 0)),
        ("0 0 13 * 5", datetime(2026, 4, 14, 0, 0), datetime(2026, 4, 13, 0, 0)),           # OR day
        ("@weekly", datetime(2026, 1, 3, 23, 59), datetime(2025, 12, 28, 0, 0)),
    ],
    ids=["weekday-from-saturday", "same-minute-with-seconds", "just-before", "within-day", "previous-day",
         "exactly-at", "month-end", "year-end", "skips-short-month", "feb-29-leap", "hourly", "hourly-on-the-hour",
         "vixie-or", "weekly-across-year"],
)
def test_previous(text: str, at: datetime, expected: datetime) -> None:
    assert CronExpr.parse(text).previous(at) == expected


def test_previous_feb_29_needs_a_long_enough_limit() -> None:
    expr = CronExpr.parse("0 0 29 2 *")
    assert expr.previous(datetime(2026, 6, 1)) is None  # default limit: 400 days
    assert expr.previous(datetime(2026, 6, 1), limit_days=1000) == datetime(2024, 2, 29)
    assert expr.next_after(datetime(2026, 6, 1)) is None
    assert expr.next_after(datetime(2026, 6, 1), limit_days=1000) == datetime(2028, 2, 29)


@pytest.mark.parametrize(
    ("text", "at", "expected"),
    [
        ("0 8 * * 1-5", datetime(2026, 6, 5, 10, 0), datetime(2026, 6, 8, 8, 0)),           # Fri → Mon
        ("0 8 * * 1-5", datetime(2026, 6, 5, 8, 0), datetime(2026, 6, 8, 8, 0)),            # strictly after
        ("0 8 * * 1-5", datetime(2026, 6, 5, 7, 59, 59), datetime(2026, 6, 5, 8, 0)),
        ("*/15 9-17 * * *", datetime(2026, 6, 5, 17, 45), datetime(2026, 6, 6, 9, 0)),
        ("0 0 1 * *", datetime(2026, 1, 31, 12, 0), datetime(2026, 2, 1, 0, 0)),
        ("0 0 1 1 *", datetime(2026, 12, 31, 23, 59), datetime(2027, 1, 1, 0, 0)),           # year end
        ("0 12 31 * *", datetime(2026, 3, 31, 12, 0), datetime(2026, 5, 31, 12, 0)),         # skips April
        ("0 0 29 2 *", datetime(2027, 6, 1), datetime(2028, 2, 29, 0, 0)),
        ("@hourly", datetime(2026, 12, 31, 23, 0), datetime(2027, 1, 1, 0, 0)),
        ("0 0 13 * 5", datetime(2026, 2, 14, 0, 0), datetime(2026, 2, 20, 0, 0)),            # OR day
    ],
    ids=["weekday-from-friday", "strictly-after", "seconds", "next-day", "month-end", "year-end",
         "skips-short-month", "feb-29", "hourly-year-end", "vixie-or"],
)
def test_next_after(text: str, at: datetime, expected: datetime) -> None:
    assert CronExpr.parse(text).next_after(at) == expected


@pytest.mark.parametrize(
    "method", ["previous", "next_after"], ids=["previous", "next_after"],
)
def test_never_matching_within_limit_is_none(method: str) -> None:
    expr = CronExpr.parse("0 0 31 2 *")
    assert getattr(expr, method)(datetime(2026, 6, 1, 12, 0)) is None
    assert getattr(expr, method)(datetime(2026, 6, 1, 12, 0), limit_days=3000) is None


def test_results_are_naive_whole_minutes() -> None:
    expr = CronExpr.parse("* * * * *")
    at = datetime(2026, 6, 1, 12, 0, 42, 123, tzinfo=UTC)
    before, after = expr.previous(at), expr.next_after(at)
    assert before == datetime(2026, 6, 1, 12, 0)
    assert after == datetime(2026, 6, 1, 12, 1)
    assert before.tzinfo is None
    assert after.tzinfo is None


def _brute_previous(expr: CronExpr, at: datetime, limit_days: int) -> datetime | None:
    minute = at.replace(second=0, microsecond=0)
    earliest = datetime.combine(at.date() - timedelta(days=limit_days), datetime.min.time())
    while minute >= earliest:
        if expr.matches(minute):
            return minute
        minute -= timedelta(minutes=1)
    return None


def _brute_next(expr: CronExpr, at: datetime, limit_days: int) -> datetime | None:
    minute = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    latest = datetime.combine(minute.date() + timedelta(days=limit_days), datetime.max.time())
    while minute <= latest:
        if expr.matches(minute):
            return minute
        minute += timedelta(minutes=1)
    return None


@pytest.mark.parametrize(
    ("text", "limit_days"),
    [("*/7 9-17 * * 1-5", 3), ("5,35 */3 1-7 * sun", 2), ("0 22 * * 5", 2), ("0 0 1,15 * *", 1),
     ("* * * * *", 0), ("59 23 28-31 * *", 2)],
    ids=["workday-every-7", "dom-or-dow", "weekly", "twice-a-month", "every-minute", "month-ends"],
)
def test_previous_and_next_match_minute_by_minute_search(text: str, limit_days: int) -> None:
    expr = CronExpr.parse(text)
    rng = random.Random(7)
    start = datetime(2023, 12, 20)
    for _ in range(200):
        at = start + timedelta(seconds=rng.randrange(3 * 365 * 86400))
        assert expr.previous(at, limit_days) == _brute_previous(expr, at, limit_days), at
        assert expr.next_after(at, limit_days) == _brute_next(expr, at, limit_days), at


def test_value_semantics() -> None:
    assert CronExpr.parse("0 8 * * 1-5") == CronExpr.parse("0 8 * * 1-5")
    assert str(CronExpr.parse("@daily")) == "@daily"
    assert len({CronExpr.parse("0 8 * * 1-5"), CronExpr.parse("0 8 * * 1-5")}) == 1
    assert CronExpr.parse("0 8 * * 1-5").day_matches(date(2026, 6, 6)) is False
