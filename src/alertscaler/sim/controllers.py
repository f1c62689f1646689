"""The simulator's bridge to the real decision code: one controller per policy kind, keeping what alertscaler
(or Kubernetes' HPA) keeps between decisions — recommendation history and changes for tracking, cooldown
clocks in a ``GroupState`` and the alerts' pending/firing state for step policies — and calling ``decide``
for every decision.

Nothing here decides by itself: ``TrackingController`` calls ``decide.tracking.recommend`` (alertscaler) or
``sim.hpa.hpa_replicas`` then ``decide.tracking.settle`` (HPA), ``StepController`` calls
``decide.evaluator.evaluate_step``. Called by ``sim.running`` once per evaluation; ``sim.group`` builds on the
same pieces for a user's own group.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from alertscaler.decide.evaluator import evaluate_step
from alertscaler.decide.tracking import recommend, settle
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Direction, LiveCheck
from alertscaler.model.tracking import Change, Recommendation
from alertscaler.sim.hpa import hpa_replicas
from alertscaler.sim.predicting import SimPredictor
from alertscaler.sim.scenarios import DEFAULT_CPU_LIMIT, Metric, Policy, Scenario, StepAlertPolicy, TrackingPolicy

__all__ = ["EPOCH", "Alert", "Controller", "Decision", "Observation", "StepController", "TrackingController",
           "TrackingMemory", "controller_for"]

#: Simulated time 0 as a date-time when the trace has no dates, for the decide functions (which take ``now``).
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Observation:
    """What the monitoring shows at a decision: the offered load and the group's instances."""

    demand: float      # requests/s arriving (averaged over the scenario's metric window)
    ready: int         # instances serving
    desired: int       # instances asked for (ready + still booting)
    capacity: float    # requests/s one instance serves at 100 % of its CPU request
    cpu_limit: float = DEFAULT_CPU_LIMIT

    @property
    def booting(self) -> int:
        return max(0, self.desired - self.ready)

    def value(self, metric: Metric, demand: float | None = None) -> float:
        """``metric`` as monitoring shows it (``demand``: another demand than the observed one, e.g. a
        predicted one). NaN when it has no value: a metric over serving instances while none serves."""
        demand = self.demand if demand is None else demand
        if metric is Metric.RPS:
            return demand / self.desired if self.desired > 0 else demand
        if self.ready <= 0:
            return math.nan
        if metric is Metric.RPS_READY:
            return demand / self.ready
        return min(self.cpu_limit, demand / (self.ready * self.capacity))


@dataclass(frozen=True)
class Decision:
    size: int          # the desired size after this decision
    reason: str        # the decide function's reason (``scaled``, ``cooldown``, ``stabilized`` ...)
    message: str


class Controller(Protocol):
    def decide(self, t: float, obs: Observation) -> Decision: ...


class TrackingMemory:
    """What a tracker keeps between evaluations: its recommendations (for the stabilisation windows) and its
    changes (for the rate limits), pruned to what the rules look at. The first evaluation records the size
    it finds as a recommendation, as HPA's ``recordInitialRecommendation`` and alertscaler's tracking loop do,
    so a scale-in right after the start still waits for the whole scale-down window."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self.history: deque[Recommendation] = deque()
        self.changes: deque[Change] = deque()
        self.seeded = False

    def before(self, now: datetime, current: int) -> tuple[tuple[Recommendation, ...], tuple[Change, ...]]:
        """Prune; seed at the first call; the history and changes to decide with at ``now``."""
        cutoff = now - timedelta(seconds=self.keep)
        for items in (self.history, self.changes):
            while items and items[0].at <= cutoff:
                items.popleft()
        if not self.seeded:
            self.history.append(Recommendation(now, current))
            self.seeded = True
        return tuple(self.history), tuple(self.changes)

    def after(self, now: datetime, raw: int, current: int, desired: int) -> None:
        self.history.append(Recommendation(now, raw))
        if desired != current:
            self.changes.append(Change(now, current, desired))


class TrackingController:
    """Target tracking: alertscaler's through ``decide.tracking.recommend``, HPA's through ``sim.hpa`` and
    ``decide.tracking.settle``."""

    def __init__(self, policy: TrackingPolicy, scenario: Scenario, start: datetime = EPOCH) -> None:
        self.policy = policy
        self.rules = policy.rules(scenario)
        self.start = start
        keep = max(self.rules.scale_up.stabilization, self.rules.scale_down.stabilization,
                   *(limit.period for rules in (self.rules.scale_up, self.rules.scale_down)
                     for limit in rules.limits), 0.0)
        self.memory = TrackingMemory(keep)
        self.seen: deque[tuple[float, float]] = deque()  # (t, demand) for the lookahead's trend
        self.predictor = SimPredictor(policy.predict) if policy.predict is not None else None

    def decide(self, t: float, obs: Observation) -> Decision:
        now = self.start + timedelta(seconds=t)
        history, changes = self.memory.before(now, obs.desired)
        policy = self.policy
        value = obs.value(policy.metric)
        if policy.hpa:
            raw = obs.desired if math.isnan(value) else hpa_replicas(
                obs.desired, obs.ready, obs.booting, value, policy.target, policy.tolerance)
            verdict = settle(obs.desired, raw, self.rules, now, history, changes, (raw,))
        else:
            values: tuple[float, ...] = (value,)
            if policy.lookahead > 0:
                values = (value, self._predicted(t, obs))
            ask = None
            if self.predictor is not None:
                self.predictor.observe(now, obs.demand)
                forecast = self.predictor.forecast(now)
                ask = forecast.ask if forecast is not None and forecast.applies else None
            verdict = recommend(obs.desired, values, self.rules, now, history, changes, predicted=ask)
        self.memory.after(now, verdict.raw, obs.desired, verdict.desired)
        return Decision(verdict.desired, verdict.reason.value, verdict.message)

    def _predicted(self, t: float, obs: Observation) -> float:
        """The metric ``lookahead`` seconds ahead on a least-squares line through the demand seen within
        ``trend_window`` (PromQL's ``predict_linear``), at least 0. The line is fitted to the DEMAND, not the
        per-instance value, which jumps when the group changes."""
        self.seen.append((t, obs.demand))
        while self.seen and self.seen[0][0] <= t - self.policy.trend_window:
            self.seen.popleft()
        ahead = _predict_linear(self.seen, t + self.policy.lookahead)
        return obs.value(self.policy.metric, demand=max(0.0, ahead))


class Alert:
    """A Prometheus alerting rule's state: pending while its condition holds, firing once it has held for
    ``hold`` seconds (checked at each evaluation, as Prometheus does); inactive as soon as it does not."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.active_since: float | None = None
        self.firing = False

    def evaluate(self, condition: bool, t: float) -> bool:
        """Update at evaluation time ``t``; True when the alert STARTS firing now."""
        if not condition:
            self.active_since, self.firing = None, False
            return False
        if self.active_since is None:
            self.active_since = t
        if not self.firing and t - self.active_since >= self.hold - 1e-9:
            self.firing = True
            return True
        return False


class StepController:
    """Alert-driven step policies through ``decide.evaluator.evaluate_step``, with the cooldown clocks in a
    ``GroupState`` exactly as alertscaler keeps them."""

    def __init__(self, policy: StepAlertPolicy, scenario: Scenario, initial: int) -> None:
        self.policy = policy
        self.bounds = scenario.bounds
        self.state = GroupState("simulated", initial)
        self.high = Alert(policy.high_for)
        self.low = Alert(policy.low_for)

    def decide(self, t: float, obs: Observation) -> Decision:
        now = EPOCH + timedelta(seconds=t)
        self.state = replace(self.state, desired=obs.desired)
        value = obs.value(self.policy.metric)
        known = not math.isnan(value)  # no series: neither alert's expression gives a sample
        started_high = self.high.evaluate(known and value > self.policy.high, t)
        started_low = (self.low.evaluate(known and value < self.policy.low, t) if self.policy.scale_in
                       else False)
        if self.high.firing and (self.policy.reevaluate or started_high):
            direction, step = Direction.SCALE_OUT, self.policy.scale_out
        elif self.low.firing and self.policy.scale_in and (self.policy.reevaluate or started_low):
            direction, step = Direction.SCALE_IN, self.policy.scale_in
        else:
            return Decision(obs.desired, "no_alert", f"{self.policy.metric.value} {value:.2f}: no alert firing")
        live = None
        if step.checked:  # the live check at decision time: the alert's condition, and the demand for size_by
            live = LiveCheck(guard_held=True if step.guard is not None else None,
                             size_value=obs.demand if step.size_by is not None else None)
        verdict = evaluate_step(self.state, step, direction, self.bounds, now, live)
        if verdict.acted:
            self.state = self.state.stepped(direction, verdict.to_capacity, now)
        return Decision(verdict.to_capacity, verdict.reason.value, f"{direction.value}: {verdict.message}")


def controller_for(policy: Policy, scenario: Scenario, initial: int) -> Controller:
    """The controller of a built-in policy, or the one a policy makes itself (``controller(scenario,
    initial)``: a user's own group)."""
    if isinstance(policy, TrackingPolicy):
        return TrackingController(policy, scenario)
    if isinstance(policy, StepAlertPolicy):
        return StepController(policy, scenario, initial)
    make: Any = getattr(policy, "controller", None)
    if make is None:
        raise TypeError(f"no controller for {type(policy).__name__}")
    controller: Controller = make(scenario, initial)
    return controller


def _predict_linear(points: deque[tuple[float, float]], at: float) -> float:
    """Least-squares line through ``points`` evaluated at ``at`` (the last value when there is no slope)."""
    n = len(points)
    if n < 2:
        return points[-1][1]
    mean_t = sum(p[0] for p in points) / n
    mean_v = sum(p[1] for p in points) / n
    spread = sum((p[0] - mean_t) ** 2 for p in points)
    slope = sum((p[0] - mean_t) * (p[1] - mean_v) for p in points) / spread
    return mean_v + slope * (at - mean_t)
