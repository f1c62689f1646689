"""Stored notifications → decisions (and pending actions), atomically.

Called by ``act.engine``: normally in the very transaction that records a burst of webhooks
(``process_recorded``: one commit for both), otherwise for what is still unprocessed (``process_pending``:
at start, so nothing accepted is ever lost, and after a failure). The decision code is ``decide.evaluator``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from alertscaler.act.heal_intake import HEAL_POLICY, HealIntake
from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.ingest.routing import Route, route
from alertscaler.model.alerts import Alert, Notification
from alertscaler.model.decisions import Action, ActionState, Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import InputError, StoreUnavailable
from alertscaler.model.matchers import MatcherSet
from alertscaler.model.policies import AdjustmentType, Direction
from alertscaler.providers.base import ScaleRequest
from alertscaler.store.base import ActiveAlert, NewDecision, Receipt, StateStore, StoredNotification, Tx

log = logging.getLogger(__name__)

MAX_ALERTS_PER_DECISION = 50  # kept with a decision (and handed to the provider): explains it, stays small


def build_routes(policy: PolicyFile) -> list[Route]:
    return [
        Route(name, direction, MatcherSet.parse(step.matchers))
        for name, group in policy.groups.items()
        for direction, step in group.policies()
    ]


def alert_summary(alert: Alert) -> dict[str, Any]:
    """How an alert is kept in a decision: enough to explain it, and to hand it to a provider."""
    return {
        "status": alert.status.value,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.starts_at.isoformat(),
        "endsAt": alert.ends_at.isoformat() if alert.ends_at else None,
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


@dataclass
class _Bucket:
    firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    duplicates: list[Alert] = field(default_factory=list)


@dataclass(frozen=True)
class Recorded:
    """One decision written by this module, for logs, metrics and waking the group's worker. ``handoff``:
    the action was created already claimed (the group had nothing else queued): the worker runs it at once,
    with what the provider needs, without reading it back from the store. ``check`` set: no decision was
    recorded; the alerts of a checked policy wait for their live check."""

    group: str | None
    outcome: Outcome
    reason: Reason
    action_id: int | None
    handoff: tuple[Action, ScaleRequest] | None = None
    #: not a decision: a checked policy's alerts to check live now (policy, the notification they came in)
    check: tuple[str, StoredNotification] | None = None


class Processor:
    def __init__(self, policy: PolicyFile, store: StateStore) -> None:
        self.policy = policy
        self.store = store
        self.routes = build_routes(policy)
        self.heal = HealIntake(policy)

    def process_pending(self, now: datetime, limit: int = 50) -> list[Recorded]:
        """Process every recorded-but-unprocessed notification; returns what was decided."""
        out: list[Recorded] = []
        while True:
            batch = self.store.pending_notifications(limit)
            out.extend(self.process_batch(batch, now))
            if len(batch) < limit:
                return out

    def process_batch(self, batch: list[StoredNotification], now: datetime) -> list[Recorded]:
        """A burst of notifications in ONE transaction (one commit, not one per notification). Should any of
        them fail, the batch is rolled back and retried one notification per transaction, so that one bad
        notification cannot hold up the others."""
        if len(batch) <= 1:
            return [r for stored in batch for r in self.process(stored, now)]
        try:
            recorded: list[Recorded] = []
            with self.store.transaction() as tx:
                for stored in batch:
                    recorded.extend(self._process_in(tx, stored, now))
            return recorded
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("processing a batch of %d notifications failed; retrying one by one", len(batch))
            return [r for stored in batch for r in self.process(stored, now)]

    def process(self, stored: StoredNotification, now: datetime) -> list[Recorded]:
        """One notification in its own transaction."""
        with self.store.transaction() as tx:
            return self._process_in(tx, stored, now)

    def process_recorded(self, tx: Tx, items: Sequence[tuple[Notification, Receipt, datetime]],
                         now: datetime) -> list[Recorded]:
        """Decide on notifications ``tx`` has just recorded as processed (``record_notifications(...,
        processed_at=now)``): recording and deciding then cost one transaction and one commit."""
        recorded: list[Recorded] = []
        for notification, receipt, received_at in items:
            stored = StoredNotification(id=receipt.notification_id, received_at=received_at,
                                        body=notification.raw, new_keys=receipt.new_keys)
            recorded.extend(self._process_in(tx, stored, now, notification))
        return recorded

    def _process_in(self, tx: Tx, stored: StoredNotification, now: datetime,
                    parsed: Notification | None = None) -> list[Recorded]:
        """Decide on one stored notification. ``parsed`` given: it was recorded as processed in ``tx``."""
        if parsed is not None:
            notification = parsed
        else:
            if not tx.mark_processed(stored.id, now):
                return []  # another replica processed it meanwhile
            try:
                notification = parse_notification(stored.body)
            except InputError as exc:  # cannot happen for bodies the API accepted; keep the record, say why
                log.error("stored notification %s cannot be parsed: %s", stored.id, exc)
                return []
        buckets: dict[Route, _Bucket] = defaultdict(_Bucket)
        unrouted: list[Alert] = []
        unrouted_dups: list[Alert] = []
        healing, heal_skips = self.heal.take(tx, notification.alerts, stored.id, now)
        for i, alert in enumerate(notification.alerts):
            is_new = alert.dedup_key(notification.receiver, notification.group_key) in stored.new_keys
            matched = route(alert.labels, self.routes)
            if not matched and i not in healing:
                (unrouted if is_new else unrouted_dups).append(alert)
            for r in matched:
                bucket = buckets[r]
                if not is_new:
                    bucket.duplicates.append(alert)
                elif alert.firing:
                    bucket.firing.append(alert)
                else:
                    bucket.resolved.append(alert)
        recorded: list[Recorded] = []
        ctx = _Ctx(tx, stored, now, recorded)
        if unrouted:
            ctx.decide_skip(None, None, Reason.NO_GROUP, unrouted, "no group policy matches these alerts' labels")
        if unrouted_dups:
            ctx.decide_skip(None, None, Reason.DUPLICATE, unrouted_dups, "already received (no group)")
        for r, bucket in buckets.items():
            self._bucket(ctx, r, self.policy.groups[r.group], bucket)
        for skip in heal_skips:
            ctx.decide_skip(skip.group, HEAL_POLICY, skip.reason, skip.alerts, skip.message)
        return recorded

    def _bucket(self, ctx: _Ctx, r: Route, group: GroupConfig, bucket: _Bucket) -> None:
        tx = ctx.tx
        if bucket.duplicates:
            # a re-send confirms that a firing alert is still firing
            tx.upsert_active_alerts([self._active(r, a, ctx) for a in bucket.duplicates if a.firing])
            ctx.decide_skip(r.group, r.policy, Reason.DUPLICATE, bucket.duplicates,
                            "already received: Alertmanager retry, repeat or HA peer; not acted again")
        if bucket.resolved:
            for alert in bucket.resolved:
                tx.remove_active_alert(r.group, r.policy, alert.fingerprint)
            ctx.decide_skip(r.group, r.policy, Reason.RESOLVED, bucket.resolved,
                            "alert resolved: a resolved alert never scales by itself")
        if not bucket.firing:
            return
        step = group.scale_out if r.direction.value == "scale_out" else group.scale_in
        assert step is not None
        if step.checked:  # decided after its live check, outside this transaction (act.reevaluating)
            tx.upsert_active_alerts([self._active(r, a, ctx) for a in bucket.firing], Reason.CHECKING.value,
                                    set_reason=True)
            log.info("group=%s policy=%s: %d firing alert(s) to check live before deciding",
                     r.group, r.policy, len(bucket.firing))
            ctx.recorded.append(Recorded(r.group, Outcome.SKIPPED, Reason.CHECKING, None,
                                         check=(r.policy, ctx.stored)))
            return
        state = tx.lock_group(r.group, group.initial_desired)
        verdict = evaluate_step(state, step, r.direction, group.bounds_at(ctx.now), ctx.now)
        effective = verdict.as_dry_run() if group.dry_run else verdict
        tx.upsert_active_alerts([self._active(r, a, ctx) for a in bucket.firing], effective.reason.value,
                                set_reason=True)
        apply_verdict(tx, group, r, verdict, state, ctx.now, Trigger.NOTIFICATION, bucket.firing,
                      ctx.stored, ctx.recorded, reasons_set=True)

    def _active(self, r: Route, alert: Alert, ctx: _Ctx) -> ActiveAlert:
        return ActiveAlert(r.group, r.policy, alert.fingerprint, alert.labels, alert.starts_at,
                           ctx.now, ctx.stored.id)


def apply_verdict(
    tx: Tx,
    group: GroupConfig,
    r: Route,
    verdict: Verdict,
    state: Any,
    now: datetime,
    trigger: Trigger,
    alerts: Sequence[Alert] | Sequence[ActiveAlert],
    stored: StoredNotification | None,
    recorded: list[Recorded],
    whole_route: int | None = None,
    reasons_set: bool = False,
) -> None:
    """Record ``verdict`` for group ``r.group``; when it acts, advance the group and queue the action.
    ``whole_route``: the decision is about every active alert of the route (that many; ``alerts`` are the
    first of them): the reason is set on all of them in one statement. ``reasons_set``: the caller already
    stored the reason with the alerts."""
    if group.dry_run:
        verdict = verdict.as_dry_run()
    summaries = [alert_summary(a) if isinstance(a, Alert) else _active_summary(a)
                 for a in alerts[:MAX_ALERTS_PER_DECISION]]
    count = len(alerts) if whole_route is None else max(whole_route, len(alerts))
    if count > len(summaries):
        verdict = replace(verdict, message=f"{verdict.message} ({count} alerts, "
                                           f"the first {len(summaries)} kept)")
    starts = min((a.starts_at for a in alerts), default=None)
    new_decision = NewDecision(
        group=r.group, policy=r.policy, trigger=trigger, outcome=verdict.outcome, reason=verdict.reason,
        from_capacity=verdict.from_capacity, to_capacity=verdict.to_capacity, message=verdict.message,
        decided_at=now, alerts=summaries, notification_id=stored.id if stored else None,
        alert_starts_at=starts, received_at=stored.received_at if stored else None,
    )
    action_id = None
    handoff = None
    if not verdict.acted:
        tx.add_skip(new_decision)
        if verdict.reason is Reason.DRY_RUN:
            tx.save_group(state.stepped(r.direction, state.desired, now))  # cooldown runs, size does not
    else:
        decision_id = tx.add_decision(new_decision)
        tx.save_group(state.stepped(r.direction, verdict.to_capacity, now))
        action_id = tx.add_action(decision_id, r.group, verdict.from_capacity, verdict.to_capacity, now,
                                  claim=True)
        if tx.claimed_action(action_id):
            action = Action(action_id, decision_id, r.group, verdict.from_capacity, verdict.to_capacity,
                            ActionState.RUNNING, 1, None, now, started_at=now)
            request = ScaleRequest(r.group, verdict.from_capacity, verdict.to_capacity, action_id, decision_id,
                                   notification=stored.body if stored else None, alerts=summaries,
                                   exact=_exact(group, r))
            handoff = (action, request)
    if whole_route is not None:
        tx.set_route_reason(r.group, r.policy, verdict.reason.value)
    elif not reasons_set:
        tx.set_alert_reasons(r.group, r.policy, [a.fingerprint for a in alerts], verdict.reason.value)
    log.info("decision group=%s policy=%s from=%s to=%s outcome=%s reason=%s trigger=%s: %s",
             r.group, r.policy, verdict.from_capacity, verdict.to_capacity, verdict.outcome.value,
             verdict.reason.value, trigger.value, verdict.message)
    recorded.append(Recorded(r.group, verdict.outcome, verdict.reason, action_id, handoff))


def _exact(group: GroupConfig, r: Route) -> bool:
    step = group.scale_out if r.direction is Direction.SCALE_OUT else group.scale_in
    return step is not None and step.adjustment_type is AdjustmentType.EXACT_CAPACITY


def _active_summary(a: ActiveAlert) -> dict[str, Any]:
    return {"status": "firing", "labels": a.labels, "startsAt": a.starts_at.isoformat(),
            "fingerprint": a.fingerprint, "lastSeenAt": a.last_seen_at.isoformat()}


@dataclass
class _Ctx:
    tx: Tx
    stored: StoredNotification
    now: datetime
    recorded: list[Recorded]

    def decide_skip(self, group: str | None, policy: str | None, reason: Reason, alerts: list[Alert],
                    message: str) -> None:
        self.tx.add_skip(NewDecision(
            group=group, policy=policy, trigger=Trigger.NOTIFICATION, outcome=Outcome.SKIPPED, reason=reason,
            from_capacity=None, to_capacity=None, message=message, decided_at=self.now,
            alerts=[alert_summary(a) for a in alerts], notification_id=self.stored.id,
            alert_starts_at=min(a.starts_at for a in alerts), received_at=self.stored.received_at,
        ))
        log.info("decision group=%s policy=%s outcome=skipped reason=%s alerts=%d: %s",
                 group, policy, reason.value, len(alerts), message)
        self.recorded.append(Recorded(group, Outcome.SKIPPED, reason, None))
