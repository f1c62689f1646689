"""Load traces for the simulator: a demand curve in requests per second over time.

Owns the CSV format the simulator reads (``timestamp,value``) and the pure helpers that cut, compress, smooth
and scale a trace. Called by ``sim.running`` (``Trace.rate_at``), the ``alertscaler simulate`` command and
``bench/decision_quality.py`` (``load_trace``, ``window``, ``compressed``, ``scaled_to_peak``).

The format, one row per sample (blank lines and ``#`` comments are skipped):

* ``timestamp``: seconds (a plain number: epoch or relative) or an ISO 8601 date-time
  (``1998-06-29 00:00:00``, ``2024-05-01T12:00:00Z``), strictly increasing; gaps need not be even;
* ``value``: the demand from that timestamp until the next row's, in requests per second. A header whose
  second column is ``count`` says the values are request COUNTS per row instead (like the WorldCup98 data:
  requests per minute), divided here by the row's length in seconds;
* the first line may be a header (it is one when its value column is not a number);
* the last row lasts as long as the one before it, so a trace needs at least two rows;
* the file may be gzip-compressed (recognised by its content, not its name).

Errors are ``TraceError`` naming the file, the line and the problem.

``worldcup98`` names the bundled excerpt (``alertscaler/data/worldcup98-excerpt.csv.gz``: the 1998 World Cup
web site, requests per minute, 1998-06-29 00:00 to 1998-07-02 23:59; its copyright notice,
``WORLDCUP98-NOTICE.txt``, travels with it: ``notice_text()``).
"""

from __future__ import annotations

import bisect
import gzip
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

__all__ = [
    "BUNDLED",
    "WORLDCUP98",
    "Trace",
    "TraceError",
    "load_trace",
    "notice_text",
    "parse_trace",
]

WORLDCUP98 = "worldcup98"
BUNDLED = {WORLDCUP98: "data/worldcup98-excerpt.csv.gz"}
_NOTICE = {WORLDCUP98: "data/WORLDCUP98-NOTICE.txt"}
_GZIP_MAGIC = b"\x1f\x8b"


class TraceError(ValueError):
    """A trace that cannot be read: the message names the source, the line and the problem."""


@dataclass(frozen=True)
class Trace:
    """Piecewise-constant demand: ``values[i]`` requests/s from ``offsets[i]`` to ``offsets[i + 1]`` (the last
    sample until ``end``). ``offsets`` are seconds from the trace's start; ``start`` is that start's date-time
    when the source had dates (None for numeric timestamps)."""

    values: tuple[float, ...]
    offsets: tuple[float, ...]
    end: float
    start: datetime | None = None
    name: str = "trace"

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
        return Trace(self.values[first:last], tuple(offsets), stop - start, moved, self.name)

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


def parse_trace(lines: Iterable[str], source: str = "trace") -> Trace:
    """``timestamp,value`` rows (see the module docstring) → ``Trace``. TraceError names line and problem."""
    stamps: list[float] = []
    values: list[float] = []
    numbers: list[int] = []
    first_date: datetime | None = None
    dated: bool | None = None
    counts = False
    seen_row = False
    for number, raw in enumerate(lines, 1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2:
            raise TraceError(f"{source}, line {number}: expected 2 columns 'timestamp,value', "
                             f"got {len(fields)}: {_show(line)}")
        if not seen_row and not _is_number(fields[1]):
            seen_row = True  # a header
            counts = fields[1].lower() == "count"
            continue
        seen_row = True
        stamp, is_date = _timestamp(fields[0], source, number)
        if dated is None:
            dated = is_date
        elif dated != is_date:
            kinds = ("a date-time", "numbers") if is_date else ("a number", "date-times")
            raise TraceError(f"{source}, line {number}: timestamp {fields[0]!r} is {kinds[0]}; the rows before "
                             f"have {kinds[1]}")
        if isinstance(stamp, datetime):
            if first_date is None:
                first_date = stamp
            elif (stamp.tzinfo is None) != (first_date.tzinfo is None):
                raise TraceError(f"{source}, line {number}: timestamp {fields[0]!r} mixes dates with and "
                                 "without a time zone")
            seconds = (stamp - first_date).total_seconds()
        else:
            seconds = stamp
        value = _value(fields[1], source, number)
        if stamps and seconds <= stamps[-1]:
            raise TraceError(f"{source}, line {number}: timestamp {fields[0]!r} is not after the previous row's")
        stamps.append(seconds)
        values.append(value)
        numbers.append(number)
    if len(stamps) < 2:
        raise TraceError(f"{source}: needs at least 2 rows of timestamp,value (got {len(stamps)}): the last row "
                         "lasts as long as the one before it")
    end = stamps[-1] + (stamps[-1] - stamps[-2])
    lengths = [b - a for a, b in zip(stamps, [*stamps[1:], end], strict=True)]
    if counts:
        values = [v / length for v, length in zip(values, lengths, strict=True)]
    origin = stamps[0]
    return Trace(tuple(values), tuple(s - origin for s in stamps), end - origin, first_date, source)


def load_trace(spec: str | Path) -> Trace:
    """A bundled trace by name (``worldcup98``) or a CSV file, plain or gzip-compressed."""
    if isinstance(spec, str) and spec in BUNDLED:
        data = resources.files("alertscaler").joinpath(BUNDLED[spec]).read_bytes()
        return parse_trace(gzip.decompress(data).decode("ascii").splitlines(), spec)
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
    return parse_trace(text.splitlines(), str(path))


def notice_text(name: str = WORLDCUP98) -> str:
    """The copyright notice that must accompany a bundled trace wherever it is replayed."""
    return resources.files("alertscaler").joinpath(_NOTICE[name]).read_text(encoding="utf-8")


def _timestamp(text: str, source: str, number: int) -> tuple[float | datetime, bool]:
    if _is_number(text):
        value = float(text)
        if math.isfinite(value):
            return value, False
    else:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")), True
        except ValueError:
            pass
    raise TraceError(f"{source}, line {number}: timestamp {_show(text)} is neither a number of seconds nor an "
                     "ISO 8601 date-time (e.g. 1998-06-29 00:00:00)")


def _value(text: str, source: str, number: int) -> float:
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
