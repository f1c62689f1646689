"""The service's log formats: ``text`` (people), ``logfmt`` (terminals and Loki/grep: ``key=value``), ``json``
(one object per line, for log shippers). Every format stamps UTC with milliseconds and the zone
(``2026-12-07T23:41:02.123Z``), and puts a record's structured fields (``extra=`` of the logging call, e.g. the
decision line's group, policy, from, to, outcome, reason, trigger) beside the message as their own keys, never
only inside it. ``setup_logging`` installs one of them on the root logger.

Called by ``cli`` (``serve --log-format``) and by ``service``; no dependency beyond the standard library.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "logfmt", "json")
# attributes every LogRecord has: anything else on a record came from ``extra=``
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime",
                                                                                    "taskName"}


def timestamp(record: logging.LogRecord) -> str:
    """``record``'s time in UTC, RFC 3339 with milliseconds and ``Z``."""
    when = datetime.fromtimestamp(record.created, UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields the logging call passed with ``extra=``, in their order."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def _logfmt_value(value: Any) -> str:
    text = "" if value is None else str(value)
    if text and not any(c in text for c in ' "=\\') and text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False)  # quoted, with \" \\ \n escaped


class TextFormatter(logging.Formatter):
    """``2026-12-07T23:41:02.123Z INFO alertscaler.act.recording: message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        extra = fields(record)
        if extra:
            line += " " + " ".join(f"{k}={_logfmt_value(v)}" for k, v in extra.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class LogfmtFormatter(logging.Formatter):
    """``ts=2026-12-07T23:41:02.123Z level=info logger=... msg="..." key=value ...`` (one line; a traceback is the
    quoted ``exc`` field)."""

    def format(self, record: logging.LogRecord) -> str:
        pairs: dict[str, Any] = {"ts": timestamp(record), "level": record.levelname.lower(), "logger": record.name,
                                 "msg": record.getMessage(), **fields(record)}
        if record.exc_info:
            pairs["exc"] = self.formatException(record.exc_info)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in pairs.items())


class JsonFormatter(logging.Formatter):
    """``{"ts": "2026-12-07T23:41:02.123Z", "level": "info", "logger": ..., "msg": ..., <fields>}``"""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": timestamp(record), "level": record.levelname.lower(), "logger": record.name,
                               "msg": record.getMessage()}
        for key, value in fields(record).items():
            out.setdefault(key, value)  # a field never overwrites ts, level, logger or msg
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of ``fmt`` (one of ``FORMATS``)."""
    try:
        return {"text": TextFormatter, "logfmt": LogfmtFormatter, "json": JsonFormatter}[fmt]()
    except KeyError:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}") from None


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Log ``level`` and above to stderr in ``fmt``; quiet the per-request chatter of httpx and alembic."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "alembic"):  # one line per HTTP call / migration plugin: not decisions
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
