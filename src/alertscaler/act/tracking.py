"""Target tracking, the acting part: every group's ``track.interval``, query its metrics from Prometheus and
let ``decide.tracking.recommend`` size it; record the decision and queue the action like any other.

Called by ``act.engine`` on the re-evaluation timer (in a thread: queries block). A decision is recorded
when the group's size changes, and when the reason for NOT changing it changes (no row every 15 s saying
"no change"). The recommendations and changes the stabilisation window and the rate limits look at are
kept in memory; as in HPA, the size found at the first evaluation counts as a recommendation, so after a
start or restart a scale-in still waits for the whole stabilisation window.

One cycle, for N due groups: their queries in N / ``prometheus.queries_per_request`` requests
(``ingest.combining``), ONE read of the groups' sizes, the verdicts, and only the groups with something to
record in write transactions of ``WRITE_CHUNK`` groups (each re-decided under its lock if its size moved
since the read). A group whose size another decision changes just after the read is seen at its next
interval, as if that decision had come just after the cycle.

A metric that cannot be read (no series, several series, bad PromQL, Prometheus down) is missing: the
group's ``fallback`` applies (hold the size, or a fixed safe capacity) and the decision says why.

A group with a ``predict`` section also gets its forecast at each evaluation (``act.prediction``: range
queries of its history, one group at a time, before the write transactions); the forecast's ask is combined
with the metrics' by ``decide.tracking.recommend`` (the larger wins; reason ``predicted`` when the forecast
scales the group out further than the metrics would). With ``predict.forecast_only`` the metrics alone decide;
when the forecast would have changed the outcome, the decision says so, and a move only the forecast wanted is
recorded as a ``forecast_only`` skip (from/to: what it would have done). ``forecasts()`` gives each predict
group's ``PredictionView`` (``/metrics``, ``status``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from alertscaler.act.ownership import Drives, drives_all
from alertscaler.act.prediction import GroupPredictor, History
from alertscaler.act.recording import About, Recorded, effective, gate_of, record
from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.decide.tracking import recommend
from alertscaler.model.controls import Pause
from alertscaler.model.decisions import Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import QueryError
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Direction
from alertscaler.model.prediction import Forecast, PredictionView
from alertscaler.model.tracking import Change, Recommendation, TrackingReason, TrackingVerdict
from alertscaler.prometheus.combining import one_by_one
from alertscaler.store.base import StateStore, Tx

log = logging.getLogger(__name__)

TRACK_POLICY = "track"  # the ``policy`` of tracking decisions
#: query -> its value (raises ``QueryError`` when it cannot give one)
Query = Callable[[str], float]
#: queries -> each distinct one's value or error (``ingest.combining.QueryCombiner.values_of``)
ValuesOf = Callable[[Sequence[str]], Mapping[str, float | QueryError]]
WRITE_CHUNK = 100  # groups recorded per write transaction: few commits, the write lock held a few ms at a time

_REASONS = {
    TrackingReason.SCALED: Reason.SCALED, TrackingReason.NO_CHANGE: Reason.NO_CHANGE,
    TrackingReason.STABILIZED: Reason.STABILIZED, TrackingReason.RATE_LIMITED: Reason.RATE_LIMITED,
    TrackingReason.AT_MAX: Reason.AT_MAX, TrackingReason.AT_MIN: Reason.AT_MIN,
    TrackingReason.FALLBACK: Reason.FALLBACK, TrackingReason.PREDICTED: Reason.PREDICTED,
}


@dataclass
class _Memory:
    next_at: datetime | None = None
    history: list[Recommendation] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    last_skip: str | None = None
    seeded: bool = False


@dataclass(frozen=True)
class _Plan:
    """One group's verdict this cycle, worked out on the size read before the write transaction."""

    name: str
    group: GroupConfig
    memory: _Memory
    values: list[float | None]
    problems: list[str]
    seen: GroupState
    pauses: tuple[Pause, ...] = ()  # operators' pauses, read once per cycle
    forecast: Forecast | None = None  # the group's forecast this cycle (a ``predict`` section)


class TrackingLoop:
    """``run(now)``: every due group's metrics in few requests (``values_of``), one read of the groups' sizes,
    then the decisions that must be recorded, ``WRITE_CHUNK`` groups per write transaction.

    A group whose verdict says nothing new (no change, and the same reason as last time: most groups, most
    cycles) costs no write at all. A group that is recorded is decided again under the group's lock if its
    size changed since the read (an alert's decision, a manual scale in between)."""

    def __init__(self, policy: PolicyFile, store: StateStore, query: Query,
                 values_of: ValuesOf | None = None, history: History | None = None) -> None:
        self.groups = {name: g for name, g in policy.groups.items() if g.track is not None}
        self.store = store
        self.values_of = values_of or one_by_one(query)
        self.memory = {name: _Memory() for name in self.groups}
        self.predictors = {name: GroupPredictor(name, g.predict, history)
                           for name, g in self.groups.items() if g.predict is not None}
        self.evaluated = 0  # group evaluations so far (for /metrics)
        self.drives: Drives = drives_all  # several replicas: the engine sets its replica's (act.ownership)

    def carry_from(self, old: TrackingLoop, groups: Collection[str]) -> None:
        """A reload (``act.reloading``): ``groups``, which it left unchanged, keep what ``old`` remembers of them
        (next evaluation, the stabilization window, recent changes); any other group starts as after a restart."""
        for name in groups:
            if name in self.memory and name in old.memory:
                self.memory[name] = old.memory[name]
            if name in self.predictors and name in old.predictors:
                self.predictors[name] = old.predictors[name]

    def forecasts(self) -> dict[str, PredictionView]:
        """Each ``predict`` group's last forecast (or why it has none)."""
        return {name: p.view() for name, p in self.predictors.items()}

    def run(self, now: datetime) -> list[Recorded]:
        due: list[tuple[str, GroupConfig, _Memory]] = []
        for name, group in self.groups.items():
            if not self.drives(name, now):
                continue
            memory = self.memory[name]
            track = group.track
            assert track is not None
            if memory.next_at is not None and now < memory.next_at:
                continue
            memory.next_at = now + timedelta(seconds=track.interval)
            due.append((name, group, memory))
        if not due:
            return []
        self.evaluated += len(due)
        answers = self.values_of([m.query for _, g, _ in due for m in g.track.metrics])  # type: ignore[union-attr]
        sizes = {state.name: state for state in self.store.group_states()}
        pauses = tuple(self.store.pauses())
        plans: list[_Plan] = []
        out: list[Recorded] = []
        for name, group, memory in due:
            values, problems = _values(group, answers)
            seen = sizes.get(name) or GroupState(name, group.initial_desired)
            predictor = self.predictors.get(name)
            forecast = predictor.forecast(now) if predictor is not None else None
            plan = _Plan(name, group, memory, values, problems, seen, pauses, forecast)
            if self._must_record(plan, now):
                plans.append(plan)
        for start in range(0, len(plans), WRITE_CHUNK):
            chunk = plans[start:start + WRITE_CHUNK]
            with self.store.transaction() as tx:
                locked = tx.lock_groups({plan.name: plan.group.initial_desired for plan in chunk})
                for plan in chunk:
                    out.extend(self._record(tx, plan, locked[plan.name], now))
        return out

    def _verdict(self, plan: _Plan, state: GroupState, now: datetime) -> tuple[TrackingVerdict, Verdict]:
        """(what ``recommend`` said, the verdict to record) for the group's row ``state``; prunes the memory to
        the window. The verdict is as ``act.recording`` will record it (a pause, a hold, a dry run applied)."""
        group, memory = plan.group, plan.memory
        desired = state.desired
        track = group.track
        assert track is not None
        rules = track.rules(group.bounds_at(now))
        keep = timedelta(seconds=max(rules.scale_down.stabilization, rules.scale_up.stabilization,
                                     *(lim.period for lim in (*rules.scale_up.limits, *rules.scale_down.limits)), 0))
        memory.history = [r for r in memory.history if r.at > now - keep]
        memory.changes = [c for c in memory.changes if c.at > now - keep]
        # as HPA does: the size found at start counts as a recommendation
        history = memory.history if memory.seeded else [*memory.history, Recommendation(now, desired)]
        forecast = plan.forecast
        ask = forecast.ask if forecast is not None and forecast.applies else None
        only = group.predict is not None and group.predict.forecast_only
        verdict = recommend(desired, plan.values, rules, now, history, memory.changes,
                            predicted=None if only else ask)
        message = _message(verdict, plan.values, plan.problems, forecast)
        said = Verdict(Outcome.ACTED if verdict.acts else Outcome.SKIPPED, _REASONS[verdict.reason], desired,
                       verdict.desired, message)
        if only and ask is not None:
            would = recommend(desired, plan.values, rules, now, history, memory.changes, predicted=ask)
            if would.desired != verdict.desired:
                if verdict.acts:
                    said = replace(said, message=f"{message} (forecast_only: with the forecast it would have been "
                                                 f"{desired} -> {would.desired})")
                else:
                    said = Verdict(Outcome.SKIPPED, Reason.FORECAST_ONLY, desired, would.desired,
                                   f"forecast_only: would have {would.message}; "
                                   f"{_message(verdict, plan.values, plan.problems, forecast)}")
        about = About(plan.name, TRACK_POLICY, Trigger.TRACKING, group)
        return verdict, effective(said, group, gate_of(plan.pauses, about, state, now))

    def _must_record(self, plan: _Plan, now: datetime) -> bool:
        """Decide on the size read; remember the recommendation; True when there is something to record."""
        verdict, said = self._verdict(plan, plan.seen, now)
        if said.acted or plan.memory.last_skip != _skip_key(said):
            return True
        self._remember(plan, verdict, plan.seen.desired, now)
        return False

    def _remember(self, plan: _Plan, verdict: TrackingVerdict, desired: int, now: datetime) -> None:
        memory = plan.memory
        if not memory.seeded:
            memory.history.append(Recommendation(now, desired))
            memory.seeded = True
        memory.history.append(Recommendation(now, verdict.raw))

    def _record(self, tx: Tx, plan: _Plan, state: GroupState, now: datetime) -> list[Recorded]:
        """Record the verdict on the size ``state`` held under the lock."""
        memory = plan.memory
        plan = replace(plan, pauses=tuple(tx.pauses()))
        verdict, said = self._verdict(plan, state, now)  # again: the size may have changed
        self._remember(plan, verdict, state.desired, now)
        if not said.acted:
            if memory.last_skip == _skip_key(said):
                return []  # already said
            memory.last_skip = _skip_key(said)
        else:
            memory.last_skip = None
            memory.changes.append(Change(now, state.desired, said.to_capacity))
        step = Direction.SCALE_OUT if said.to_capacity > state.desired else Direction.SCALE_IN
        return [record(tx, About(plan.name, TRACK_POLICY, Trigger.TRACKING, plan.group), said, now, state=state,
                       step=step)]


def _skip_key(said: Verdict) -> str:
    return f"{said.reason.value}:{said.to_capacity}"


def _values(group: GroupConfig, answers: Mapping[str, float | QueryError]) -> tuple[list[float | None], list[str]]:
    assert group.track is not None
    values: list[float | None] = []
    problems: list[str] = []
    for metric in group.track.metrics:
        answer = answers[metric.query]
        if isinstance(answer, QueryError):
            values.append(None)
            problems.append(str(answer))
        else:
            values.append(answer)
    return values, problems


def _message(verdict: TrackingVerdict, values: list[float | None], problems: list[str],
             forecast: Forecast | None = None) -> str:
    shown = ", ".join("missing" if v is None else f"{v:.4g}" for v in values)
    text = f"metric value(s) {shown}: {verdict.message}"
    if problems:
        text += " (" + "; ".join(problems) + ")"
    if forecast is not None:
        text += f"; {forecast.describe()}"
        if not forecast.applies:
            text += f" (not used: skill {forecast.skill:.2f}, the forecast does no better than the last value)"
    return text
