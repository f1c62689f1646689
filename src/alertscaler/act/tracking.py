"""Target tracking, the acting part: every group's ``track.interval``, query its metrics from Prometheus and
let ``decide.tracking.recommend`` size it; record the decision and queue the action like any other.

Called by ``act.engine`` on the re-evaluation timer (in a thread: queries block). A decision is recorded
when the group's size changes, and when the reason for NOT changing it changes (no row every 15 s saying
"no change"). The recommendations and changes the stabilisation window and the rate limits look at are
kept in memory; as in HPA, the size found at the first evaluation counts as a recommendation, so after a
start or restart a scale-in still waits for the whole stabilisation window.

A metric that cannot be read (no series, several series, bad PromQL, Prometheus down) is missing: the
group's ``fallback`` applies (hold the size, or a fixed safe capacity) and the decision says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.decide.tracking import Change, Recommendation, TrackingReason, TrackingVerdict, recommend
from alertscaler.model.decisions import Outcome, Reason, Trigger
from alertscaler.model.errors import QueryError
from alertscaler.store.base import NewDecision, StateStore

log = logging.getLogger(__name__)

TRACK_POLICY = "track"  # the ``policy`` of tracking decisions
#: query -> its value (raises ``QueryError`` when it cannot give one)
Query = Callable[[str], float]
# (group, outcome, reason, action id) for act.engine: metrics and waking the group's worker
Tracked = tuple[str, Outcome, Reason, int | None]

_REASONS = {
    TrackingReason.SCALED: Reason.SCALED, TrackingReason.NO_CHANGE: Reason.NO_CHANGE,
    TrackingReason.STABILIZED: Reason.STABILIZED, TrackingReason.RATE_LIMITED: Reason.RATE_LIMITED,
    TrackingReason.AT_MAX: Reason.AT_MAX, TrackingReason.AT_MIN: Reason.AT_MIN,
    TrackingReason.FALLBACK: Reason.FALLBACK,
}


@dataclass
class _Memory:
    next_at: datetime | None = None
    history: list[Recommendation] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    last_skip: str | None = None
    seeded: bool = False


class TrackingLoop:
    def __init__(self, policy: PolicyFile, store: StateStore, query: Query) -> None:
        self.groups = {name: g for name, g in policy.groups.items() if g.track is not None}
        self.store = store
        self.query = query
        self.memory = {name: _Memory() for name in self.groups}

    def run(self, now: datetime) -> list[Tracked]:
        out: list[Tracked] = []
        for name, group in self.groups.items():
            memory = self.memory[name]
            track = group.track
            assert track is not None
            if memory.next_at is not None and now < memory.next_at:
                continue
            memory.next_at = now + timedelta(seconds=track.interval)
            values, problems = self._values(group)
            out.extend(self._decide(name, group, memory, values, problems, now))
        return out

    def _values(self, group: GroupConfig) -> tuple[list[float | None], list[str]]:
        assert group.track is not None
        values: list[float | None] = []
        problems: list[str] = []
        for metric in group.track.metrics:
            try:
                values.append(self.query(metric.query))
            except QueryError as exc:
                values.append(None)
                problems.append(str(exc))
        return values, problems

    def _decide(self, name: str, group: GroupConfig, memory: _Memory, values: list[float | None],
                problems: list[str], now: datetime) -> list[Tracked]:
        track = group.track
        assert track is not None
        rules = track.rules(group.bounds_at(now))
        keep = timedelta(seconds=max(rules.scale_down.stabilization, rules.scale_up.stabilization,
                                     *(lim.period for lim in (*rules.scale_up.limits, *rules.scale_down.limits)), 0))
        memory.history = [r for r in memory.history if r.at > now - keep]
        memory.changes = [c for c in memory.changes if c.at > now - keep]
        with self.store.transaction() as tx:
            state = tx.lock_group(name, group.initial_desired)
            if not memory.seeded:  # as HPA does: the size found at start counts as a recommendation
                memory.history.append(Recommendation(now, state.desired))
                memory.seeded = True
            verdict = recommend(state.desired, values, rules, now, memory.history, memory.changes)
            memory.history.append(Recommendation(now, verdict.raw))
            message = _message(verdict, values, problems)
            reason = _REASONS[verdict.reason]
            if group.dry_run and verdict.acts:
                reason, acts = Reason.DRY_RUN, False
            else:
                acts = verdict.acts
            if not acts:
                if memory.last_skip == f"{reason.value}:{verdict.desired}":
                    return []  # already said
                memory.last_skip = f"{reason.value}:{verdict.desired}"
                tx.add_decision(NewDecision(
                    group=name, policy=TRACK_POLICY, trigger=Trigger.TRACKING, outcome=Outcome.SKIPPED,
                    reason=reason, from_capacity=state.desired, to_capacity=verdict.desired if not group.dry_run
                    else state.desired, message=message, decided_at=now))
                log.info("decision group=%s policy=track from=%s to=%s outcome=skipped reason=%s: %s",
                         name, state.desired, verdict.desired, reason.value, message)
                return [(name, Outcome.SKIPPED, reason, None)]
            memory.last_skip = None
            decision_id = tx.add_decision(NewDecision(
                group=name, policy=TRACK_POLICY, trigger=Trigger.TRACKING, outcome=Outcome.ACTED, reason=reason,
                from_capacity=state.desired, to_capacity=verdict.desired, message=message, decided_at=now))
            direction_out = verdict.desired > state.desired
            saved = type(state)(name, verdict.desired,
                                now if direction_out else state.last_scale_out_at,
                                state.last_scale_in_at if direction_out else now, now)
            tx.save_group(saved)
            action_id = tx.add_action(decision_id, name, state.desired, verdict.desired, now)
            memory.changes.append(Change(now, state.desired, verdict.desired))
        log.info("decision group=%s policy=track from=%s to=%s outcome=acted reason=%s: %s",
                 name, state.desired, verdict.desired, reason.value, message)
        return [(name, Outcome.ACTED, reason, action_id)]


def _message(verdict: TrackingVerdict, values: list[float | None], problems: list[str]) -> str:
    shown = ", ".join("missing" if v is None else f"{v:.4g}" for v in values)
    text = f"metric value(s) {shown}: {verdict.message}"
    if problems:
        text += " (" + "; ".join(problems) + ")"
    return text
