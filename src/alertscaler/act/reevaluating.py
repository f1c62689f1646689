"""Alerts that STAY firing keep producing steps, at most one per cooldown, until resolved or at a bound.

Alertmanager only re-sends a firing alert every ``repeat_interval`` (and those re-sends are duplicates by
design), so alertscaler re-evaluates its active alerts on its own timer. A skip is recorded once, when its
reason changes (no "cooldown" row every tick). A firing alert not confirmed (re-sent) for
``alert_stale_after`` stops stepping and is dropped with reason ``stale``.

Called by ``act.engine`` every ``server.reevaluate_interval``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from alertscaler.act.processing import MAX_ALERTS_PER_DECISION, Recorded, apply_verdict
from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.ingest.routing import Route
from alertscaler.model.decisions import Outcome, Reason, Trigger
from alertscaler.model.groups import GroupState
from alertscaler.model.matchers import MatcherSet
from alertscaler.model.policies import Direction, StepPolicy
from alertscaler.store.base import AlertRoute, NewDecision, StateStore, Tx

log = logging.getLogger(__name__)


class Reevaluator:
    def __init__(self, policy: PolicyFile, store: StateStore) -> None:
        self.policy = policy
        self.store = store

    def run(self, now: datetime) -> list[Recorded]:
        """One pass over every route with active alerts. Costs one aggregate query when nothing is due
        (cooldown running, skip already recorded): alerts are read only for a decision, at most
        ``MAX_ALERTS_PER_DECISION`` of them, and the write transaction is taken only then."""
        recorded: list[Recorded] = []
        stale_after = timedelta(seconds=self.policy.server.alert_stale_after)
        for route in self.store.active_alert_routes():
            group = self.policy.groups.get(route.group)
            direction = Direction(route.policy) if route.policy in Direction._value2member_map_ else None
            step = None
            if group is not None and direction is not None:
                step = group.scale_out if direction is Direction.SCALE_OUT else group.scale_in
            if group is None or direction is None or step is None:
                with self.store.transaction() as tx:  # the policy file no longer has this group/policy
                    dropped = tx.drop_route(route.group, route.policy)
                log.info("dropped %d active alert(s) of removed policy %s.%s", dropped, route.group, route.policy)
                continue
            if now - route.oldest_seen_at <= stale_after and not self._due(route, group, step, direction, now):
                continue
            with self.store.transaction() as tx:
                self._pass(tx, route.group, route.policy, group, step, direction, now, stale_after, recorded)
        return recorded

    def _due(self, route: AlertRoute, group: GroupConfig, step: StepPolicy, direction: Direction,
             now: datetime) -> bool:
        """Could a pass record anything? Read-only: the pass re-checks under the group's lock."""
        state = self.store.get_group_state(route.group) or GroupState(route.group, group.initial_desired)
        verdict = evaluate_step(state, step, direction, group.bounds, now)
        if verdict.reason is Reason.COOLDOWN:
            return False
        effective = verdict.as_dry_run() if group.dry_run else verdict
        return effective.acted or set(route.reasons) != {effective.reason.value}

    def _pass(self, tx: Tx, name: str, policy: str, group: GroupConfig, step: StepPolicy, direction: Direction,
              now: datetime, stale_after: timedelta, recorded: list[Recorded]) -> None:
        stale = tx.remove_stale_alerts(name, policy, now - stale_after)
        if stale:
            tx.add_decision(NewDecision(
                group=name, policy=policy, trigger=Trigger.TIMER, outcome=Outcome.SKIPPED,
                reason=Reason.STALE, from_capacity=None, to_capacity=None, decided_at=now,
                message=f"not re-sent by Alertmanager for over {stale_after}; stopped stepping"
                        + (f" ({len(stale)} alerts, the first {MAX_ALERTS_PER_DECISION} kept)"
                           if len(stale) > MAX_ALERTS_PER_DECISION else ""),
                alerts=[{"fingerprint": a.fingerprint, "labels": a.labels}
                        for a in stale[:MAX_ALERTS_PER_DECISION]],
            ))
            recorded.append(Recorded(name, Outcome.SKIPPED, Reason.STALE, None))
        fresh = tx.route_summary(name, policy)
        if fresh is None:
            return
        state = tx.lock_group(name, group.initial_desired)
        verdict = evaluate_step(state, step, direction, group.bounds, now)
        if verdict.reason is Reason.COOLDOWN:
            return
        effective = verdict.as_dry_run() if group.dry_run else verdict
        if not effective.acted and set(fresh.reasons) == {effective.reason.value}:
            return  # already recorded this skip for these alerts
        alerts = tx.route_alerts(name, policy, MAX_ALERTS_PER_DECISION)
        r = Route(name, direction, MatcherSet(()))
        apply_verdict(tx, group, r, verdict, state, now, Trigger.TIMER, alerts, None, recorded,
                      whole_route=fresh.count)
