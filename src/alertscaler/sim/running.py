"""The simulation loop: replay a scenario's trace through a policy and record what the group did.

Deterministic: no wall clock, no randomness, no I/O; the same scenario and policy give the same ``Run``.
Time advances in fixed steps (``step_for``): the greatest common divisor of the trace's sample boundaries,
the provisioning delay and the evaluation intervals, so that with whole-second settings every event falls
exactly on a step (with odd settings the step is 1 s and events wait for the next step).

At every step ``t``, in this order:

1. instances asked for at least ``delay`` seconds ago become ready;
2. demand(t) = the trace's requests/s; when an evaluation is due, the policy's controller
   (``sim.controllers``, i.e. the real ``decide`` code) sees the demand averaged over the last
   ``metric_window`` seconds (the samples of that window, this one included) and decides a new desired size;
3. a larger size asks for new instances (ready after ``delay``; with 0 at once), a smaller one removes
   instances at once, cancelling those still booting first;
4. the step is recorded: demand, the oracle's size (``Scenario.needed``: at the target utilisation, within
   the bounds), ready instances (the supply) and desired instances (what is paid for: booting instances
   cost money too).

Every policy starts at ``Scenario.initial_size`` (default: the oracle's size for the first sample), all
ready. ``progress`` (optional) is called with the share done, about every 1 % of a long run. Called by the
``alertscaler simulate`` command and ``bench/decision_quality.py``; ``sim.metrics`` reads the ``Run``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import reduce

from alertscaler.sim.controllers import Observation, controller_for
from alertscaler.sim.scenarios import Policy, Scenario

__all__ = ["Action", "Progress", "Run", "Series", "simulate", "simulate_all", "step_for"]

#: called with the share of the run done (0..1)
Progress = Callable[[float], None]

_MS = 1000
_EPS = 1e-6


@dataclass(frozen=True)
class Action:
    """A decision that changed the desired size."""

    at: float
    from_size: int
    to_size: int
    reason: str
    message: str


@dataclass(frozen=True)
class Series:
    """The recorded time series: sample ``i`` covers ``[i * step, (i + 1) * step)`` seconds."""

    step: float
    demand: tuple[float, ...]   # requests/s
    needed: tuple[int, ...]     # the oracle: ceil(demand / (capacity x target)) within the bounds
    supply: tuple[int, ...]     # ready instances
    desired: tuple[int, ...]    # instances asked for (ready + booting)

    def __post_init__(self) -> None:
        if not (len(self.demand) == len(self.needed) == len(self.supply) == len(self.desired)):
            raise ValueError("every series needs the same length")
        if not self.step > 0:
            raise ValueError(f"step must be > 0, got {self.step}")

    @property
    def duration(self) -> float:
        return len(self.demand) * self.step

    @property
    def times(self) -> tuple[float, ...]:
        return tuple(i * self.step for i in range(len(self.demand)))


@dataclass(frozen=True)
class Run:
    policy: Policy
    scenario: Scenario
    initial: int
    series: Series
    actions: tuple[Action, ...]

    @property
    def name(self) -> str:
        return self.policy.name


def step_for(scenario: Scenario, policies: Iterable[Policy]) -> float:
    """The simulation step for running ``policies`` on ``scenario``: one common step for all of them, so that
    their series compare sample by sample."""
    times = [t for t in (*scenario.trace.boundaries, scenario.delay,
                         *(p.interval if p.interval is not None else scenario.interval for p in policies)) if t > 0]
    millis = [round(t * _MS) for t in times]
    if any(abs(m - t * _MS) > 1e-6 for m, t in zip(millis, times, strict=True)):
        return 1.0  # not whole milliseconds: events wait for the next whole second
    divisor = reduce(math.gcd, millis, 0)
    return max(1.0, divisor / _MS) if divisor else 1.0


def simulate(scenario: Scenario, policy: Policy, step: float | None = None, progress: Progress | None = None) -> Run:
    """Replay ``scenario`` through ``policy``; ``step`` defaults to ``step_for(scenario, [policy])``."""
    step = step_for(scenario, [policy]) if step is None else step
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    interval = policy.interval if policy.interval is not None else scenario.interval
    initial = scenario.initial_size
    controller = controller_for(policy, scenario, initial)
    trace, capacity, delay, cpu_limit = scenario.trace, scenario.capacity, scenario.delay, scenario.cpu_limit
    steps = math.ceil(trace.duration / step - _EPS)
    every = max(1, steps // 100)

    desired = ready = initial
    recent: deque[float] = deque(maxlen=max(1, round(scenario.metric_window / step)))
    pending: deque[_Booting] = deque()   # oldest first
    next_evaluation = 0.0
    actions: list[Action] = []
    demand_s: list[float] = []
    needed_s: list[int] = []
    supply_s: list[int] = []
    desired_s: list[int] = []
    for i in range(steps):
        if progress is not None and i % every == 0:
            progress(i / steps)
        t = i * step
        while pending and pending[0].ready_at <= t + _EPS:
            ready += pending.popleft().count
        demand = trace.rate_at(t)
        recent.append(demand)
        if t + _EPS >= next_evaluation:
            while next_evaluation <= t + _EPS:
                next_evaluation += interval
            seen = sum(recent) / len(recent)
            decision = controller.decide(t, Observation(seen, ready, desired, capacity, cpu_limit))
            if decision.size != desired:
                actions.append(Action(t, desired, decision.size, decision.reason, decision.message))
                if decision.size > desired:
                    if delay > 0:
                        pending.append(_Booting(t + delay, decision.size - desired))
                    else:
                        ready += decision.size - desired
                else:
                    ready -= _cancel(pending, desired - decision.size)
                desired = decision.size
        demand_s.append(demand)
        needed_s.append(scenario.needed(demand))
        supply_s.append(ready)
        desired_s.append(desired)
    series = Series(step, tuple(demand_s), tuple(needed_s), tuple(supply_s), tuple(desired_s))
    return Run(policy, scenario, initial, series, tuple(actions))


def simulate_all(scenario: Scenario, policies: Sequence[Policy], progress: Progress | None = None) -> list[Run]:
    """Every policy on the same scenario with one common step (see ``step_for``); ``progress`` sees the share
    of all the runs done."""
    step = step_for(scenario, policies)
    runs: list[Run] = []
    for n, policy in enumerate(policies):
        part: Progress | None = None
        if progress is not None:
            part = _share(progress, n, len(policies))
        runs.append(simulate(scenario, policy, step, part))
    if progress is not None:
        progress(1.0)
    return runs


def _share(progress: Progress, n: int, total: int) -> Progress:
    """Run ``n`` of ``total``'s progress as a share of all of them."""
    return lambda done: progress((n + done) / total)


@dataclass
class _Booting:
    ready_at: float
    count: int


def _cancel(pending: deque[_Booting], count: int) -> int:
    """Cancel up to ``count`` booting instances, the most recently asked for first; return how many READY
    instances must still go."""
    while count and pending:
        newest = pending[-1]
        taken = min(count, newest.count)
        newest.count -= taken
        count -= taken
        if not newest.count:
            pending.pop()
    return count
