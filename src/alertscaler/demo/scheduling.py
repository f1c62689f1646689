"""When and where the load generator's requests go, as pure helpers: arrival times in a tick, evenly spaced
(``even_arrivals``) or as a Poisson process (``poisson_arrivals``); the live targets in alertscaler's http_sd
answer (``parse_targets``); and the ``Balancer`` picking a target for each request.

Used by ``demo.loadgen.LoadGenerator``; tested on their own in the load generator's tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

__all__ = ["Balance", "Balancer", "even_arrivals", "parse_targets", "poisson_arrivals"]

Balance = Literal["round_robin", "least_outstanding"]


def parse_targets(data: Any, group: str | None = None, states: Iterable[str] = ("running",)) -> list[str]:
    """Addresses (``host:port``) in http_sd JSON whose ``alertscaler_state`` is in ``states``, in order, unique.

    Malformed entries are skipped; ``group`` keeps only members of that ``alertscaler_group``.
    """
    wanted = set(states)
    out: list[str] = []
    if not isinstance(data, list):
        return out
    for entry in data:
        if not isinstance(entry, dict):
            continue
        labels = entry.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        if labels.get("alertscaler_state") not in wanted:
            continue
        if group is not None and labels.get("alertscaler_group") != group:
            continue
        targets = entry.get("targets")
        for target in targets if isinstance(targets, list) else []:
            if isinstance(target, str) and target and target not in out:
                out.append(target)
    return out


def even_arrivals(rate: float, t0: float, t1: float, carry: float) -> tuple[list[float], float]:
    """Evenly spaced arrival times in ``[t0, t1)`` at a constant ``rate``, continuing from ``carry``.

    ``carry`` in [0, 1) is the fraction of a request accumulated before ``t0``; the k-th arrival is where the
    running count reaches k. Returns (times, new carry).
    """
    if rate <= 0 or t1 <= t0:
        return [], carry
    total = carry + rate * (t1 - t0)
    n = math.floor(total + 1e-9)
    times = [min(t1, t0 + (k - carry) / rate) for k in range(1, n + 1)]
    return times, max(0.0, total - n)


def poisson_arrivals(rate: float, t0: float, t1: float, rng: random.Random) -> list[float]:
    """Arrival times of a Poisson process of constant ``rate`` in ``[t0, t1)`` (memoryless: no carry)."""
    times: list[float] = []
    if rate <= 0:
        return times
    t = t0 + rng.expovariate(rate)
    while t < t1:
        times.append(t)
        t += rng.expovariate(rate)
    return times


class Balancer:
    """Picks a target for each request: round-robin, or least outstanding with round-robin ties."""

    def __init__(self, mode: Balance = "round_robin") -> None:
        if mode not in ("round_robin", "least_outstanding"):
            raise ValueError(f"unknown balance mode {mode!r}")
        self.mode = mode
        self.targets: tuple[str, ...] = ()
        self._next = 0

    def update(self, targets: Sequence[str]) -> None:
        self.targets = tuple(targets)

    def pick(self, outstanding: Mapping[str, int] | None = None) -> str | None:
        n = len(self.targets)
        if n == 0:
            return None
        start = self._next % n
        self._next = start + 1
        if self.mode == "round_robin" or outstanding is None:
            return self.targets[start]
        order = [self.targets[(start + i) % n] for i in range(n)]
        return min(order, key=lambda t: outstanding.get(t, 0))  # min keeps the first of equals

