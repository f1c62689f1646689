"""Stored notifications → decisions (and pending actions), atomically.

Called by ``act.engine``: normally in the very transaction that records a burst of webhooks
(``process_recorded``: one commit for both), otherwise for what is still unprocessed (``process_pending``:
at start, so nothing accepted is ever lost, and after a failure). The decision code is ``decide.evaluator``;
each verdict is recorded by ``act.recording``. A checked policy's new firing alerts are not decided here:
they come back as a ``CheckDue`` (an explicit signal, not a decision) for ``act.reevaluating.check_route``.
Neither are any step policy's when Alertmanager is asked about silences (``gated``: ``alertmanager.url`` set):
the question must not be asked inside this transaction, so ``act.reevaluating`` asks it, then decides.
A fire drill's alerts (``alertscaler_drill`` label) are split out first and decided by ``act.drills``: a
``drill`` decision each, nothing else touched; the real alerts of the same notification are decided as usual.

Nothing blocks the queue: a batch that fails is retried one notification per transaction (a failing one
never fails its neighbours), and one that fails alone for any reason but ``StoreUnavailable`` — or whose
stored body no longer parses — is set aside at once: marked processed with a ``rejected`` decision saying
why (``reject``). At once, not after N tries, because such a failure is deterministic: the store turns every
transient database failure (lock, deadlock, serialisation, lost connection, disk full) into
``StoreUnavailable``, so what remains (a constraint, a value the database refuses, a bug) fails the same way
on every retry — and a retry count would need a column written in a transaction that is itself failing.
The notification's body stays stored for inspection.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alertscaler.act import drills
from alertscaler.act.alarming import AlarmIntake, alarm_heal_routes, alarm_routes, one_per_policy
from alertscaler.act.heal_intake import HEAL_POLICY, HealIntake
from alertscaler.act.recording import About, Evidence, Recorded, effective, gate_of, record, record_skip
from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.ingest.routing import Route, route
from alertscaler.model.alerts import Alert, Notification
from alertscaler.model.decisions import Reason, Trigger
from alertscaler.model.errors import InputError, StoreUnavailable
from alertscaler.model.matchers import MatcherSet
from alertscaler.model.policies import Direction
from alertscaler.store.base import ActiveAlert, Receipt, StateStore, StoredNotification, Tx

log = logging.getLogger(__name__)

MAX_WHY = 500  # characters of an exception's text kept in a ``rejected`` decision's message


def build_routes(policy: PolicyFile) -> list[Route]:
    return [
        Route(name, direction, MatcherSet.parse(step.matchers))
        for name, group in policy.groups.items()
        for direction, step in group.policies()
    ] + alarm_routes(policy)  # an alarm's scale:// actions (act.alarming)


@dataclass
class _Bucket:
    firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    duplicates: list[Alert] = field(default_factory=list)


@dataclass(frozen=True)
class CheckDue:
    """Not a decision: a checked policy's new firing alerts wait for their live check, which
    ``act.reevaluating.Reevaluator.check_route`` runs now (outside the transaction: the query blocks)."""

    group: str
    policy: str
    stored: StoredNotification


@dataclass
class Processed:
    """What deciding on notifications gave: the decisions recorded, and the live checks now due."""

    recorded: list[Recorded] = field(default_factory=list)
    checks: list[CheckDue] = field(default_factory=list)

    def extend(self, other: Processed) -> None:
        self.recorded.extend(other.recorded)
        self.checks.extend(other.checks)


class Processor:
    def __init__(self, policy: PolicyFile, store: StateStore, gated: bool = False) -> None:
        self.policy = policy
        self.store = store
        self.gated = gated  # Alertmanager is asked about silences first (act.silencing): decided after it
        self.routes = build_routes(policy)
        self.heal = HealIntake(policy)
        self.heal.routes += alarm_heal_routes(policy)
        self.alarms = AlarmIntake(policy)  # alarm state from alarm alerts (act.alarming)

    def process_pending(self, now: datetime, limit: int = 50) -> Processed:
        """Process every recorded-but-unprocessed notification; returns what was decided."""
        out = Processed()
        while True:
            batch = self.store.pending_notifications(limit)
            out.extend(self.process_batch(batch, now))
            if len(batch) < limit:
                return out

    def process_batch(self, batch: list[StoredNotification], now: datetime) -> Processed:
        """A burst of notifications in ONE transaction (one commit, not one per notification). Should any of
        them fail, the batch is rolled back and retried one notification per transaction, so that one bad
        notification cannot hold up the others: one that fails alone is set aside (``reject``). Raises
        StoreUnavailable only when nothing was decided (else what was is returned; the rest waits)."""
        if len(batch) <= 1:
            return self._one_by_one(batch, now)
        try:
            out = Processed()
            with self.store.transaction() as tx:
                self._lock_routed(tx, [_parsed_or_none(stored) for stored in batch], now)
                for stored in batch:
                    self._process_in(tx, stored, now, out)
            return out
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("processing a batch of %d notifications failed; retrying one by one", len(batch))
            return self._one_by_one(batch, now)

    def _one_by_one(self, batch: list[StoredNotification], now: datetime) -> Processed:
        out = Processed()
        for done, stored in enumerate(batch):
            try:
                out.extend(self.process(stored, now))
            except StoreUnavailable:
                if out.recorded or out.checks:  # committed: publish it; the rest waits for the next pass
                    log.warning("store unavailable after %d of %d notification(s); the rest waits",
                                done, len(batch))
                    return out
                raise
            except Exception as exc:
                log.exception("notification %s cannot be processed; set aside as rejected", stored.id)
                out.extend(self.reject(stored, now, f"processing failed: {_why(exc)}"))
        return out

    def reject(self, stored: StoredNotification, now: datetime, why: str) -> Processed:
        """Set ``stored`` aside so that the queue moves on: marked processed, with a ``rejected`` decision
        (no group; the message says why). Should even that fail, it is marked processed without a decision
        (logged): nothing but an unavailable store may keep it first in line."""
        out = Processed()
        try:
            with self.store.transaction() as tx:
                if tx.mark_processed(stored.id, now):
                    out.recorded.append(_rejected(tx, stored, now, why))
            return out
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("notification %s: recording its rejection failed; marked processed without a "
                          "decision (%s)", stored.id, why)
        with self.store.transaction() as tx:
            tx.mark_processed(stored.id, now)
        return out

    def process(self, stored: StoredNotification, now: datetime) -> Processed:
        """One notification in its own transaction."""
        out = Processed()
        with self.store.transaction() as tx:
            self._process_in(tx, stored, now, out)
        return out

    def process_recorded(self, tx: Tx, items: Sequence[tuple[Notification, Receipt, datetime]],
                         now: datetime) -> Processed:
        """Decide on notifications ``tx`` has just recorded as processed (``record_notifications(...,
        processed_at=now)``): recording and deciding then cost one transaction and one commit."""
        out = Processed()
        self._lock_routed(tx, [notification for notification, _, _ in items], now)
        for notification, receipt, received_at in items:
            stored = StoredNotification(id=receipt.notification_id, received_at=received_at,
                                        body=notification.raw, new_keys=receipt.new_keys)
            self._process_in(tx, stored, now, out, notification)
        return out

    def _lock_routed(self, tx: Tx, notifications: Sequence[Notification | None], now: datetime) -> None:
        """Lock, in name order and before anything else, every group a batch of notifications routes to. Two
        replicas deciding batches that touch the same groups in different orders would otherwise each hold one
        group row and wait for the other's (a PostgreSQL deadlock, answered 503). One group: nothing to order."""
        groups: dict[str, int] = {}
        for notification in notifications:
            for alert in notification.alerts if notification is not None else ():
                for r in route(alert.labels, self.routes):
                    groups[r.group] = self.policy.groups[r.group].initial_desired
        alarms = self.alarms.touches(notifications)
        if len(groups) > 1 or (groups and alarms):
            tx.lock_groups(groups)
        if alarms:  # after the groups, in every transaction
            self.alarms.lock(tx, notifications, now)

    def _process_in(self, tx: Tx, stored: StoredNotification, now: datetime, out: Processed,
                    parsed: Notification | None = None) -> None:
        """Decide on one stored notification. ``parsed`` given: it was recorded as processed in ``tx``."""
        if parsed is not None:
            notification = parsed
        else:
            if not tx.mark_processed(stored.id, now):
                return  # another replica processed it meanwhile
            try:
                notification = parse_notification(stored.body)
            except InputError as exc:  # a body an older version accepted: keep it, set it aside, say why
                log.error("stored notification %s cannot be parsed; set aside as rejected: %s", stored.id, exc)
                out.recorded.append(_rejected(tx, stored, now, f"the stored body no longer parses: {_why(exc)}"))
                return
        buckets: dict[Route, _Bucket] = defaultdict(_Bucket)
        unrouted: list[Alert] = []
        unrouted_dups: list[Alert] = []
        alerts, drill_alerts = drills.split(notification.alerts)  # a drill's alerts: decided apart, never acted

        def new(alert: Alert) -> bool:
            return alert.dedup_key(notification.receiver, notification.group_key) in stored.new_keys

        if drill_alerts:
            out.recorded.extend(drills.decide(tx, self.policy, self.routes, self.heal.routes, drill_alerts, new,
                                              stored, now, self.gated))
        healing, heal_skips = self.heal.take(tx, alerts, stored.id, now)
        alarmed = {i for i, alert in enumerate(alerts) if self.alarms.owns(alert)}
        for i, alert in enumerate(alerts):
            is_new = new(alert)
            matched = one_per_policy(route(alert.labels, self.routes))  # an alarm's scale:// and the policy's own
            if not matched and i not in healing and i not in alarmed:
                (unrouted if is_new else unrouted_dups).append(alert)
            for r in matched:
                bucket = buckets[r]
                if not is_new:
                    bucket.duplicates.append(alert)
                elif alert.firing:
                    bucket.firing.append(alert)
                else:
                    bucket.resolved.append(alert)
        ctx = _Ctx(tx, stored, now, out)
        if unrouted:
            ctx.skip(About(None, None, Trigger.NOTIFICATION), Reason.NO_GROUP, unrouted,
                     "no group policy matches these alerts' labels")
        if unrouted_dups:
            ctx.skip(About(None, None, Trigger.NOTIFICATION), Reason.DUPLICATE, unrouted_dups,
                     "already received (no group)")
        for r, bucket in buckets.items():
            self._bucket(ctx, r, self.policy.groups[r.group], bucket)
        for heal_skip in heal_skips:
            ctx.skip(About(heal_skip.group, HEAL_POLICY, Trigger.NOTIFICATION), heal_skip.reason,
                     heal_skip.alerts, heal_skip.message)
        if alarmed:  # after the groups' decisions: alarm states are locked after groups
            self.alarms.take(tx, alerts, stored.id, now)

    def _bucket(self, ctx: _Ctx, r: Route, group: GroupConfig, bucket: _Bucket) -> None:
        tx = ctx.tx
        about = About(r.group, r.policy, Trigger.NOTIFICATION, group)
        if bucket.duplicates:
            # a re-send confirms that a firing alert is still firing
            tx.upsert_active_alerts([self._active(r, a, ctx) for a in bucket.duplicates if a.firing])
            ctx.skip(about, Reason.DUPLICATE, bucket.duplicates,
                     "already received: Alertmanager retry, repeat or HA peer; not acted again")
        if bucket.resolved:
            for alert in bucket.resolved:
                tx.remove_active_alert(r.group, r.policy, alert.fingerprint)
            ctx.skip(about, Reason.RESOLVED, bucket.resolved, "alert resolved: a resolved alert never scales by itself")
        if not bucket.firing:
            return
        step = group.scale_out if r.direction is Direction.SCALE_OUT else group.scale_in
        assert step is not None
        if step.checked or self.gated:  # decided after the live check / Alertmanager's view (act.reevaluating)
            tx.upsert_active_alerts([self._active(r, a, ctx) for a in bucket.firing], Reason.CHECKING.value,
                                    set_reason=True)
            log.info("group=%s policy=%s: %d firing alert(s) to check %s before deciding", r.group, r.policy,
                     len(bucket.firing), "live" if step.checked else "against Alertmanager's silences")
            ctx.out.checks.append(CheckDue(r.group, r.policy, ctx.stored))
            return
        state = tx.lock_group(r.group, group.initial_desired)
        verdict = evaluate_step(state, step, r.direction, group.bounds_at(ctx.now), ctx.now)
        tx.upsert_active_alerts([self._active(r, a, ctx) for a in bucket.firing],
                                effective(verdict, group, gate_of(tx.pauses(), about, state, ctx.now)).reason.value,
                                set_reason=True)
        ctx.out.recorded.append(record(tx, about, verdict, ctx.now, state=state, step=r.direction,
                                       evidence=Evidence.of(bucket.firing, ctx.stored)))

    def _active(self, r: Route, alert: Alert, ctx: _Ctx) -> ActiveAlert:
        return ActiveAlert(r.group, r.policy, alert.fingerprint, alert.labels, alert.starts_at,
                           ctx.now, ctx.stored.id)


def _parsed_or_none(stored: StoredNotification) -> Notification | None:
    """The stored body parsed, for locking its groups first; None when it does not parse (decided later, alone)."""
    try:
        return parse_notification(stored.body)
    except InputError:
        return None


def _rejected(tx: Tx, stored: StoredNotification, now: datetime, why: str) -> Recorded:
    """The ``rejected`` decision of a notification set aside (it names the notification; no alerts: they
    may be what cannot be stored)."""
    return record_skip(tx, About(None, None, Trigger.NOTIFICATION), Reason.REJECTED,
                       f"notification {stored.id} set aside: {why}", now, Evidence(stored=stored))


def _why(exc: BaseException) -> str:
    """An exception as a decision's message: its type and message, first line, at most ``MAX_WHY``
    characters (the store's own errors already hide the database password)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > MAX_WHY:
        text = text[:MAX_WHY - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class _Ctx:
    tx: Tx
    stored: StoredNotification
    now: datetime
    out: Processed

    def skip(self, about: About, reason: Reason, alerts: list[Alert], message: str) -> None:
        self.out.recorded.append(record_skip(self.tx, about, reason, message, self.now,
                                             Evidence.of(alerts, self.stored)))
