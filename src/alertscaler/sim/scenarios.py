"""What the simulator replays (a ``Scenario``) and the policies it replays it through, as frozen values.

Owns the policy descriptions and the built-in baselines; the decisions themselves are made by the real
``decide`` code (``sim.controllers`` calls ``decide.tracking.recommend`` and ``decide.evaluator.evaluate_step``).
Called by ``sim.running``, the ``alertscaler simulate`` command and ``bench/decision_quality.py``.

Policies:

* ``TrackingPolicy``: target tracking (``decide.tracking``) on one metric, every ``interval``:
  ``Metric.UTILISATION`` (CPU-like: each ready instance's utilisation saturates at 1.0) or ``Metric.RPS``
  (requests/s per instance: the offered load, which does not saturate). Instances still booting count as
  idle members of the group (Kubernetes' HPA treats not-yet-ready pods the same way when scaling up), so a
  decision does not ask again for what is already on its way.
* ``StepAlertPolicy``: a high and a low alert on the average utilisation of the READY instances, each with a
  ``for`` duration like a Prometheus alerting rule evaluated every ``interval``; a firing alert runs its
  ``StepPolicy`` through ``decide.evaluator.evaluate_step`` with the group's cooldown clocks. With
  ``reevaluate`` (alertscaler's behaviour) an alert that stays firing steps again after each cooldown;
  without, it steps once when it starts firing.

Baselines (measured in every ``alertscaler simulate`` run):

* ``hpa_default(target)``: Kubernetes' HPA with its default behaviour on CPU utilisation: tolerance 0.1, a
  decision every 15 s, scale-up +100 % or +4 pods per 15 s (whichever is more), scale-down after a 300 s
  stabilisation window at most -100 % per 15 s. HPA has no default target; 0.7 is used unless told.
* ``seed_step()``: the seeds' step policy, run by alertscaler: ``HighCpuLoad`` average utilisation > 0.8 for
  1 min → +1 instance (cooldown 30 s); ``LowCpuLoad`` < 0.2 for 1 min → -1 (cooldown 60 s); rules evaluated
  every 15 s (seed 001's thresholds, ``for`` and evaluation interval). Alertmanager's ``group_wait`` is not
  modelled (notifications arrive at once), which flatters every step policy equally.

alertscaler's own: ``alertscaler_tracking(target, capacity, lookahead)``, the best default (predictive target
tracking on requests/s per instance: see its docstring for why), ``alertscaler_step(target)`` and
``alertscaler_sized(target, capacity)`` (the same alerts, each step sized live with ``size_by``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from alertscaler.model.policies import AdjustmentType, Bounds, SizeBy, StepPolicy
from alertscaler.model.tracking import HPA_SCALE_DOWN, HPA_SCALE_UP, DirectionRules, TrackingRules
from alertscaler.sim.traces import Trace

__all__ = [
    "Metric",
    "Policy",
    "Scenario",
    "StepAlertPolicy",
    "TrackingPolicy",
    "alertscaler_sized",
    "alertscaler_step",
    "alertscaler_tracking",
    "hpa_default",
    "seed_step",
]

DEFAULT_TARGET = 0.7


class Metric(str, Enum):
    UTILISATION = "utilisation"   # fraction of an instance's capacity in use, saturating at 1.0
    RPS = "rps"                   # requests per second per instance: the offered load


@dataclass(frozen=True)
class Scenario:
    """A trace replayed against a group: ``capacity`` requests/s one instance serves (demand beyond it is
    unserved), new instances serve only ``delay`` seconds after they were asked for (scale-in is immediate),
    the chosen policy decides every ``interval`` seconds unless it has its own. Policies see the demand
    averaged over the last ``metric_window`` seconds, as a Prometheus ``rate(...[1m])`` shows it (0: the
    instantaneous demand)."""

    trace: Trace
    capacity: float = 40.0
    delay: float = 60.0
    interval: float = 15.0
    min_size: int = 1
    max_size: int = 20
    initial: int | None = None  # None: what the first sample needs (at the policy's target), within bounds
    metric_window: float = 60.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.capacity) and self.capacity > 0):
            raise ValueError(f"capacity must be a number > 0, got {self.capacity}")
        if not (math.isfinite(self.delay) and self.delay >= 0):
            raise ValueError(f"delay must be >= 0 seconds, got {self.delay}")
        if not (math.isfinite(self.interval) and self.interval > 0):
            raise ValueError(f"interval must be > 0 seconds, got {self.interval}")
        if not (math.isfinite(self.metric_window) and self.metric_window >= 0):
            raise ValueError(f"metric window must be >= 0 seconds, got {self.metric_window}")
        if not 0 <= self.min_size <= self.max_size:
            raise ValueError(f"need 0 <= min ({self.min_size}) <= max ({self.max_size})")
        if self.initial is not None and not self.min_size <= self.initial <= self.max_size:
            raise ValueError(f"initial size {self.initial} is outside min..max ({self.min_size}..{self.max_size})")

    @property
    def bounds(self) -> Bounds:
        return Bounds(min_size=self.min_size, max_size=self.max_size)

    def needed(self, demand: float) -> int:
        """Instances that serve ``demand`` at full capacity: the oracle's size."""
        return math.ceil(demand / self.capacity - 1e-9)

    def clamp(self, size: int) -> int:
        return max(self.min_size, min(self.max_size, size))


@dataclass(frozen=True)
class TrackingPolicy:
    name: str
    metric: Metric
    target: float                      # a utilisation (0..1] or requests/s per instance
    tolerance: float = 0.1
    scale_up: DirectionRules = HPA_SCALE_UP
    scale_down: DirectionRules = HPA_SCALE_DOWN
    interval: float | None = None      # None: the scenario's
    description: str = ""
    lookahead: float = 0.0             # > 0: a second metric, the same one predicted this far ahead (s) ...
    trend_window: float = 300.0        # ... from a least-squares line over this window (predict_linear)

    def __post_init__(self) -> None:
        if self.lookahead < 0 or not self.trend_window > 0:
            raise ValueError(f"{self.name}: lookahead must be >= 0 and trend_window > 0")
        if not (math.isfinite(self.target) and self.target > 0):
            raise ValueError(f"{self.name}: target must be > 0, got {self.target}")
        if self.metric is Metric.UTILISATION and self.target > 1:
            raise ValueError(f"{self.name}: a utilisation target is a fraction in (0, 1], got {self.target}")

    def rules(self, scenario: Scenario) -> TrackingRules:
        targets = (self.target, self.target) if self.lookahead > 0 else (self.target,)
        return TrackingRules(targets=targets, tolerance=self.tolerance, scale_up=self.scale_up,
                             scale_down=self.scale_down, min_size=scenario.min_size, max_size=scenario.max_size)

    def initial_size(self, scenario: Scenario) -> int:
        demand = scenario.trace.values[0]
        per_instance = self.target * scenario.capacity if self.metric is Metric.UTILISATION else self.target
        return scenario.clamp(math.ceil(demand / per_instance - 1e-9))


@dataclass(frozen=True)
class StepAlertPolicy:
    name: str
    scale_out: StepPolicy
    high: float                        # the high alert: average utilisation of ready instances > high ...
    high_for: float                    # ... for this long (seconds)
    scale_in: StepPolicy | None = None
    low: float = 0.0                   # the low alert: < low for ``low_for`` seconds
    low_for: float = 0.0
    reevaluate: bool = True            # alertscaler: a firing alert steps again after each cooldown
    interval: float | None = None      # rule evaluation interval; None: the scenario's
    description: str = field(default="")

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high:
            raise ValueError(f"{self.name}: need 0 <= low ({self.low}) < high ({self.high})")
        if self.high_for < 0 or self.low_for < 0:
            raise ValueError(f"{self.name}: alert 'for' durations must be >= 0")

    def initial_size(self, scenario: Scenario) -> int:
        """The size that puts the first sample between the thresholds, near their middle."""
        middle = (self.high + self.low) / 2 if self.scale_in is not None else self.high
        return scenario.clamp(math.ceil(scenario.trace.values[0] / (middle * scenario.capacity) - 1e-9))


Policy = TrackingPolicy | StepAlertPolicy


def hpa_default(target: float = DEFAULT_TARGET) -> TrackingPolicy:
    """Kubernetes' HPA with its default behaviour on CPU utilisation (see the module docstring)."""
    return TrackingPolicy(
        "hpa-default", Metric.UTILISATION, target, 0.1, HPA_SCALE_UP, HPA_SCALE_DOWN, interval=15.0,
        description=f"HPA default behaviour, CPU utilisation target {target:g}, every 15 s")


def seed_step() -> StepAlertPolicy:
    """The seeds' policy: +1 on HighCpuLoad (> 0.8 for 1m, cooldown 30 s), -1 on LowCpuLoad (< 0.2 for 1m,
    cooldown 60 s), rules evaluated every 15 s, run by alertscaler (re-evaluated while firing)."""
    return StepAlertPolicy(
        "seed-step",
        scale_out=StepPolicy(matchers=['alertname="HighCpuLoad"'], adjustment=1, cooldown=30.0),
        high=0.8, high_for=60.0,
        scale_in=StepPolicy(matchers=['alertname="LowCpuLoad"'], adjustment=-1, cooldown=60.0),
        low=0.2, low_for=60.0, interval=15.0,
        description="seeds: +1 if utilisation > 0.8 for 1m (cooldown 30s), -1 if < 0.2 for 1m (60s)")


def alertscaler_tracking(target: float = DEFAULT_TARGET, capacity: float = 40.0,
                         lookahead: float = 60.0) -> TrackingPolicy:
    """alertscaler's best default: PREDICTIVE target tracking on requests/s per instance.

    Two metrics through ``decide.tracking.recommend`` at the same target (``target`` x ``capacity``
    requests/s per instance): the request rate now, and the rate predicted ``lookahead`` seconds ahead (give
    the group's provisioning delay) on a least-squares line over the last 3 minutes, PromQL's
    ``predict_linear``. The largest recommendation wins, so a rising trend asks for the instances it will need
    by the time they are ready; scale-in needs BOTH metrics to agree, which guards it as HPA's 300 s
    stabilisation window does, without paying for 5 minutes of surplus after every peak (the window is 0).
    Requests/s, unlike CPU, does not saturate at 100 %, so a burst is sized in one decision. Tolerance and
    rate limits are HPA's."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be a utilisation in (0, 1], got {target}")
    return TrackingPolicy(
        "alertscaler-tracking", Metric.RPS, target * capacity,
        scale_down=DirectionRules(0.0, HPA_SCALE_DOWN.limits), lookahead=lookahead, trend_window=180.0,
        description=f"target tracking on requests/s per instance ({target * capacity:g}) now and predicted "
                    f"{lookahead:g}s ahead (3m trend), scale-in when both agree")


def alertscaler_step(target: float = DEFAULT_TARGET, cooldown: float = 60.0) -> StepAlertPolicy:
    """A step policy written for alertscaler: +50 % (at least +1) while utilisation > ``target`` for 1 min,
    -10 % (at least -1) while < ``target``/2 for 5 min; ``cooldown`` for scale-out (give it at least the
    provisioning delay, so a step is seen before the next), 2 min for scale-in."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be a utilisation in (0, 1], got {target}")
    return StepAlertPolicy(
        "alertscaler-step",
        scale_out=StepPolicy(matchers=['alertname="HighUtilisation"'], cooldown=cooldown, min_adjustment_step=1,
                             adjustment_type=AdjustmentType.PERCENT_CHANGE_IN_CAPACITY, adjustment=50),
        high=target, high_for=60.0,
        scale_in=StepPolicy(matchers=['alertname="LowUtilisation"'], cooldown=120.0, min_adjustment_step=1,
                            adjustment_type=AdjustmentType.PERCENT_CHANGE_IN_CAPACITY, adjustment=-10),
        low=target / 2, low_for=300.0,
        description=f"+50% if utilisation > {target:g} for 1m (cooldown {cooldown:g}s), "
                    f"-10% if < {target / 2:g} for 5m (120s)")


#: what a ``size_by`` query means in the simulator: the demand (requests/s) the group is offered
DEMAND_QUERY = 'sum(rate(http_requests_total{alertscaler_group="simulated"}[1m]))'


def alertscaler_sized(target: float = DEFAULT_TARGET, capacity: float = 40.0,
                      cooldown: float = 60.0) -> StepAlertPolicy:
    """alertscaler's step policy with ``size_by``: the alerts of ``alertscaler_step``, but each step sizes
    the group to ``ceil(demand / (target x capacity))`` from the live request rate (the simulator answers
    the ``size_by`` query with the demand it replays), so a burst is met in one step and a scale-in goes
    straight to what the load needs."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be a utilisation in (0, 1], got {target}")
    per_instance = target * capacity
    size_by = SizeBy(query=DEMAND_QUERY, per_instance=per_instance)
    return StepAlertPolicy(
        "alertscaler-sized",
        scale_out=StepPolicy(matchers=['alertname="HighUtilisation"'], adjustment=1, cooldown=cooldown,
                             size_by=size_by),
        high=target, high_for=60.0,
        scale_in=StepPolicy(matchers=['alertname="LowUtilisation"'], adjustment=-1, cooldown=120.0,
                            size_by=size_by),
        low=target / 2, low_for=300.0,
        description=f"if utilisation > {target:g} for 1m (cooldown {cooldown:g}s) or < {target / 2:g} for 5m "
                    f"(120s): size to ceil(requests/s / {per_instance:g}) (size_by)")
