"""Load traces for the simulator: a demand curve in requests per second over time.

Owns the CSV format the simulator reads (``timestamp,value``) and the pure helpers that cut, compress, smooth
and scale a trace. Called by ``sim.running`` (``Trace.rate_at``), the ``alertscaler simulate`` command and
``bench/decision_quality.py`` (``load_trace``, ``window``, ``compressed``, ``scaled_to_peak``).

The format, one row per sample (blank lines and ``#`` comments are skipped), columns separated by commas (or
semicolons, tabs, spaces: whichever the first line has):

* the first line may be a header: it is one when a field is neither a number nor a date-time;
* the VALUE column: the second of two, the only one of one, else the one named by ``column`` (a header name
  or a number, 1 = the first). The demand from that row until the next, in requests per second; under a
  header named ``count`` request COUNTS per row instead (like the WorldCup98 data: requests per minute),
  divided by the row's length in seconds. An empty value (or NaN, NA, null) is a gap: the previous value
  holds, and ``Trace.skipped`` counts them;
* the TIME column: one named like a time (timestamp, time, ts, period, date, epoch, ...), else the first
  column when it is not the value column. Seconds (a plain number: relative, or Unix time, which gives
  the trace dates; Unix milliseconds are recognised) or ISO 8601 date-times (``1998-06-29 00:00:00``,
  ``2024-05-01T12:00:00Z``), strictly increasing; gaps need not be even. A file without one (a column of
  values) needs ``stride``, the seconds between rows, which also makes the timestamps ignored;
* the last row lasts as long as the one before it, so a trace needs at least two rows;
* the file may be gzip-compressed (recognised by its content, not its name).

Errors are ``TraceError`` naming the file, the line and the problem.

Bundled traces (``alertscaler/data/``, each with its notice: ``notice_text(name)``): ``worldcup98`` (the 1998
World Cup web site, requests per minute, 1998-06-29 00:00 to 1998-07-02 23:59) and ``electricity``
(half-hourly electricity demand in England and Wales, 12 weeks from Monday 2000-06-05: daily and weekly
seasonality).
"""

from __future__ import annotations

import bisect
import gzip
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

__all__ = [
    "ATTRIBUTION",
    "BUNDLED",
    "ELECTRICITY",
    "WORLDCUP98",
    "Trace",
    "TraceError",
    "load_trace",
    "notice_text",
    "parse_trace",
]

WORLDCUP98 = "worldcup98"
ELECTRICITY = "electricity"
BUNDLED = {WORLDCUP98: "data/worldcup98-excerpt.csv.gz", ELECTRICITY: "data/electricity-halfhourly.csv.gz"}
_NOTICE = {WORLDCUP98: "data/WORLDCUP98-NOTICE.txt", ELECTRICITY: "data/ELECTRICITY-NOTICE.txt"}
#: the attribution printed wherever a bundled trace's results are shown
ATTRIBUTION = {
    WORLDCUP98: 'M. Arlitt and T. Jin, "1998 World Cup Web Site Access Logs", August 1998',
    ELECTRICITY: "J. W. Taylor (2003), J. Operational Research Society 54, 799-805; data via pmdarima 2.1.1 (MIT)",
}
_GZIP_MAGIC = b"\x1f\x8b"


class TraceError(ValueError):
    """A trace that cannot be read: the message names the source, the line and the problem."""


@dataclass(frozen=True)
class Trace:
    """Piecewise-constant demand: ``values[i]`` requests/s from ``offsets[i]`` to ``offsets[i + 1]`` (the last
    sample until ``end``). ``offsets`` are seconds from the trace's start; ``start`` is that start's date-time
    when the source had dates (None for relative timestamps); ``skipped``: missing values read as gaps."""

    values: tuple[float, ...]
    offsets: tuple[float, ...]
    end: float
    start: datetime | None = None
    name: str = "trace"
    skipped: int = 0

    def __post_init__(self) -> None:
        if not self.values or len(self.values) != len(self.offsets):
            raise ValueError("a trace needs as many offsets as values, at least one")
        if self.offsets[0] != 0:
            raise ValueError("a trace's first offset must be 0")
        if any(b <= a for a, b in zip(self.offsets, (*self.offsets[1:], self.end), strict=True)):
            raise ValueError("a trace's offsets must increase and end after the last one")
        if any(not (math.isfinite(v) and v >= 0) for v in self.values):
            raise ValueError("trace values must be finite and >= 0")

    @property
    def duration(self) -> float:
        return self.end

    @property
    def peak(self) -> float:
        return max(self.values)

    @property
    def boundaries(self) -> tuple[float, ...]:
        """Every time the demand may change: the offsets and the end."""
        return (*self.offsets, self.end)

    def rate_at(self, t: float) -> float:
        """Requests per second at ``t`` seconds (before 0: the first sample; from ``end`` on: the last)."""
        return self.values[max(0, bisect.bisect_right(self.offsets, t) - 1)]

    def offset_of(self, when: datetime) -> float:
        """Seconds from the start to ``when`` (TraceError for a trace without dates)."""
        if self.start is None:
            raise TraceError(f"{self.name} has numeric timestamps: give the start as a duration (e.g. 2h)")
        if (when.tzinfo is None) != (self.start.tzinfo is None):
            when = when.replace(tzinfo=self.start.tzinfo)
        return (when - self.start).total_seconds()

    def window(self, start: float = 0.0, duration: float | None = None) -> Trace:
        """The part from ``start`` seconds for ``duration`` seconds (default: to the end), cut inside samples
        where needed; offsets start at 0 again."""
        stop = self.end if duration is None else start + duration
        if not 0 <= start < self.end:
            raise TraceError(f"{self.name}: the start ({self._when(start)}) is outside the trace "
                             f"({self._when(0)} to {self._when(self.end)})")
        if duration is not None and not duration > 0:
            raise TraceError(f"{self.name}: a window needs a duration > 0, got {duration:g} s")
        if stop > self.end + 1e-9:
            raise TraceError(f"{self.name}: {(stop - start) / 60:g} min from {self._when(start)} pass the end of "
                             f"the trace ({self._when(self.end)})")
        first = bisect.bisect_right(self.offsets, start) - 1
        last = bisect.bisect_left(self.offsets, stop)
        offsets = [0.0, *(o - start for o in self.offsets[first + 1:last])]
        moved = None if self.start is None else self.start + timedelta(seconds=start)
        return Trace(self.values[first:last], tuple(offsets), stop - start, moved, self.name, self.skipped)

    def _when(self, offset: float) -> str:
        """``offset`` as the trace's date-time when it has dates, else as seconds."""
        if self.start is None:
            return f"{offset:g} s"
        return (self.start + timedelta(seconds=offset)).isoformat(sep=" ")

    def compressed(self, speed: float) -> Trace:
        """Replay ``speed`` times faster: every sample lasts 1/``speed`` as long (start dates are kept)."""
        if not (math.isfinite(speed) and speed > 0):
            raise TraceError(f"speed must be a number > 0, got {speed}")
        return replace(self, offsets=tuple(o / speed for o in self.offsets), end=self.end / speed)

    def scaled_to_peak(self, peak: float) -> Trace:
        """The same shape with its busiest sample at ``peak`` requests/s."""
        if not (math.isfinite(peak) and peak > 0):
            raise TraceError(f"the peak must be a number > 0, got {peak}")
        if self.peak <= 0:
            raise TraceError(f"{self.name} has no requests at all: nothing to scale")
        factor = peak / self.peak
        return replace(self, values=tuple(v * factor for v in self.values))

    def smoothed(self, samples: int) -> Trace:
        """Centred moving average over ``samples`` samples (shorter at the edges); 1 returns ``self``."""
        if samples < 1:
            raise TraceError(f"smoothing needs at least 1 sample, got {samples}")
        if samples == 1:
            return self
        before, after = (samples - 1) // 2, samples // 2
        prefix = [0.0]
        for v in self.values:
            prefix.append(prefix[-1] + v)
        n = len(self.values)
        out = []
        for i in range(n):
            lo, hi = max(0, i - before), min(n, i + after + 1)
            out.append((prefix[hi] - prefix[lo]) / (hi - lo))
        return replace(self, values=tuple(out))


def parse_trace(lines: Iterable[str], source: str = "trace", *, column: str | None = None,
                stride: float | None = None) -> Trace:
    """CSV rows (see the module docstring) → ``Trace``. ``column``: the value column, by header name or
    number (1 = the first); ``stride``: seconds between rows, for a file without timestamps (or to ignore
    them). TraceError names the line and the problem."""
    if stride is not None and not (math.isfinite(stride) and stride > 0):
        raise TraceError(f"{source}: the stride must be a duration > 0, got {stride!r}")
    rows = _rows(lines, source)
    if not rows:
        raise TraceError(f"{source}: needs at least 2 rows of timestamp,value (got 0): the last row lasts as long "
                         "as the one before it")
    header: list[str] | None = None
    first_number, first = rows[0]
    if any(not _is_number(f) and _date(f) is None for f in first):
        header, rows = first, rows[1:]
    width = len(first)
    names = ",".join(header) if header else ("timestamp,value" if width == 2 else "")
    for number, fields in rows:
        if len(fields) != width:
            shown = f" {names!r}" if names else ""
            raise TraceError(f"{source}, line {number}: expected {width} columns{shown}, got {len(fields)}: "
                             f"{_show(_joined(fields))}")
    value_at = _value_column(column, header, width, source, first_number)
    time_at = None if stride is not None else _time_column(header, width, value_at, rows)
    if stride is None and time_at is None:
        raise TraceError(f"{source}: no timestamp column ({_columns(header, width)}): give the time between rows "
                         "with --stride (e.g. --stride 10s)")
    counts = header is not None and header[value_at].lower() == "count"
    stamps: list[float] = []
    values: list[float] = []
    skipped = 0
    first_date: datetime | None = None
    dated: bool | None = None
    for index, (number, fields) in enumerate(rows):
        if time_at is None:
            seconds = index * (stride or 0.0)
        else:
            text = fields[time_at]
            stamp, is_date = _timestamp(text, source, number)
            if dated is None:
                dated = is_date
            elif dated != is_date:
                kinds = ("a date-time", "numbers") if is_date else ("a number", "date-times")
                raise TraceError(f"{source}, line {number}: timestamp {text!r} is {kinds[0]}; the rows before "
                                 f"have {kinds[1]}")
            if isinstance(stamp, datetime):
                if first_date is None:
                    first_date = stamp
                elif (stamp.tzinfo is None) != (first_date.tzinfo is None):
                    raise TraceError(f"{source}, line {number}: timestamp {text!r} mixes dates with and "
                                     "without a time zone")
                seconds = (stamp - first_date).total_seconds()
            else:
                seconds = stamp
            if stamps and seconds <= stamps[-1]:
                raise TraceError(f"{source}, line {number}: timestamp {text!r} is not after the previous row's")
        value = _value(fields[value_at], source, number)
        if value is None:
            skipped += 1
            if not values:
                continue  # nothing to hold before the first value
            value = values[-1]  # a missing value: the previous one holds
        stamps.append(seconds)
        values.append(value)
    if len(stamps) < 2:
        raise TraceError(f"{source}: needs at least 2 rows of timestamp,value (got {len(stamps)}): the last row "
                         "lasts as long as the one before it")
    if dated is False and all(s > _EPOCH_MILLIS for s in stamps):
        stamps = [s / 1000.0 for s in stamps]  # epoch milliseconds
    if dated is False and stamps[0] > _EPOCH_SECONDS:
        first_date = datetime.fromtimestamp(stamps[0], UTC)
    end = stamps[-1] + (stamps[-1] - stamps[-2])
    lengths = [b - a for a, b in zip(stamps, [*stamps[1:], end], strict=True)]
    if counts:
        values = [v / length for v, length in zip(values, lengths, strict=True)]
    origin = stamps[0]
    return Trace(tuple(values), tuple(s - origin for s in stamps), end - origin, first_date, source, skipped)


def _rows(lines: Iterable[str], source: str) -> list[tuple[int, list[str]]]:
    """The non-blank, non-comment lines as (line number, fields), split on the first line's delimiter."""
    rows: list[tuple[int, list[str]]] = []
    delimiter: str | None = ""
    for number, raw in enumerate(lines, 1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        if delimiter == "":
            delimiter = next((d for d in ("\t", ";", ",") if d in line), None)  # None: whitespace
        fields = [f.strip().strip('"') for f in (line.split(delimiter) if delimiter else line.split())]
        rows.append((number, fields))
    return rows


_TIME_NAMES = {"timestamp", "time", "ts", "t", "period", "date", "datetime", "epoch", "seconds", "second",
               "time_s", "timestamp_s", "start_time", "time_stamp"}


def _value_column(column: str | None, header: list[str] | None, width: int, source: str, line: int) -> int:
    if column is not None:
        text = column.strip()
        if text.isdigit():
            at = int(text) - 1
            if not 0 <= at < width:
                raise TraceError(f"{source}: column {text}: the file has {width} column(s) "
                                 f"({_columns(header, width)})")
            return at
        if header is None:
            raise TraceError(f"{source}: column {text!r}: the file has no header line; give the column's number "
                             f"(1 to {width})")
        lowered = [h.lower() for h in header]
        if text.lower() not in lowered:
            raise TraceError(f"{source}: no column {text!r}; the header has {_columns(header, width)}")
        return lowered.index(text.lower())
    if width == 1:
        return 0
    if width == 2:
        return 1
    raise TraceError(f"{source}, line {line}: {width} columns ({_columns(header, width)}): choose the value column "
                     "with --column NAME or --column N (1 = the first)")


def _time_column(header: list[str] | None, width: int, value_at: int,
                 rows: list[tuple[int, list[str]]]) -> int | None:
    """The timestamp column: one named like a time, else the first column when it is not the value column
    (with a header of more than two columns only if it holds date-times)."""
    if header is not None:
        for at, name in enumerate(header):
            if at != value_at and name.lower() in _TIME_NAMES:
                return at
    if value_at == 0 or width == 1:
        return None
    if header is None or width == 2:
        return 0
    return 0 if rows and _date(rows[0][1][0]) is not None else None


def _columns(header: list[str] | None, width: int) -> str:
    if header is None:
        return f"{width} column(s), no header"
    return ", ".join(f"{i} {name!r}" for i, name in enumerate(header, 1))


def _joined(fields: list[str]) -> str:
    return ",".join(fields)


_EPOCH_SECONDS = 1e8    # numeric timestamps above this are Unix time (after 1973): the trace gets dates
_EPOCH_MILLIS = 1e11    # ... and above this, Unix time in milliseconds (no trace runs to the year 5138)


def load_trace(spec: str | Path, *, column: str | None = None, stride: float | None = None) -> Trace:
    """A bundled trace by name (``worldcup98``, ``electricity``) or a CSV file, plain or gzip-compressed
    (``column``, ``stride``: see ``parse_trace``)."""
    if isinstance(spec, str) and spec in BUNDLED:
        data = resources.files("alertscaler").joinpath(BUNDLED[spec]).read_bytes()
        return parse_trace(gzip.decompress(data).decode("ascii").splitlines(), spec, column=column, stride=stride)
    path = Path(spec)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        known = ", ".join(sorted(BUNDLED))
        raise TraceError(f"{path}: no such file (bundled traces: {known})") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise TraceError(f"{path}: not a valid gzip file: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise TraceError(f"{path}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None
    return parse_trace(text.splitlines(), str(path), column=column, stride=stride)


def notice_text(name: str = WORLDCUP98) -> str:
    """The copyright notice that must accompany a bundled trace wherever it is replayed."""
    return resources.files("alertscaler").joinpath(_NOTICE[name]).read_text(encoding="utf-8")


def _date(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _timestamp(text: str, source: str, number: int) -> tuple[float | datetime, bool]:
    if _is_number(text):
        value = float(text)
        if math.isfinite(value):
            return value, False
    else:
        date = _date(text)
        if date is not None:
            return date, True
    raise TraceError(f"{source}, line {number}: timestamp {_show(text)} is neither a number of seconds nor an "
                     "ISO 8601 date-time (e.g. 1998-06-29 00:00:00)")


_MISSING = {"", "nan", "na", "n/a", "null", "none", "-"}


def _value(text: str, source: str, number: int) -> float | None:
    """The value, or None for a missing one (empty, NaN, NA, null)."""
    if text.lower() in _MISSING:
        return None
    if not _is_number(text):
        raise TraceError(f"{source}, line {number}: value {_show(text)} is not a number")
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise TraceError(f"{source}, line {number}: value {text} must be finite and >= 0")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _show(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
