"""Alerts that STAY firing keep producing steps, at most one per cooldown, until resolved or at a bound.

Alertmanager only re-sends a firing alert every ``repeat_interval`` (and those re-sends are duplicates by
design), so alertscaler re-evaluates its active alerts on its own timer. A skip is recorded once, when its
reason changes (no "cooldown" row every tick). A firing alert not confirmed (re-sent) for
``alert_stale_after`` stops stepping and is dropped with reason ``stale``.

Called by ``act.engine`` every ``server.reevaluate_interval``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from alertscaler.act.processing import Recorded, apply_verdict
from alertscaler.config import PolicyFile
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.ingest.routing import Route
from alertscaler.model.decisions import Outcome, Reason, Trigger
from alertscaler.model.matchers import MatcherSet
from alertscaler.model.policies import Direction
from alertscaler.store.base import ActiveAlert, NewDecision, StateStore

log = logging.getLogger(__name__)


class Reevaluator:
    def __init__(self, policy: PolicyFile, store: StateStore) -> None:
        self.policy = policy
        self.store = store

    def run(self, now: datetime) -> list[Recorded]:
        by_route: dict[tuple[str, str], list[ActiveAlert]] = defaultdict(list)
        for active in self.store.active_alerts():
            by_route[(active.group, active.policy)].append(active)
        recorded: list[Recorded] = []
        stale_after = timedelta(seconds=self.policy.server.alert_stale_after)
        for (group_name, policy_name), alerts in sorted(by_route.items()):
            group = self.policy.groups.get(group_name)
            direction = Direction(policy_name) if policy_name in Direction._value2member_map_ else None
            step = None
            if group is not None and direction is not None:
                step = group.scale_out if direction is Direction.SCALE_OUT else group.scale_in
            with self.store.transaction() as tx:
                if group is None or direction is None or step is None:
                    for a in alerts:  # the policy file no longer has this group/policy
                        tx.remove_active_alert(a.group, a.policy, a.fingerprint)
                    log.info("dropped %d active alert(s) of removed policy %s.%s",
                             len(alerts), group_name, policy_name)
                    continue
                fresh = [a for a in alerts if now - a.last_seen_at <= stale_after]
                stale = [a for a in alerts if now - a.last_seen_at > stale_after]
                for a in stale:
                    tx.remove_active_alert(a.group, a.policy, a.fingerprint)
                if stale:
                    tx.add_decision(NewDecision(
                        group=group_name, policy=policy_name, trigger=Trigger.TIMER, outcome=Outcome.SKIPPED,
                        reason=Reason.STALE, from_capacity=None, to_capacity=None, decided_at=now,
                        message=f"not re-sent by Alertmanager for over {stale_after}; stopped stepping",
                        alerts=[{"fingerprint": a.fingerprint, "labels": a.labels} for a in stale],
                    ))
                    recorded.append(Recorded(group_name, Outcome.SKIPPED, Reason.STALE, None))
                if not fresh:
                    continue
                state = tx.lock_group(group_name, group.initial_desired)
                verdict = evaluate_step(state, step, direction, group.bounds, now)
                if verdict.reason is Reason.COOLDOWN:
                    continue
                effective = verdict.as_dry_run() if group.dry_run else verdict
                if not effective.acted and all(a.last_reason == effective.reason.value for a in fresh):
                    continue  # already recorded this skip for these alerts
                r = Route(group_name, direction, MatcherSet(()))
                apply_verdict(tx, group, r, verdict, state, now, Trigger.TIMER, fresh, None, recorded)
        return recorded
