"""The simulator's bridge to the real decision code: one controller per policy kind, keeping what alertscaler
keeps between decisions (recommendation history and changes for tracking; cooldown clocks in a ``GroupState``
and the alerts' pending/firing state for step policies) and calling ``decide`` for every decision.

Nothing here decides by itself: ``TrackingController`` calls ``decide.tracking.recommend``,
``StepController`` calls ``decide.evaluator.evaluate_step``. Called by ``sim.running`` once per evaluation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from alertscaler.decide.evaluator import evaluate_step
from alertscaler.decide.tracking import recommend
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Direction, LiveCheck
from alertscaler.model.tracking import Change, Recommendation
from alertscaler.sim.scenarios import Metric, Policy, Scenario, StepAlertPolicy, TrackingPolicy

__all__ = ["EPOCH", "Controller", "Decision", "Observation", "StepController", "TrackingController",
           "controller_for"]

#: Simulated time 0 as a date-time, for the decide functions (which take ``now``). Any fixed instant works.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Observation:
    """What the monitoring shows at a decision: the offered load and the group's instances."""

    demand: float      # requests/s arriving
    ready: int         # instances serving
    desired: int       # instances asked for (ready + still booting)
    capacity: float    # requests/s one instance serves

    @property
    def utilisation(self) -> float:
        """Average utilisation of the READY instances, as a CPU gauge shows it: at most 1.0."""
        if self.ready <= 0:
            return 1.0 if self.demand > 0 else 0.0
        return min(1.0, self.demand / (self.ready * self.capacity))

    def tracking_value(self, metric: Metric, demand: float | None = None) -> float:
        """The tracked metric averaged over ALL the group's instances, booting ones counted as idle
        (``demand``: another demand than the observed one, e.g. a predicted one)."""
        demand = self.demand if demand is None else demand
        if self.desired <= 0:
            return 1.0 if demand > 0 else 0.0
        if metric is Metric.RPS:
            return demand / self.desired
        if self.ready <= 0:
            return 0.0
        return min(1.0, demand / (self.ready * self.capacity)) * self.ready / self.desired


@dataclass(frozen=True)
class Decision:
    size: int          # the desired size after this decision
    reason: str        # the decide function's reason (``scaled``, ``cooldown``, ``stabilized`` ...)
    message: str


class Controller(Protocol):
    def decide(self, t: float, obs: Observation) -> Decision: ...


class TrackingController:
    """Target tracking through ``decide.tracking.recommend``."""

    def __init__(self, policy: TrackingPolicy, scenario: Scenario) -> None:
        self.policy = policy
        self.rules = policy.rules(scenario)
        self.history: deque[Recommendation] = deque()
        self.changes: deque[Change] = deque()
        self.seen: deque[tuple[float, float]] = deque()  # (t, metric value) for the lookahead's trend
        self._keep_history = max(self.rules.scale_up.stabilization, self.rules.scale_down.stabilization)
        self._keep_changes = max((limit.period for rules in (self.rules.scale_up, self.rules.scale_down)
                                  for limit in rules.limits), default=0.0)

    def decide(self, t: float, obs: Observation) -> Decision:
        now = EPOCH + timedelta(seconds=t)
        _prune(self.history, now - timedelta(seconds=self._keep_history))
        _prune(self.changes, now - timedelta(seconds=self._keep_changes))
        value = obs.tracking_value(self.policy.metric)
        values: tuple[float, ...] = (value,)
        if self.policy.lookahead > 0:
            values = (value, self._predicted(t, obs))
        verdict = recommend(obs.desired, values, self.rules, now, tuple(self.history), tuple(self.changes))
        self.history.append(Recommendation(now, verdict.raw))
        if verdict.acts:
            self.changes.append(Change(now, obs.desired, verdict.desired))
        return Decision(verdict.desired, verdict.reason.value, verdict.message)

    def _predicted(self, t: float, obs: Observation) -> float:
        """The metric ``lookahead`` seconds ahead on a least-squares line through the demand seen within
        ``trend_window`` (PromQL's ``predict_linear``), per instance of the current group, at least 0. The
        line is fitted to the DEMAND, not the per-instance value, which jumps when the group changes."""
        self.seen.append((t, obs.demand))
        while self.seen and self.seen[0][0] <= t - self.policy.trend_window:
            self.seen.popleft()
        ahead = _predict_linear(self.seen, t + self.policy.lookahead)
        return obs.tracking_value(self.policy.metric, demand=max(0.0, ahead))


class _Alert:
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
        self.high = _Alert(policy.high_for)
        self.low = _Alert(policy.low_for)

    def decide(self, t: float, obs: Observation) -> Decision:
        now = EPOCH + timedelta(seconds=t)
        self.state = replace(self.state, desired=obs.desired)
        utilisation = obs.utilisation
        started_high = self.high.evaluate(utilisation > self.policy.high, t)
        started_low = self.low.evaluate(utilisation < self.policy.low, t) if self.policy.scale_in else False
        if self.high.firing and (self.policy.reevaluate or started_high):
            direction, step = Direction.SCALE_OUT, self.policy.scale_out
        elif self.low.firing and self.policy.scale_in and (self.policy.reevaluate or started_low):
            direction, step = Direction.SCALE_IN, self.policy.scale_in
        else:
            return Decision(obs.desired, "no_alert", f"utilisation {utilisation:.2f}: no alert firing")
        live = None
        if step.checked:  # the live check at decision time: the alert's condition, and the demand for size_by
            live = LiveCheck(guard_held=True if step.guard is not None else None,
                             size_value=obs.demand if step.size_by is not None else None)
        verdict = evaluate_step(self.state, step, direction, self.bounds, now, live)
        if verdict.acted:
            self.state = self.state.stepped(direction, verdict.to_capacity, now)
        return Decision(verdict.to_capacity, verdict.reason.value, f"{direction.value}: {verdict.message}")


def controller_for(policy: Policy, scenario: Scenario, initial: int) -> Controller:
    if isinstance(policy, TrackingPolicy):
        return TrackingController(policy, scenario)
    return StepController(policy, scenario, initial)


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


def _prune(items: deque[Recommendation] | deque[Change], before: datetime) -> None:
    while items and items[0].at <= before:
        items.popleft()
