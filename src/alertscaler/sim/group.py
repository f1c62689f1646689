"""A user's own group, replayed: its ``track`` section, its step policies with the alerts that trigger them
(thresholds, ``for``, cooldowns, ``guard``, ``size_by``), its schedule and bounds, decided by the same
``decide`` functions the service calls. Used by ``alertscaler simulate -c FILE GROUP`` and ``backtest``.

The simulator has one curve, the group's demand in requests/s; each PromQL of the group is read as one of
the simulated metrics (``Kind``):

* ``rps``: requests/s per member, members still booting counted (``sum(rate(...)) / count(up{...})``);
* ``rps-ready``: requests/s per serving member;
* ``cpu``: CPU utilisation of serving members as a fraction of the request (a target or threshold above
  1.5 is read as percent), at most the scenario's CPU limit;
* ``total``: the group's requests/s (``sum(rate(...))``: a threshold on the whole group; ``size_by``).

Which one a query is comes from ``--as NAME=KIND`` (NAME: an alert name, or ``track.N`` for the N-th track
metric), else it is guessed and the guess is said (``GroupPolicy.notes``): a track target or a threshold of
at most 1.5 is ``cpu``; an alert expression with ``rate(`` summed and not divided is ``total``; else
``rps``. ``size_by``'s query is always the group's requests/s.

Alerts: a step policy is triggered by the alert rules of the policy file's ``rules`` section whose labels
(``alertname``, ``labels``, ``group`` → ``alertscaler_group``) its ``matchers`` match. A rule's ``expr`` must
end in a comparison with a number (``... > 0.8``); its ``for`` holds it pending. Conditions can also be given
(or replaced) with ``--when NAME='cpu > 0.8 for 1m'`` (labels ``alertname=NAME`` and
``alertscaler_group=GROUP``). Rules are evaluated every rule group ``interval`` (else the policy file's
``scrape.evaluation_interval`` / ``scrape_interval``); a firing alert steps when it starts firing and again
after each cooldown while it fires (checked every ``server.reevaluate_interval``), as the service
re-evaluates. A ``guard`` is read like an alert expression (unreadable: it holds, and a note says so).
Alertmanager's ``group_wait`` is not modelled (notifications arrive at once).

Tracking steps and step policies stamp the same cooldown clocks (``GroupState.stepped``), as the service's
recording does; a schedule's change of bounds and its ``desired`` (once per opening) resize without
touching them. ``dry_run`` is ignored: the replay shows what the group would do.

A ``predict`` section runs the service's forecasting (``sim.predicting``: the same ``decide.prediction`` calls
on the demand replayed so far, read as ``predict.query`` would give it: the group's requests/s, so give
``per_instance`` in requests/s), and its ask is combined with the track metrics as the service combines it.
``predict.forecast_only`` is ignored like ``dry_run``: the replay shows what the forecast would do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum

from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.config.prometheus_side import GROUP_LABEL, AlertRule
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.decide.schedules import active_windows, effective_bounds, next_change, scheduled_desired
from alertscaler.decide.tracking import recommend
from alertscaler.model.durations import format_duration, parse_duration
from alertscaler.model.groups import GroupState
from alertscaler.model.matchers import MatcherSet
from alertscaler.model.policies import Bounds, Direction, LiveCheck, StepPolicy
from alertscaler.sim.controllers import EPOCH, Alert, Decision, Observation, TrackingMemory
from alertscaler.sim.predicting import SimPredictor
from alertscaler.sim.scenarios import Metric, Scenario

__all__ = ["Condition", "GroupError", "GroupPolicy", "Kind", "Route", "group_policy", "parse_condition"]


class GroupError(ValueError):
    """The group cannot be replayed as asked: unknown group, an unreadable condition, a bad ``--as``."""


class Kind(str, Enum):
    RPS = "rps"
    RPS_READY = "rps-ready"
    CPU = "cpu"
    TOTAL = "total"


_CPU_PERCENT = 1.5  # a CPU target or threshold above this is in percent


def _read(kind: Kind, obs: Observation, percent: bool) -> float:
    """A query of ``kind`` as monitoring shows it (NaN: no series)."""
    if kind is Kind.TOTAL:
        return obs.demand
    if kind is Kind.RPS:
        return obs.value(Metric.RPS)
    if kind is Kind.RPS_READY:
        return obs.value(Metric.RPS_READY)
    value = obs.value(Metric.CPU)
    return value * 100.0 if percent else value


_OPS = {">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}
_COMPARISON = re.compile(r"^(?P<lhs>.*?)\s*(?P<op>>=|<=|>|<)\s*(?P<number>[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$",
                         re.DOTALL)


@dataclass(frozen=True)
class Condition:
    """An alert's (or a guard's) condition on a simulated metric: ``kind op threshold``, held ``hold`` s."""

    kind: Kind
    op: str
    threshold: float
    hold: float = 0.0
    source: str = ""

    @property
    def percent(self) -> bool:
        return self.kind is Kind.CPU and self.threshold > _CPU_PERCENT

    def holds(self, obs: Observation) -> bool:
        value = _read(self.kind, obs, self.percent)
        return not math.isnan(value) and _OPS[self.op](value, self.threshold)

    def text(self) -> str:
        held = f" for {format_duration(self.hold)}" if self.hold else ""
        return f"{self.kind.value}{'%' if self.percent else ''} {self.op} {self.threshold:g}{held}"


def parse_condition(text: str) -> Condition:
    """``KIND OP NUMBER [for DURATION]`` (``cpu > 0.8 for 1m``), as ``--when`` gives it."""
    hold = 0.0
    body = text.strip()
    found = re.search(r"\s+for\s+(\S+)\s*$", body)
    if found:
        try:
            hold = parse_duration(found.group(1))
        except ValueError as exc:
            raise GroupError(f"{text!r}: {exc}") from None
        body = body[:found.start()]
    match = _COMPARISON.match(body)
    kinds = ", ".join(k.value for k in Kind)
    if not match or match.group("lhs").strip() not in {k.value for k in Kind}:
        raise GroupError(f"{text!r}: a condition is KIND OP NUMBER [for DURATION] with KIND one of {kinds} and "
                         "OP one of > < >= <=, e.g. 'cpu > 0.8 for 1m'")
    return Condition(Kind(match.group("lhs").strip()), match.group("op"), float(match.group("number")), hold, text)


def _guess(expr: str, threshold: float) -> Kind:
    low = expr.lower()
    if threshold <= _CPU_PERCENT:
        return Kind.CPU
    if "rate(" in low and "sum" in low and "/" not in low:
        return Kind.TOTAL
    return Kind.RPS


def _from_expr(expr: str, hold: float, kind: Kind | None) -> Condition | None:
    """An alert expression ending in ``OP NUMBER`` as a condition (None: not readable)."""
    match = _COMPARISON.match(expr.strip())
    if not match:
        return None
    threshold = float(match.group("number"))
    return Condition(kind or _guess(match.group("lhs"), threshold), match.group("op"), threshold, hold, expr.strip())


@dataclass(frozen=True)
class Trigger:
    """One alert that routes to a step policy."""

    name: str
    condition: Condition


@dataclass(frozen=True)
class Route:
    """A step policy of the group with the alerts that trigger it and its guard's condition."""

    direction: Direction
    policy: StepPolicy
    triggers: tuple[Trigger, ...]
    guard: Condition | None = None


@dataclass(frozen=True)
class GroupPolicy:
    """What ``sim.running`` replays for a user's group (see the module docstring)."""

    name: str
    group: GroupConfig
    track_kinds: tuple[Kind, ...]
    routes: tuple[Route, ...]
    start: datetime
    rule_interval: float
    reevaluate_interval: float
    notes: tuple[str, ...] = ()
    description: str = ""
    interval: float | None = field(default=None)

    def __post_init__(self) -> None:
        if self.interval is None:
            ticks = [self.reevaluate_interval]
            if self.routes:
                ticks.append(self.rule_interval)
            if self.group.track is not None:
                ticks.append(self.group.track.interval)
            object.__setattr__(self, "interval", _gcd(ticks))

    @property
    def rps_target(self) -> float | None:
        """The first ``rps`` / ``rps-ready`` track target (for the HPA baseline on the same metric)."""
        return self._target(Kind.RPS, Kind.RPS_READY)

    @property
    def cpu_target(self) -> float | None:
        """The first ``cpu`` track target as a fraction."""
        target = self._target(Kind.CPU)
        return None if target is None else target / 100.0 if target > _CPU_PERCENT else target

    def _target(self, *kinds: Kind) -> float | None:
        if self.group.track is None:
            return None
        return next((m.target for m, k in zip(self.group.track.metrics, self.track_kinds, strict=True)
                     if k in kinds), None)

    def widest_bounds(self) -> Bounds:
        """The base bounds widened by what any schedule window sets (the oracle's bounds)."""
        low, high = self.group.min_size, self.group.max_size
        if self.group.schedule is not None:
            for window in self.group.schedule.windows:
                if window.max_size is not None:
                    high = max(high, window.max_size)
                if window.min_size is not None:
                    high = max(high, window.min_size)
        return Bounds(min_size=low, max_size=high)

    def controller(self, scenario: Scenario, initial: int) -> GroupController:
        return GroupController(self, scenario, initial)


def group_policy(policy: PolicyFile, name: str, *, start: datetime | None = None,
                 kinds: Mapping[str, str] | None = None, when: Mapping[str, str] | None = None) -> GroupPolicy:
    """The replay of group ``name`` of ``policy``. ``start``: the trace's first instant (schedules; default a
    fixed date); ``kinds``: ``--as`` (NAME or ``track.N`` → kind); ``when``: ``--when`` (alert name →
    condition text). Raises ``GroupError`` naming what is wrong."""
    if name not in policy.groups:
        known = ", ".join(sorted(policy.groups)) or "none"
        raise GroupError(f"no group {name!r} in the policy file (groups: {known})")
    group = policy.groups[name]
    kinds = dict(kinds or {})
    notes: list[str] = []
    chosen: dict[str, Kind] = {}
    for key, value in kinds.items():
        try:
            chosen[key] = Kind(value)
        except ValueError:
            raise GroupError(f"--as {key}={value}: the kind is one of {', '.join(k.value for k in Kind)}") from None
    track_kinds: list[Kind] = []
    if group.track is not None:
        for n, metric in enumerate(group.track.metrics, 1):
            key = f"track.{n}"
            kind = chosen.pop(key, None)
            if kind is None:
                kind = Kind.CPU if metric.target <= _CPU_PERCENT else Kind.RPS
                notes.append(f"track metric {n} ({_short(metric.query)}, target {metric.target:g}) read as "
                             f"{_kind_text(kind)}; say otherwise with --as {key}=KIND")
            if kind is Kind.TOTAL:
                raise GroupError(f"--as {key}=total: a track metric is per member (its target is per member)")
            track_kinds.append(kind)
    conditions = {n: parse_condition(text) for n, text in (when or {}).items()}
    rules = _alert_rules(policy)
    routes: list[Route] = []
    for direction, step in group.policies():
        triggers: list[Trigger] = []
        for rule in rules:
            labels = {"alertname": rule.alert, **rule.labels}
            target = rule.target_group()
            if target is not None:
                labels[GROUP_LABEL] = target
            if not step.matcher_set.matches(labels) or rule.alert in conditions:
                continue
            condition = _from_expr(rule.expr, rule.for_ or 0.0, chosen.get(rule.alert))
            if condition is None:
                raise GroupError(f"alert {rule.alert}: its expr does not end in a comparison with a number "
                                 f"({_short(rule.expr)}): give its condition with --when "
                                 f"{rule.alert}='cpu > 0.8 for 1m'")
            if rule.alert not in chosen:
                notes.append(f"alert {rule.alert} ({_short(rule.expr)}) read as {_kind_text(condition.kind)}; say "
                             f"otherwise with --as {rule.alert}=KIND")
            triggers.append(Trigger(rule.alert, condition))
        for alert, condition in conditions.items():
            if step.matcher_set.matches({"alertname": alert, GROUP_LABEL: name}):
                triggers.append(Trigger(alert, condition))
        if not triggers:
            notes.append(f"{direction.value}: no alert of the rules section (nor --when) matches "
                         f"{MatcherSet.parse(step.matchers)}: it never fires in the replay; give its alert with "
                         f"--when NAME='cpu > 0.8 for 1m'")
        guard = None
        if step.guard is not None:
            guard = _from_expr(step.guard, 0.0, None)
            if guard is None:
                notes.append(f"{direction.value}: guard {_short(step.guard)} is not a comparison with a number: "
                             "taken to hold")
        routes.append(Route(direction, step, tuple(triggers), guard))
    unknown = sorted(set(chosen) - {t.name for r in routes for t in r.triggers})
    if unknown:
        raise GroupError(f"--as {', '.join(unknown)}: no such track metric (track.N) or alert of the group")
    unused = sorted(set(conditions) - {t.name for r in routes for t in r.triggers})
    if unused:
        raise GroupError(f"--when {', '.join(unused)}: no step policy of group {name} matches "
                         f"alertname={unused[0]}, {GROUP_LABEL}={name}")
    if group.track is None and not any(r.triggers for r in routes):
        raise GroupError(f"group {name} has no track section and no step policy with an alert that can fire: "
                         "nothing would scale it in the replay")
    if group.dry_run:
        notes.append(f"group {name} is dry_run: the replay shows what it would do")
    if group.predict is not None and group.predict.forecast_only:
        notes.append(f"group {name}'s predict is forecast_only: the replay applies the forecast (what it would do)")
    rule_interval = _rule_interval(policy, group)
    policy_value = GroupPolicy(
        f"group {name}", group, tuple(track_kinds), tuple(routes), start or EPOCH, rule_interval,
        float(policy.server.reevaluate_interval), tuple(notes))
    return replace(policy_value, description=_describe(policy_value))


def _alert_rules(policy: PolicyFile) -> list[AlertRule]:
    if policy.rules is None:
        return []
    return [r for g in policy.rules.groups for r in g.rules if isinstance(r, AlertRule)]


def _rule_interval(policy: PolicyFile, group: GroupConfig) -> float:
    """The evaluation interval of the rule groups holding the group's alerts (the first found), else the
    policy file's ``scrape.evaluation_interval`` / ``scrape_interval``."""
    scrape = policy.scrape
    fallback = float(scrape.evaluation_interval if scrape.evaluation_interval is not None else scrape.scrape_interval)
    if policy.rules is None:
        return fallback
    for rule_group in policy.rules.groups:
        for rule in rule_group.rules:
            if isinstance(rule, AlertRule) and any(step.matcher_set.matches({"alertname": rule.alert, **rule.labels,
                                                                              GROUP_LABEL: rule.target_group() or ""})
                                                   for _, step in group.policies()):
                return float(rule_group.interval) if rule_group.interval is not None else fallback
    return fallback


def _kind_text(kind: Kind) -> str:
    return {Kind.RPS: "requests/s per member (booting ones counted)", Kind.RPS_READY: "requests/s per serving member",
            Kind.CPU: "CPU utilisation of the request", Kind.TOTAL: "the group's requests/s"}[kind]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 70 else text[:67] + "..."


def _describe(policy: GroupPolicy) -> str:
    group = policy.group
    parts = [f"bounds {group.min_size}..{group.max_size}"]
    if group.track is not None:
        track = group.track
        metrics = ", ".join(f"{k.value} {m.target:g}" for m, k in zip(track.metrics, policy.track_kinds, strict=True))
        rules = track.rules(group.bounds)
        parts.append(f"track {metrics} every {format_duration(track.interval)} (tolerance {rules.tolerance_up:g} "
                     f"above / {rules.tolerance_down:g} below, down window "
                     f"{format_duration(track.scale_down.stabilization)})")
    if group.predict is not None:
        p = group.predict
        seasons = ", ".join(format_duration(s) for s in p.seasons) or "none"
        parts.append(f"predict {p.per_instance:g} req/s per member {format_duration(p.lead)} ahead (seasons "
                     f"{seasons}, quantile {p.quantile:g})")
    for route in policy.routes:
        step = route.policy
        alerts = " or ".join(f"{t.name} ({t.condition.text()})" for t in route.triggers) or "no alert"
        how = f"size_by per {step.size_by.per_instance:g}" if step.size_by else (
            f"{step.adjustment:+d} {step.adjustment_type.value}")
        parts.append(f"{route.direction.value} on {alerts}: {how}, cooldown {format_duration(step.cooldown)}")
    if group.schedule is not None:
        parts.append(f"schedule of {len(group.schedule.windows)} window(s) ({group.schedule.timezone})")
    return "; ".join(parts)


def _gcd(values: Sequence[float]) -> float:
    millis = [max(1, round(v * 1000)) for v in values]
    out = 0
    for m in millis:
        out = math.gcd(out, m)
    return max(1.0, out / 1000.0)


class GroupController:
    """Decides for a ``GroupPolicy`` at every tick: the schedule, then tracking when due, then the alerts
    (evaluated when due) and the step policies of the firing ones."""

    def __init__(self, policy: GroupPolicy, scenario: Scenario, initial: int) -> None:
        self.policy = policy
        self.group = policy.group
        self.state = GroupState("simulated", initial)
        self.memory: TrackingMemory | None = None
        if self.group.track is not None:
            rules = self.group.track.rules(self.group.bounds)
            keep = max(rules.scale_up.stabilization, rules.scale_down.stabilization,
                       *(lim.period for lim in (*rules.scale_up.limits, *rules.scale_down.limits)), 0.0)
            self.memory = TrackingMemory(keep)
        self.predictor = SimPredictor(self.group.predict.rules()) if self.group.predict is not None else None
        self.alerts = [[Alert(t.condition.hold) for t in route.triggers] for route in policy.routes]
        self.next_track = 0.0
        self.next_rules = 0.0
        self.next_reevaluation = 0.0
        self.applied: set[str] = set()
        self.bounds = self.group.bounds
        self.next_schedule: datetime | None = None
        self.scheduled: tuple[str, int] | None = None

    def decide(self, t: float, obs: Observation) -> Decision:
        now = self.policy.start + timedelta(seconds=t)
        self.state = replace(self.state, desired=obs.desired)
        said: list[str] = []
        reason = "no_change"
        if self.group.schedule is not None:
            reason = self._schedule(now, said) or reason
        if self.memory is not None and t + 1e-6 >= self.next_track:
            self.next_track = t + self.group.track.interval  # type: ignore[union-attr]
            reason = self._track(now, obs, said) or reason
        if self.policy.routes:
            rules_due = t + 1e-6 >= self.next_rules
            if rules_due:
                self.next_rules = t + self.policy.rule_interval
            again = t + 1e-6 >= self.next_reevaluation
            if again:
                self.next_reevaluation = t + self.policy.reevaluate_interval
            reason = self._steps(t, now, obs, rules_due, again, said) or reason
        return Decision(self.state.desired, reason, "; ".join(said) or "no change")

    def _schedule(self, now: datetime, said: list[str]) -> str | None:
        schedule = self.group.schedule
        assert schedule is not None
        if self.next_schedule is None or now >= self.next_schedule:
            active = active_windows(schedule, now)
            self.bounds = effective_bounds(self.group.bounds, active)
            pick = scheduled_desired(active)
            self.scheduled = None if pick is None else (pick[0].key, pick[1])
            self.next_schedule = next_change(schedule, now) or now + timedelta(days=400)
        fresh = self.scheduled if self.scheduled is not None and self.scheduled[0] not in self.applied else None
        wanted = self.bounds.clamp(fresh[1] if fresh else self.state.desired)
        if fresh is not None:
            self.applied.add(fresh[0])
        if wanted == self.state.desired:
            return None
        said.append(f"schedule: bounds {self.bounds.min_size}..{self.bounds.max_size}: "
                    f"{self.state.desired} -> {wanted}")
        self.state = self.state.resized(wanted, now)
        return "scheduled"

    def _track(self, now: datetime, obs: Observation, said: list[str]) -> str | None:
        track, memory = self.group.track, self.memory
        assert track is not None and memory is not None
        current = self.state.desired
        rules = track.rules(self.bounds)
        values: list[float | None] = []
        for metric, kind in zip(track.metrics, self.policy.track_kinds, strict=True):
            value = _read(kind, replace(obs, desired=current), kind is Kind.CPU and metric.target > _CPU_PERCENT)
            values.append(None if math.isnan(value) else value)
        history, changes = memory.before(now, current)
        ask = None
        if self.predictor is not None:
            self.predictor.observe(now, obs.demand)
            forecast = self.predictor.forecast(now)
            ask = forecast.ask if forecast is not None and forecast.applies else None
        verdict = recommend(current, values, rules, now, history, changes, predicted=ask)
        memory.after(now, verdict.raw, current, verdict.desired)
        if not verdict.acts:
            return None
        direction = Direction.SCALE_OUT if verdict.desired > current else Direction.SCALE_IN
        self.state = self.state.stepped(direction, verdict.desired, now)
        said.append(f"track: {verdict.message}")
        return verdict.reason.value

    def _steps(self, t: float, now: datetime, obs: Observation, rules_due: bool, again: bool,
               said: list[str]) -> str | None:
        """Evaluate the alerts when the rules are due; a firing alert's step policy decides when the alert
        starts firing (its notification) and at each re-evaluation while it fires."""
        reason = None
        for route, alerts in zip(self.policy.routes, self.alerts, strict=True):
            started = False
            if rules_due:
                seen = replace(obs, desired=self.state.desired)
                for trigger, alert in zip(route.triggers, alerts, strict=True):
                    started = alert.evaluate(trigger.condition.holds(seen), t) or started
            if not any(a.firing for a in alerts) or not (started or again):
                continue
            step = route.policy
            live = None
            if step.checked:
                seen = replace(obs, desired=self.state.desired)
                held = None if step.guard is None else (route.guard.holds(seen) if route.guard else True)
                live = LiveCheck(guard_held=held, size_value=obs.demand if step.size_by is not None else None)
            verdict = evaluate_step(self.state, step, route.direction, self.bounds, now, live)
            if verdict.acted:
                self.state = self.state.stepped(route.direction, verdict.to_capacity, now)
                said.append(f"{route.direction.value}: {verdict.message}")
                reason = verdict.reason.value
            elif started:
                reason = reason or verdict.reason.value
        return reason
