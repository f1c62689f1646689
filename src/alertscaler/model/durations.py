"""Durations in Prometheus' syntax (``90s``, ``5m``, ``1h30m``), parsed to seconds. Used by config and model."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> float:
    """Return seconds. Accepts ``"60s"``, ``"1h30m"``, ``"250ms"`` or a non-negative number of seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 60s")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must be a duration like 60s (not negative)")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("must be a duration like 60s")
    text = value.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"must be a duration like 60s, got {value!r}")
    return total


def format_duration(seconds: float) -> str:
    """Shortest Prometheus duration for ``seconds`` (``90`` → ``1m30s``)."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    rest, out = int(seconds), ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out or "0s"


Duration = Annotated[float, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
"""A pydantic field type: seconds as float, written and read as ``60s``."""


def _at_least_one_second(seconds: float) -> float:
    if seconds < 1:
        raise ValueError("must be at least 1s")
    return seconds


Interval = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_at_least_one_second),
                     PlainSerializer(format_duration, return_type=str)]
"""A ``Duration`` of at least one second: how often a loop evaluates something."""


def _more_than_zero(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


PositiveDuration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_more_than_zero),
                             PlainSerializer(format_duration, return_type=str)]
"""A ``Duration`` longer than zero: timeouts, poll intervals."""
