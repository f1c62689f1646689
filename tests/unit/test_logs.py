"""The service's log formats (alertscaler.logs): UTC with milliseconds and Z in every format, structured fields
as keys (JSON), pairs (logfmt) or appended pairs (text); the decision line's fields (act.recording)."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from alertscaler.act.recording import _log as log_decision
from alertscaler.logs import FORMATS, formatter, setup_logging
from alertscaler.model.decisions import Outcome, Reason, Trigger
from alertscaler.store.base import NewDecision

WHEN = datetime(2026, 12, 7, 23, 41, 2, 123456, tzinfo=UTC)  # the record's time; the formats say 23:41:02.123Z


def record(extra: dict[str, object] | None = None, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    r = logging.LogRecord("alertscaler.test", logging.WARNING, __file__, 1, "hello %s", ("world",), exc_info)
    r.created = WHEN.timestamp()
    r.msecs = 123.456
    r.__dict__.update(extra or {})
    return r


def parse_logfmt(line: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        value = m.group(2)
        out[m.group(1)] = json.loads(value) if value.startswith('"') else value
    return out


def as_json(line: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(line)
    return data


PARSERS: dict[str, Callable[[str], dict[str, object]]] = {
    "json": as_json,
    "logfmt": lambda line: dict(parse_logfmt(line)),
}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("text", "2026-12-07T23:41:02.123Z WARNING alertscaler.test: hello world"),
        ("logfmt", "ts=2026-12-07T23:41:02.123Z level=warning logger=alertscaler.test msg=\"hello world\""),
        ("json", '{"ts": "2026-12-07T23:41:02.123Z", "level": "warning", "logger": "alertscaler.test", '
                 '"msg": "hello world"}'),
    ],
    ids=FORMATS,
)
def test_utc_milliseconds_and_zone(fmt: str, expected: str) -> None:
    assert formatter(fmt).format(record()) == expected


@pytest.mark.parametrize(
    ("fmt", "extra", "expected"),
    [
        ("json", {"group": "web", "to": 3}, {"group": "web", "to": 3, "msg": "hello world"}),
        ("json", {"level": "not me"}, {"level": "warning"}),  # a field never overwrites the fixed keys
        ("json", {"when": WHEN}, {"when": str(WHEN)}),  # anything not JSON: its str
        ("logfmt", {"group": "web", "to": 3}, {"group": "web", "to": "3", "msg": "hello world"}),
        ("logfmt", {"reason": 'a "quoted" = thing'}, {"reason": 'a "quoted" = thing'}),
        ("logfmt", {"empty": ""}, {"empty": ""}),
        ("logfmt", {"lines": "one\ntwo"}, {"lines": "one\ntwo"}),
    ],
    ids=["json-keys", "json-fixed-keys-kept", "json-not-serialisable", "logfmt-pairs", "logfmt-quoting", "logfmt-empty",
         "logfmt-newline"],
)
def test_fields_are_keys(fmt: str, extra: dict[str, object], expected: dict[str, object]) -> None:
    line = formatter(fmt).format(record(extra))
    assert "\n" not in line
    parsed = PARSERS[fmt](line)
    assert {k: parsed.get(k) for k in expected} == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_traceback_is_kept(fmt: str) -> None:
    line = formatter(fmt).format(record(exc=True))
    if fmt == "text":
        assert line.splitlines()[-1] == "ValueError: boom"
    else:
        assert "\n" not in line and "ValueError: boom" in str(PARSERS[fmt](line)["exc"])


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="text, logfmt, json"):
        formatter("xml")


@pytest.fixture
def captured() -> Iterator[Callable[[str], io.StringIO]]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def install(fmt: str) -> io.StringIO:
        setup_logging("info", fmt)
        stream = io.StringIO()
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        return stream

    yield install
    root.handlers[:], level = saved
    root.setLevel(level)


DECISION = NewDecision(group="web", policy="scale_out", trigger=Trigger.NOTIFICATION, outcome=Outcome.ACTED,
                       reason=Reason.SCALED, message="HighLoad: 1 -> 2", from_capacity=1, to_capacity=2,
                       decided_at=WHEN)
FIELDS = {"group": "web", "policy": "scale_out", "from": "1", "to": "2", "outcome": "acted", "reason": "scaled",
          "trigger": "notification"}


@pytest.mark.parametrize("fmt", ["json", "logfmt", "text"])
def test_the_decision_line(captured: Callable[[str], io.StringIO], fmt: str) -> None:
    stream = captured(fmt)
    log_decision(DECISION)
    (line,) = stream.getvalue().splitlines()
    if fmt == "text":
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO alertscaler\.act\.recording: "
                            r"decision: HighLoad: 1 -> 2 (.*)", line)
        assert " ".join(f"{k}={v}" for k, v in FIELDS.items()) in line
        return
    parsed = PARSERS[fmt](line)
    assert {k: parsed[k] for k in FIELDS} == FIELDS
    assert parsed["msg"] == "decision: HighLoad: 1 -> 2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(parsed["ts"]))
