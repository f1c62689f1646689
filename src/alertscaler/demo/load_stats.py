"""What the load generator counts, as data: request outcomes (``Counts``), one second's bucket while it fills
(``Bucket``) and once complete (``SecondSummary``, made by ``summarize``, with latency percentiles), and the
generator's state at one moment (``Snapshot``).

Filled by ``demo.loadgen.LoadGenerator``; read by the live view (``demo.view_states``, ``demo.polling``) and
the demo's summary (``demo.summaries``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

__all__ = ["Bucket", "Counts", "SecondSummary", "Snapshot", "percentile", "summarize"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by linear interpolation between the sorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)



@dataclass
class Counts:
    """Request outcomes (a per-second bucket or the totals)."""

    sent: int = 0
    ok: int = 0
    overloaded: int = 0  # 503
    http_errors: int = 0  # any other non-200 status
    connection_errors: int = 0
    timeouts: int = 0
    dropped: int = 0  # over max_outstanding
    no_target: int = 0  # no live target to send to

    @property
    def errors(self) -> int:
        return self.overloaded + self.http_errors + self.connection_errors + self.timeouts

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def copy(self) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass
class Bucket:
    """One second of the run while it fills: outcomes, latencies of OK answers, requests per target."""

    counts: Counts = field(default_factory=Counts)
    latencies: list[float] = field(default_factory=list)
    per_target: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class SecondSummary:
    """One complete second of the run (``second`` 0 is the first)."""

    second: int
    target_rate: float  # the rate function at the middle of that second
    counts: Counts
    p50: float | None  # seconds, OK answers completed in that second
    p95: float | None
    per_target: dict[str, int]  # requests sent to each target in that second


@dataclass(frozen=True)
class Snapshot:
    """The generator's state at one moment."""

    elapsed: float
    target_rate: float
    targets: tuple[str, ...]
    outstanding: int
    outstanding_by_target: dict[str, int]
    totals: Counts
    per_target: dict[str, int]  # requests sent to each target since the start
    last: SecondSummary | None  # the last complete second
    discovery_errors: int
    last_discovery_error: str | None


def summarize(second: int, bucket: Bucket, target_rate: float) -> SecondSummary:
    """The complete second ``second`` from its bucket."""
    return SecondSummary(
        second=second,
        target_rate=target_rate,
        counts=bucket.counts.copy(),
        p50=percentile(bucket.latencies, 0.5),
        p95=percentile(bucket.latencies, 0.95),
        per_target=dict(bucket.per_target),
    )
