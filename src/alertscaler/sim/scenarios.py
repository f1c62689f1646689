"""What the simulator replays (a ``Scenario``) and the policies it replays it through, as frozen values.

Owns the policy descriptions and the built-in baselines; the decisions themselves are made by the real
``decide`` code (``sim.controllers`` calls ``decide.tracking.recommend`` / ``settle`` and
``decide.evaluator.evaluate_step``). Called by ``sim.running``, ``sim.group`` (a user's own group), the
``alertscaler simulate`` command and ``bench/decision_quality.py``.

The metrics a policy can see (``Metric``), from the demand (requests/s) and the group's instances:

* ``RPS``: requests/s per member, the booting members counted (idle): what a query such as
  ``sum(rate(requests[1m])) / count(up{alertscaler_group="web"})`` gives, since a member is a scrape target
  (``up`` 0) while it boots. Offered load: it does not saturate;
* ``RPS_READY``: requests/s per SERVING member (what a Kubernetes Pods metric averages over ready pods);
* ``CPU``: CPU utilisation as a share of the request, averaged over serving members: ``demand / (ready x
  capacity)``, at most ``Scenario.cpu_limit`` (limits / requests: with limits above requests a busy pod's
  CPU goes above 100 % of its request; with limits = requests it saturates at 100 %).

Policies:

* ``TrackingPolicy``: target tracking on one metric, every ``interval``. ``hpa=False``: the way alertscaler's
  ``track`` section decides (``decide.tracking.recommend`` on the metric's value); ``hpa=True``: Kubernetes'
  HPA, whose replica calculator (``sim.hpa``) treats booting (pending) pods as 0 % on a scale-up and leaves
  them out on a scale-down, then HPA's behaviour (``decide.tracking.settle``). Both seed the stabilisation
  window with the size found at the first evaluation, as HPA (``recordInitialRecommendation``) and the
  service do.
* ``StepAlertPolicy``: a high and a low alert on a metric (default: CPU), each with a ``for`` duration like a
  Prometheus alerting rule evaluated every ``interval``; a firing alert runs its ``StepPolicy`` through
  ``decide.evaluator.evaluate_step`` with the group's cooldown clocks. With ``reevaluate`` (alertscaler's
  behaviour) an alert that stays firing steps again after each cooldown.

Baselines (measured in every ``alertscaler simulate`` run), both with HPA's default behaviour (tolerance 0.1,
every 15 s, up +100 % or +4 pods per 15 s, down after a 300 s window at most -100 % per 15 s):

* ``hpa_rps(target)``: HPA on requests/s per pod, the same metric as alertscaler's tracking: the fair one;
* ``hpa_cpu(target, cpu_limit)``: HPA on CPU utilisation of the request (can pass 100 % up to the limit);
* ``seed_step()``: the seeds' step policy (+1 when CPU > 0.8 for 1m, -1 when < 0.2 for 1m).

alertscaler's own: ``alertscaler_tracking(target, capacity)`` — the service's DEFAULT ``track`` behaviour
(``config.groups.TrackConfig``'s defaults, read from there) on requests/s per member;
``alertscaler_forecasting(target, capacity, lead)`` — the same with a ``predict`` section at ITS defaults
(``config.prediction.PredictConfig``'s; ``lead`` the start-up delay, as a user sets it); and the alternatives
that are not the default: ``alertscaler_predictive`` (a second metric predicted one start-up delay ahead, no
scale-down window), ``alertscaler_step``, ``alertscaler_sized`` (steps sized live with ``size_by``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from alertscaler.config.groups import TrackConfig, TrackMetric
from alertscaler.config.prediction import PredictConfig
from alertscaler.model.policies import AdjustmentType, Bounds, SizeBy, StepPolicy
from alertscaler.model.prediction import PredictRules
from alertscaler.model.tracking import HPA_SCALE_DOWN, HPA_SCALE_UP, DirectionRules, TrackingRules
from alertscaler.sim.traces import Trace

__all__ = [
    "DEFAULT_CPU_LIMIT",
    "DEFAULT_TARGET",
    "Metric",
    "Policy",
    "Scenario",
    "StepAlertPolicy",
    "TrackingPolicy",
    "alertscaler_forecasting",
    "alertscaler_predictive",
    "alertscaler_sized",
    "alertscaler_step",
    "alertscaler_tracking",
    "hpa_cpu",
    "hpa_rps",
    "seed_step",
    "service_track_defaults",
]

DEFAULT_TARGET = 0.7
#: CPU limit / CPU request of the simulated pods: a busy pod's CPU utilisation can reach 200 % of its request
DEFAULT_CPU_LIMIT = 2.0


class Metric(str, Enum):
    RPS = "rps"                  # requests/s per member, booting members counted (idle)
    RPS_READY = "rps-ready"      # requests/s per serving member
    CPU = "cpu"                  # CPU utilisation of the request over serving members, at most cpu_limit


@dataclass(frozen=True)
class Scenario:
    """A trace replayed against a group: ``capacity`` requests/s one instance serves at 100 % of its CPU
    request (demand beyond the READY instances' capacity is unserved), new instances serve only ``delay``
    seconds after they were asked for (scale-in is immediate), policies decide every ``interval`` seconds
    unless they have their own and see the demand averaged over the last ``metric_window`` seconds, as a
    Prometheus ``rate(...[1m])`` shows it (0: the instantaneous demand).

    The oracle holds ``target`` utilisation with no delay: ``ceil(demand / (capacity x target))`` instances,
    within ``min_size``..``max_size``; under-/over-provisioning is measured against it. ``cpu_limit``: CPU
    limit / request (see ``Metric.CPU``). Every policy starts at ``initial`` instances, all ready (default:
    the oracle's size for the first sample)."""

    trace: Trace
    capacity: float = 40.0
    delay: float = 60.0
    interval: float = 15.0
    min_size: int = 1
    max_size: int = 20
    initial: int | None = None
    metric_window: float = 60.0
    target: float = DEFAULT_TARGET
    cpu_limit: float = DEFAULT_CPU_LIMIT

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
        if not (math.isfinite(self.target) and 0 < self.target <= 1):
            raise ValueError(f"target must be a utilisation in (0, 1], got {self.target}")
        if not (math.isfinite(self.cpu_limit) and self.cpu_limit >= 1):
            raise ValueError(f"the CPU limit is a multiple of the request, at least 1, got {self.cpu_limit}")

    @property
    def bounds(self) -> Bounds:
        return Bounds(min_size=self.min_size, max_size=self.max_size)

    @property
    def per_instance(self) -> float:
        """Requests/s one instance carries at the target utilisation."""
        return self.capacity * self.target

    def needed(self, demand: float) -> int:
        """The oracle's size for ``demand``: at the target utilisation, within the bounds."""
        return self.clamp(math.ceil(round(demand / self.per_instance, 9)))

    def clamp(self, size: int) -> int:
        return max(self.min_size, min(self.max_size, size))

    @property
    def initial_size(self) -> int:
        return self.initial if self.initial is not None else self.needed(self.trace.values[0])


@dataclass(frozen=True)
class TrackingPolicy:
    name: str
    metric: Metric
    target: float                      # a utilisation (CPU) or requests/s per instance
    tolerance: float = 0.1
    scale_up: DirectionRules = HPA_SCALE_UP
    scale_down: DirectionRules = HPA_SCALE_DOWN
    interval: float | None = None      # None: the scenario's
    description: str = ""
    hpa: bool = False                  # True: HPA's replica calculator (booting pods as Kubernetes treats them)
    lookahead: float = 0.0             # > 0: a second metric, the same one predicted this far ahead (s) ...
    trend_window: float = 300.0        # ... from a least-squares line over this window (predict_linear)
    predict: PredictRules | None = None  # a ``predict`` section: the forecast's ask combined (decide.prediction)

    def __post_init__(self) -> None:
        if self.lookahead < 0 or not self.trend_window > 0:
            raise ValueError(f"{self.name}: lookahead must be >= 0 and trend_window > 0")
        if not (math.isfinite(self.target) and self.target > 0):
            raise ValueError(f"{self.name}: target must be > 0, got {self.target}")
        if self.hpa and (self.lookahead or self.predict is not None):
            raise ValueError(f"{self.name}: HPA has no lookahead and no forecast")

    def rules(self, scenario: Scenario) -> TrackingRules:
        targets = (self.target, self.target) if self.lookahead > 0 else (self.target,)
        return TrackingRules(targets=targets, tolerance=self.tolerance, scale_up=self.scale_up,
                             scale_down=self.scale_down, min_size=scenario.min_size, max_size=scenario.max_size)


@dataclass(frozen=True)
class StepAlertPolicy:
    name: str
    scale_out: StepPolicy
    high: float                        # the high alert: the metric > high ...
    high_for: float                    # ... for this long (seconds)
    scale_in: StepPolicy | None = None
    low: float = 0.0                   # the low alert: < low for ``low_for`` seconds
    low_for: float = 0.0
    reevaluate: bool = True            # alertscaler: a firing alert steps again after each cooldown
    interval: float | None = None      # rule evaluation interval; None: the scenario's
    description: str = field(default="")
    metric: Metric = Metric.CPU

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high:
            raise ValueError(f"{self.name}: need 0 <= low ({self.low}) < high ({self.high})")
        if self.high_for < 0 or self.low_for < 0:
            raise ValueError(f"{self.name}: alert 'for' durations must be >= 0")


class Policy(Protocol):
    """What ``sim.running`` needs of a policy: ``TrackingPolicy``, ``StepAlertPolicy`` or a user's own group
    (``sim.group.GroupPolicy``); ``sim.controllers.controller_for`` makes its controller."""

    @property
    def name(self) -> str: ...

    @property
    def interval(self) -> float | None: ...

    @property
    def description(self) -> str: ...


def service_track_defaults() -> TrackingRules:
    """The rules a ``track`` section with nothing but a metric gets in the service (``TrackConfig``'s
    defaults: tolerance, scale_up, scale_down), read from the config model itself so they cannot drift."""
    return TrackConfig(metrics=[TrackMetric(query="simulated", target=1.0)]).rules(Bounds(min_size=0, max_size=1))


def _service_interval() -> float:
    return float(TrackConfig(metrics=[TrackMetric(query="simulated", target=1.0)]).interval)


def _hpa_text() -> str:
    return "HPA default behaviour (tolerance 0.1, every 15 s, up +100 % or +4 per 15 s, down after a 300 s window)"


def hpa_rps(target: float) -> TrackingPolicy:
    """Kubernetes' HPA on requests/s per pod (a Pods metric, averaged over ready pods), ``target`` requests/s
    per pod: the same metric as alertscaler's default tracking."""
    return TrackingPolicy(
        "hpa-rps", Metric.RPS_READY, target, 0.1, HPA_SCALE_UP, HPA_SCALE_DOWN, interval=15.0, hpa=True,
        description=f"{_hpa_text()} on requests/s per ready pod, target {target:g}")


def hpa_cpu(target: float = DEFAULT_TARGET, cpu_limit: float = DEFAULT_CPU_LIMIT) -> TrackingPolicy:
    """Kubernetes' HPA on CPU utilisation of the request (``target``, a fraction), pods whose CPU limit is
    ``cpu_limit`` x the request (give the scenario's: it only names it here)."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be a utilisation in (0, 1], got {target}")
    return TrackingPolicy(
        "hpa-cpu", Metric.CPU, target, 0.1, HPA_SCALE_UP, HPA_SCALE_DOWN, interval=15.0, hpa=True,
        description=f"{_hpa_text()} on CPU utilisation of the request, target {target:g}; "
                    f"limits {cpu_limit:g} x requests (CPU up to {cpu_limit * 100:.0f} %)")


def seed_step() -> StepAlertPolicy:
    """The seeds' policy: +1 on HighCpuLoad (> 0.8 for 1m, cooldown 30 s), -1 on LowCpuLoad (< 0.2 for 1m,
    cooldown 60 s), rules evaluated every 15 s, run by alertscaler (re-evaluated while firing)."""
    return StepAlertPolicy(
        "seed-step",
        scale_out=StepPolicy(matchers=['alertname="HighCpuLoad"'], adjustment=1, cooldown=30.0),
        high=0.8, high_for=60.0,
        scale_in=StepPolicy(matchers=['alertname="LowCpuLoad"'], adjustment=-1, cooldown=60.0),
        low=0.2, low_for=60.0, interval=15.0,
        description="seeds: +1 if CPU > 0.8 for 1m (cooldown 30s), -1 if < 0.2 for 1m (60s)")


def alertscaler_tracking(target: float = DEFAULT_TARGET, capacity: float = 40.0) -> TrackingPolicy:
    """alertscaler's DEFAULT target tracking: a ``track`` section with one metric, requests/s per member
    (``target`` x ``capacity``), and nothing else: the service's defaults for tolerance, interval and both
    directions (``service_track_defaults``), the window seeded as the service seeds it."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be a utilisation in (0, 1], got {target}")
    rules = service_track_defaults()
    return TrackingPolicy(
        "alertscaler-default", Metric.RPS, target * capacity, rules.tolerance, rules.scale_up, rules.scale_down,
        interval=_service_interval(),
        description=f"the service's default track: requests/s per member (booting ones counted), target "
                    f"{target * capacity:g}; tolerance {rules.tolerance_up:g} above / {rules.tolerance_down:g} "
                    f"below, scale-down window "
                    f"{rules.scale_down.stabilization:g}s, HPA's rate limits")


def alertscaler_forecasting(target: float = DEFAULT_TARGET, capacity: float = 40.0,
                            lead: float = 120.0) -> TrackingPolicy:
    """alertscaler's default ``track`` section WITH a ``predict`` section at its defaults (``PredictConfig``'s,
    read from the config model): the group's requests/s forecast from the demand replayed so far, ``lead``
    seconds ahead (give the start-up delay, as a user does), ``target`` x ``capacity`` per member; the forecast's
    ask and the metric's combined (the larger wins)."""
    base = alertscaler_tracking(target, capacity)
    predict = PredictConfig(query="simulated", per_instance=target * capacity, lead=lead)
    return replace(base, name="default+predict", predict=predict.rules(),
                   description=f"{base.description}; with predict at its defaults (lead {lead:g}s, quantile "
                               f"{predict.quantile:g}, min_skill {predict.min_skill:g}, seasons 1d and 1w)")


def alertscaler_predictive(target: float = DEFAULT_TARGET, capacity: float = 40.0,
                           lookahead: float = 60.0) -> TrackingPolicy:
    """NOT the default: target tracking on requests/s per member now and predicted ``lookahead`` seconds ahead
    (a least-squares line over 3 minutes, PromQL's ``predict_linear``), the larger wins, no scale-down window
    (scale-in needs both metrics to agree). It was chosen on WorldCup98 alone; kept as a candidate."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be a utilisation in (0, 1], got {target}")
    return TrackingPolicy(
        "predictive", Metric.RPS, target * capacity,
        scale_down=DirectionRules(0.0, HPA_SCALE_DOWN.limits), lookahead=lookahead, trend_window=180.0,
        description=f"requests/s per member ({target * capacity:g}) now and predicted {lookahead:g}s ahead "
                    "(3m trend), no scale-down window")


def alertscaler_step(target: float = DEFAULT_TARGET, cooldown: float = 60.0) -> StepAlertPolicy:
    """A step policy written for alertscaler: +50 % (at least +1) while CPU > ``target`` for 1 min, -10 % (at
    least -1) while < ``target``/2 for 5 min; ``cooldown`` for scale-out (give it at least the start-up
    delay, so a step is seen before the next), 2 min for scale-in."""
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
        description=f"+50% if CPU > {target:g} for 1m (cooldown {cooldown:g}s), "
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
        description=f"if CPU > {target:g} for 1m (cooldown {cooldown:g}s) or < {target / 2:g} for 5m "
                    f"(120s): size to ceil(requests/s / {per_instance:g}) (size_by)")
