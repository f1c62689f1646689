"""A real traffic shape for the demo (and, later, the simulator): the 1998 World Cup web site's requests per
minute, scaled to a chosen peak rate and time-compressed.

``load_excerpt()`` reads the bundled excerpt (``alertscaler/data/worldcup98-excerpt.csv.gz``: 1998-06-29
00:00 to 1998-07-02 23:59, one row per minute; see ``WORLDCUP98-NOTICE.txt`` for its copyright notice,
which must travel with it). Everything else here is pure and deterministic:

* ``Trace`` — per-minute counts from a start time; ``window()`` cuts a part, ``smoothed()`` takes a centred
  moving average (per-minute counts are spiky; a match kick-off is a few minutes).
* ``make_replay(trace, peak_rps=..., seconds_per_minute=...)`` — scale so that the window's busiest
  (smoothed) minute becomes ``peak_rps`` requests per second, and compress time so that one trace minute
  lasts ``seconds_per_minute`` demo seconds.
* ``Replay.rate_at(t)`` — requests/s at ``t`` seconds after the replay starts, linearly interpolated between
  the minute samples (sample ``i`` sits at ``t = i * seconds_per_minute``); before 0 it is the first value,
  from the last sample on the last value (or, with ``wrap``, the shape repeats).

The default window, 1998-06-30 10:00 for 16 hours with a 5-minute average, is a quiet morning, the
busy afternoon and evening of the two round-of-16 matches of that day, and a quiet night: peak/quiet is about 12,
so with ``peak_rps = 0.9 * max_size * capacity`` a group of max 5 needs 1 instance at the start and the
end and 5 at the peak. At one trace minute per second it lasts 16 minutes.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources

__all__ = [
    "DEFAULT_MINUTES",
    "DEFAULT_SMOOTH_MINUTES",
    "DEFAULT_START",
    "EXCERPT_RESOURCE",
    "NOTICE_RESOURCE",
    "Replay",
    "Trace",
    "default_replay",
    "load_excerpt",
    "make_replay",
    "notice_text",
    "parse_trace",
    "peak_for",
]

EXCERPT_RESOURCE = "data/worldcup98-excerpt.csv.gz"
NOTICE_RESOURCE = "data/WORLDCUP98-NOTICE.txt"
DEFAULT_START = datetime(1998, 6, 30, 10, 0)
DEFAULT_MINUTES = 16 * 60
DEFAULT_SMOOTH_MINUTES = 5
_PERIOD_FORMAT = "%Y-%m-%d %H:%M:%S"
_STEP = timedelta(minutes=1)


@dataclass(frozen=True)
class Trace:
    """Request counts per minute; ``counts[i]`` is the minute starting at ``start + i minutes``."""

    start: datetime
    counts: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.counts:
            raise ValueError("a trace needs at least one sample")
        if any(c < 0 or not math.isfinite(c) for c in self.counts):
            raise ValueError("trace counts must be finite and >= 0")

    @property
    def end(self) -> datetime:
        """The start of the minute after the last sample."""
        return self.start + len(self.counts) * _STEP

    def index_of(self, when: datetime) -> int:
        """The index of the minute ``when`` falls in (ValueError when outside the trace)."""
        index = math.floor((when - self.start) / _STEP)
        if not 0 <= index < len(self.counts):
            raise ValueError(f"{when} is outside the trace ({self.start} to {self.end})")
        return index

    def window(self, start: datetime | None = None, minutes: int | None = None) -> Trace:
        """``minutes`` samples from ``start`` (default: from the first sample, to the end)."""
        first = 0 if start is None else self.index_of(start)
        last = len(self.counts) if minutes is None else first + minutes
        if minutes is not None and minutes < 1:
            raise ValueError(f"a window needs at least one minute, got {minutes}")
        if last > len(self.counts):
            raise ValueError(f"window of {minutes} min from {self.start + first * _STEP} passes the end {self.end}")
        return Trace(self.start + first * _STEP, self.counts[first:last])

    def smoothed(self, minutes: int) -> Trace:
        """Centred moving average over ``minutes`` samples (shorter at the edges); 1 returns ``self``."""
        if minutes < 1:
            raise ValueError(f"smoothing needs at least 1 minute, got {minutes}")
        if minutes == 1:
            return self
        before, after = (minutes - 1) // 2, minutes // 2
        prefix = [0.0]
        for count in self.counts:
            prefix.append(prefix[-1] + count)
        n = len(self.counts)
        out = []
        for i in range(n):
            lo, hi = max(0, i - before), min(n, i + after + 1)
            out.append((prefix[hi] - prefix[lo]) / (hi - lo))
        return Trace(self.start, tuple(out))


@dataclass(frozen=True)
class Replay:
    """A rate curve in requests/s over demo seconds: samples ``seconds_per_sample`` apart, interpolated."""

    samples: tuple[float, ...]
    seconds_per_sample: float = 1.0
    wrap: bool = False

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("a replay needs at least one sample")
        if not self.seconds_per_sample > 0:
            raise ValueError(f"seconds_per_sample must be > 0, got {self.seconds_per_sample}")

    @property
    def duration(self) -> float:
        """Seconds the replay lasts: one ``seconds_per_sample`` per sample."""
        return len(self.samples) * self.seconds_per_sample

    @property
    def peak(self) -> float:
        return max(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    def rate_at(self, t: float) -> float:
        """Requests per second at ``t`` seconds after the start."""
        n = len(self.samples)
        position = t / self.seconds_per_sample
        if self.wrap:
            position %= n
        elif position <= 0:
            return self.samples[0]
        elif position >= n - 1:
            return self.samples[-1]
        index = math.floor(position)
        frac = position - index
        a = self.samples[index % n]
        b = self.samples[(index + 1) % n]
        return a + (b - a) * frac

    __call__ = rate_at


def parse_trace(lines: Iterable[str]) -> Trace:
    """``period,count`` CSV (with a header, one row per consecutive minute) -> ``Trace``."""
    start: datetime | None = None
    counts: list[float] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or (number == 1 and line.startswith("period")):
            continue
        try:
            period_text, count_text = line.split(",")
            period = datetime.strptime(period_text, _PERIOD_FORMAT)
            count = float(count_text)
        except ValueError:
            raise ValueError(f"line {number}: expected 'YYYY-MM-DD HH:MM:SS,count', got {line!r}") from None
        if start is None:
            start = period
        elif period != start + len(counts) * _STEP:
            raise ValueError(f"line {number}: {period_text} is not the minute after the previous row")
        counts.append(count)
    if start is None:
        raise ValueError("no rows")
    return Trace(start, tuple(counts))


def load_excerpt() -> Trace:
    """The bundled World Cup 1998 excerpt (the only function here that does I/O, with ``notice_text``)."""
    data = resources.files("alertscaler").joinpath(EXCERPT_RESOURCE).read_bytes()
    return parse_trace(gzip.decompress(data).decode("ascii").splitlines())


def notice_text() -> str:
    """The excerpt's copyright and disclaimer notice, to show wherever the trace is replayed."""
    return resources.files("alertscaler").joinpath(NOTICE_RESOURCE).read_text(encoding="utf-8")


def make_replay(
    trace: Trace,
    *,
    peak_rps: float,
    seconds_per_minute: float = 1.0,
    start: datetime | None = None,
    minutes: int | None = None,
    smooth_minutes: int = 1,
    wrap: bool = False,
) -> Replay:
    """Cut ``[start, start + minutes)``, smooth, scale so the busiest sample is ``peak_rps``, compress time.

    The window is cut before smoothing, so the result does not depend on samples outside it.
    """
    if not (peak_rps > 0 and math.isfinite(peak_rps)):
        raise ValueError(f"peak_rps must be a finite number > 0, got {peak_rps}")
    shape = trace.window(start, minutes).smoothed(smooth_minutes)
    highest = max(shape.counts)
    if highest <= 0:
        raise ValueError("the window has no requests at all: nothing to scale")
    scale = peak_rps / highest
    return Replay(tuple(c * scale for c in shape.counts), seconds_per_minute, wrap)


def peak_for(max_size: int, capacity_rps: float, fraction: float = 0.9) -> float:
    """The peak rate that keeps ``max_size`` instances of ``capacity_rps`` each at ``fraction`` utilisation."""
    if max_size < 1 or not capacity_rps > 0 or not fraction > 0:
        raise ValueError(
            f"need max_size >= 1, capacity_rps > 0, fraction > 0; got {max_size}, {capacity_rps}, {fraction}"
        )
    return fraction * max_size * capacity_rps


def default_replay(
    max_size: int,
    capacity_rps: float,
    *,
    fraction: float = 0.9,
    seconds_per_minute: float = 1.0,
    wrap: bool = False,
    trace: Trace | None = None,
) -> Replay:
    """The demo's replay: the default window of the bundled excerpt, peak at ``fraction`` of the max capacity."""
    return make_replay(
        load_excerpt() if trace is None else trace,
        peak_rps=peak_for(max_size, capacity_rps, fraction),
        seconds_per_minute=seconds_per_minute,
        start=DEFAULT_START,
        minutes=DEFAULT_MINUTES,
        smooth_minutes=DEFAULT_SMOOTH_MINUTES,
        wrap=wrap,
    )
