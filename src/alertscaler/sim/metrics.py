"""Decision-quality metrics over a recorded run: the SPEC Research Group's elasticity metrics plus cost.

Pure functions over equally spaced samples (``dt`` seconds each), demand ``d`` and supply ``s`` in instances:
``d`` is the oracle's size — ceil(demand / (capacity x target)) within the bounds: the instances that hold the
target utilisation with no delay — and ``s`` the READY instances. Definitions from N. Herbst et
al., "Ready for Rain? A View from SPEC Research on the Future of Cloud Metrics", SPEC RG technical report
SPEC-RG-2016-01, section on elasticity, with T the run's duration:

* under-provisioning accuracy θU = 100/T · Σ max(d - s, 0) / d · Δt (%): the average share of the demand
  that was missing; over-provisioning accuracy θO = 100/T · Σ max(s - d, 0) / d · Δt (%): the average
  surplus relative to the demand (may exceed 100). A demand of 0 instances counts as 1 here (an idle
  instance is 100 % too many, not infinitely many);
* timeshares τU = 100/T · Σ [d > s] · Δt, τO = 100/T · Σ [s > d] · Δt (%): the share of time under- or
  over-provisioned;
* instability v = 100/(T - Δt) · Σ_{t≥2} min(|sgn Δs_t - sgn Δd_t|, 1) · Δt (%): the share of time in which
  supply and demand do not move the same way (one changes and the other does not, or they go opposite ways);
* jitter j = (E_S - E_D) / T, in adaptations per minute: E_S, E_D count the changes of the supply and
  demand curves (each change once, whatever its size). Negative: the policy adapts less often than the
  demand changes (too inert); positive: more often (it oscillates).

Cost: instance-hours of the DESIRED instances (booting ones are paid for), and their ratio to the oracle's.
Also the share of requests that found no capacity at 100 % of the ready instances (``unserved``), the
number of scaling actions and actions per day (of simulated time), and the share of time with instances
booting. ``oracle_summary`` gives the oracle's own figures (its actions are the changes of its size).

Called by the ``alertscaler simulate`` command and ``bench/decision_quality.py`` (``summarize``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from alertscaler.sim.running import Run

__all__ = [
    "Summary",
    "adaptations",
    "instability",
    "instance_hours",
    "jitter",
    "oracle_summary",
    "over_accuracy",
    "over_timeshare",
    "summarize",
    "under_accuracy",
    "under_timeshare",
    "unserved",
]


def under_accuracy(demand: Sequence[int], supply: Sequence[int]) -> float:
    """θU (%): the average missing share of the demand. Equal spacing makes Δt/T = 1/N."""
    _same_length(demand, supply)
    return 100.0 * sum(max(d - s, 0) / max(d, 1) for d, s in zip(demand, supply, strict=True)) / len(demand)


def over_accuracy(demand: Sequence[int], supply: Sequence[int]) -> float:
    """θO (%): the average surplus relative to the demand."""
    _same_length(demand, supply)
    return 100.0 * sum(max(s - d, 0) / max(d, 1) for d, s in zip(demand, supply, strict=True)) / len(demand)


def under_timeshare(demand: Sequence[int], supply: Sequence[int]) -> float:
    """τU (%): the share of time with less supply than demand."""
    _same_length(demand, supply)
    return 100.0 * sum(1 for d, s in zip(demand, supply, strict=True) if d > s) / len(demand)


def over_timeshare(demand: Sequence[int], supply: Sequence[int]) -> float:
    """τO (%): the share of time with more supply than demand."""
    _same_length(demand, supply)
    return 100.0 * sum(1 for d, s in zip(demand, supply, strict=True) if s > d) / len(demand)


def instability(demand: Sequence[int], supply: Sequence[int]) -> float:
    """Instability (%): the share of the steps between samples where supply and demand do not move alike."""
    _same_length(demand, supply)
    if len(demand) < 2:
        return 0.0
    moves = sum(min(abs(_sign(supply[i] - supply[i - 1]) - _sign(demand[i] - demand[i - 1])), 1)
                for i in range(1, len(demand)))
    return 100.0 * moves / (len(demand) - 1)


def adaptations(curve: Sequence[int]) -> int:
    """How often the curve changes value between consecutive samples."""
    return sum(1 for a, b in pairwise(curve) if a != b)


def jitter(demand: Sequence[int], supply: Sequence[int], dt: float) -> float:
    """j: (supply adaptations - demand adaptations) per minute."""
    _same_length(demand, supply)
    return (adaptations(supply) - adaptations(demand)) / (len(demand) * dt / 60.0)


def instance_hours(sizes: Sequence[int], dt: float) -> float:
    return sum(sizes) * dt / 3600.0


def unserved(demand_rps: Sequence[float], supply: Sequence[int], capacity: float) -> float:
    """The share of requests (%) that arrived while the ready instances were full."""
    total = sum(demand_rps)
    if total <= 0:
        return 0.0
    missing = sum(max(r - s * capacity, 0.0) for r, s in zip(demand_rps, supply, strict=True))
    return 100.0 * missing / total


@dataclass(frozen=True)
class Summary:
    """One run's figures, as the ``simulate`` table and ``--json`` show them."""

    policy: str
    description: str
    theta_u: float
    theta_o: float
    tau_u: float
    tau_o: float
    instability: float
    jitter: float
    actions: int
    actions_per_day: float
    instance_hours: float
    oracle_instance_hours: float
    ratio_to_oracle: float
    unserved: float
    booting: float        # % of the time with at least one instance booting
    minutes: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(run: Run) -> Summary:
    series = run.series
    d, s, dt = series.needed, series.supply, series.step
    hours = instance_hours(series.desired, dt)
    oracle = instance_hours(d, dt)
    days = series.duration / 86400.0
    return Summary(
        policy=run.name,
        description=run.policy.description,
        theta_u=under_accuracy(d, s),
        theta_o=over_accuracy(d, s),
        tau_u=under_timeshare(d, s),
        tau_o=over_timeshare(d, s),
        instability=instability(d, s),
        jitter=jitter(d, s, dt),
        actions=len(run.actions),
        actions_per_day=len(run.actions) / days,
        instance_hours=hours,
        oracle_instance_hours=oracle,
        ratio_to_oracle=hours / oracle if oracle > 0 else float("inf") if hours > 0 else 1.0,
        unserved=unserved(series.demand, s, run.scenario.capacity),
        booting=100.0 * sum(1 for a, b in zip(series.desired, s, strict=True) if a > b) / len(s),
        minutes=series.duration / 60.0,
    )


def oracle_summary(run: Run) -> Summary:
    """The oracle of ``run``'s scenario as a policy: exactly ``needed`` instances, ready at once."""
    series, scenario = run.series, run.scenario
    d, dt = series.needed, series.step
    hours = instance_hours(d, dt)
    changes = adaptations(d) + (1 if d and d[0] != run.initial else 0)
    return Summary(
        policy="oracle", description=f"ceil(demand / (capacity x {scenario.target:g})) within "
                                     f"{scenario.min_size}..{scenario.max_size}, no delay",
        theta_u=0.0, theta_o=0.0, tau_u=0.0, tau_o=0.0, instability=0.0, jitter=0.0, actions=changes,
        actions_per_day=changes / (series.duration / 86400.0), instance_hours=hours, oracle_instance_hours=hours,
        ratio_to_oracle=1.0, unserved=unserved(series.demand, d, scenario.capacity), booting=0.0,
        minutes=series.duration / 60.0)


def _same_length(demand: Sequence[int], supply: Sequence[int]) -> None:
    if len(demand) != len(supply) or not demand:
        raise ValueError(f"demand and supply need the same, non-zero length (got {len(demand)} and {len(supply)})")


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)
