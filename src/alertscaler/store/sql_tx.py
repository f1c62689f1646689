"""``_SqlTx``: the ``Tx`` Protocol over one open write transaction of ``SqlStore`` — recording notifications,
decisions, actions, active alerts (with the batched writes flushed in call order) and, through
``HealTxMixin``, heal signals. Created only by ``SqlStore.transaction()`` (``store.sql``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from alertscaler.model.alerts import Notification
from alertscaler.model.decisions import ActionState, HealTarget, Outcome, Reason, Trigger
from alertscaler.model.groups import GroupState
from alertscaler.store.base import (
    ActiveAlert,
    AlertRoute,
    Lease,
    NewDecision,
    Receipt,
)
from alertscaler.store.sql_alarms import AlarmTxMixin
from alertscaler.store.sql_approvals import ApprovalTxMixin
from alertscaler.store.sql_healing import HealTxMixin
from alertscaler.store.sql_outbox import OutboxTxMixin
from alertscaler.store.sql_pauses import PauseTxMixin
from alertscaler.store.sql_removals import RemovalTxMixin
from alertscaler.store.sql_signals import SignalTxMixin
from alertscaler.store.tables import (
    _alert_from_row,
    _check_limit,
    _dumps,
    _group_from_row,
    actions,
    active_alerts,
)

if TYPE_CHECKING:
    from alertscaler.store.sql import SqlStore

_KEYS_PER_INSERT: Final = 500  # rows per multi-VALUES insert into seen_keys (SQLite variable limit)
_NAMES_PER_SELECT: Final = 500  # group names per IN (...) of lock_groups (SQLite variable limit)


def _routes(rows: Sequence[Row[Any]]) -> list[AlertRoute]:
    out: dict[tuple[str, str], AlertRoute] = {}
    for row in rows:
        key = (row.group_name, row.policy)
        seen = row.oldest
        if key in out:
            prev = out[key]
            prev.reasons[row.last_reason] = row.n
            out[key] = AlertRoute(prev.group, prev.policy, prev.count + row.n, min(prev.oldest_seen_at, seen),
                                  prev.reasons)
        else:
            out[key] = AlertRoute(row.group_name, row.policy, row.n, seen, {row.last_reason: row.n})
    return [out[k] for k in sorted(out)]


class _SqlTx(SignalTxMixin, HealTxMixin, PauseTxMixin, ApprovalTxMixin, RemovalTxMixin, AlarmTxMixin,
             OutboxTxMixin):
    """``Tx`` over one open write transaction. Used by one thread, only inside ``SqlStore.transaction()``.

    A ``StoreError`` raised by one of its methods leaves the transaction unusable on PostgreSQL: let it
    propagate out of the ``with`` block (which rolls everything back).
    """

    def __init__(self, store: SqlStore, conn: Connection) -> None:
        self._store = store
        self._conn = conn
        self._claimed: set[int] = set()
        self._groups: dict[str, GroupState] = {}  # locked in this transaction: read once, kept up to date
        # batched writes (add_skip, upsert_active_alerts), flushed in call order before dependent statements
        self._skips: list[dict[str, Any]] = []
        self._upserts: list[dict[str, Any]] = []
        self._upserts_set_reason = False

    def flush(self) -> None:
        """Write what is batched. Called before the commit and before statements that depend on it."""
        self._flush_skips()
        self._flush_upserts()

    def _flush_skips(self) -> None:
        if self._skips:
            skips, self._skips = self._skips, []
            self._execute(self._store._stmts.decision_insert_many, skips)

    def _flush_upserts(self) -> None:
        if self._upserts:
            rows, self._upserts = self._upserts, []
            st = self._store._stmts
            self._execute(st.alert_upsert_reason if self._upserts_set_reason else st.alert_upsert, rows)

    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 ) -> sa.CursorResult[Any]:
        try:
            return self._conn.execute(stmt, params)
        except sa.exc.SQLAlchemyError as exc:
            self._store._raise(exc)

    def record_notifications(self, items: Sequence[tuple[Notification, datetime]],
                             processed_at: datetime | None = None) -> list[Receipt]:
        if not items:
            return []
        st = self._store._stmts
        ids = [row.id for row in self._execute(st.notification_insert, [
            {"receiver": n.receiver, "group_key": n.group_key, "body": n.raw_text or _dumps(n.raw), "received_at": at,
             "processed_at": processed_at} for n, at in items])]
        all_keys = [n.dedup_keys() for n, _ in items]
        # Within the batch the earliest notification claims a key; the keys are then inserted in sorted order,
        # so two transactions claiming overlapping keys (duplicate deliveries to two replicas, batched in
        # different orders) wait for each other in one order instead of deadlocking on PostgreSQL.
        first: dict[str, int] = {}
        for nid, keys in zip(ids, all_keys, strict=True):
            for k in keys:
                first.setdefault(k, nid)
        params = [{"dedup_key": k, "notification_id": first[k]} for k in sorted(first)]
        claimed: dict[int, set[str]] = {nid: set() for nid in ids}
        for start in range(0, len(params), _KEYS_PER_INSERT):
            for row in self._execute(st.keys_claim_owner, params[start:start + _KEYS_PER_INSERT]):
                claimed[row.notification_id].add(row.dedup_key)
        return [Receipt(notification_id=nid, new=len(claimed[nid]), duplicates=len(keys) - len(claimed[nid]),
                        new_keys=frozenset(claimed[nid]))
                for nid, keys in zip(ids, all_keys, strict=True)]

    def lock_group(self, name: str, initial_desired: int) -> GroupState:
        if name in self._groups:
            return self._groups[name]
        st = self._store._stmts
        self._execute(st.group_create, {"b_name": name, "b_desired": initial_desired})
        state = _group_from_row(self._execute(st.group_select, {"b_name": name}).one())
        self._groups[name] = state
        return state

    def lock_groups(self, initial: Mapping[str, int]) -> dict[str, GroupState]:
        todo = sorted(name for name in initial if name not in self._groups)
        st = self._store._stmts
        for start in range(0, len(todo), _NAMES_PER_SELECT):
            names = todo[start:start + _NAMES_PER_SELECT]
            self._execute(st.group_create, [{"b_name": n, "b_desired": initial[n]} for n in names])
            for row in self._execute(st.groups_select, {"b_names": names}):
                self._groups[row.name] = _group_from_row(row)
        return {name: self._groups[name] for name in initial}

    def save_group(self, state: GroupState) -> None:
        st = self._store._stmts
        params = {"b_name": state.name, "b_desired": state.desired, "b_out": state.last_scale_out_at,
                  "b_in": state.last_scale_in_at, "b_updated": state.updated_at, "b_held": state.held_until}
        if self._execute(st.group_update, params).rowcount == 0:  # not created by lock_group: create it
            self._execute(st.group_create, {"b_name": state.name, "b_desired": state.desired})
            self._execute(st.group_update, params)
        self._groups[state.name] = state

    def add_decision(self, decision: NewDecision) -> int:
        self._flush_skips()  # ids follow the order of the decisions
        return int(self._execute(self._store._stmts.decision_insert, _decision_params(decision)).one().id)

    def add_skip(self, decision: NewDecision) -> None:
        self._skips.append(_decision_params(decision))

    def add_action(self, decision_id: int, group: str, from_capacity: int, desired: int,
                   now: datetime, claim: bool = False, targets: Sequence[HealTarget] = (),
                   lease: Lease | None = None) -> int:
        """Raises ``StoreError`` if the decision is unknown or already has an action. With ``targets`` it is a
        heal action (kind ``heal``) working on those members."""
        st = self._store._stmts
        if claim and lease is None and self._store.claims is not None:
            lease = self._store.claims(group, now)
            claim = lease is not None  # another replica drives the group: its worker claims the action
        if claim and self._execute(st.unfinished_of_group, {"b_group": group}).first() is not None:
            claim = False  # an older action of the group goes first
        state = ActionState.RUNNING if claim else ActionState.PENDING
        row = self._execute(
            st.action_insert,
            {"decision_id": decision_id, "group_name": group, "from_capacity": from_capacity,
             "desired": desired, "state": state.value, "attempts": 1 if claim else 0, "not_before": None,
             "created_at": now, "started_at": now if claim else None, "finished_at": None, "error": None,
             "result": None, "kind": "heal" if targets else "scale",
             "targets": _dumps([asdict(t) for t in targets]) if targets else None,
             "owner": lease.owner if claim and lease else None,
             "lease_expires_at": lease.until if claim and lease else None},
        ).one()
        action_id = int(row.id)
        if claim:
            self._claimed.add(action_id)
        self._execute(st.decision_link, {"b_decision": decision_id, "b_action": action_id})
        return action_id

    def claimed_action(self, action_id: int) -> bool:
        return action_id in self._claimed

    def rebase_next_action(self, group: str, planned_from: int, real_from: int) -> int | None:
        row = self._execute(
            sa.select(actions.c.id, actions.c.from_capacity, actions.c.kind)
            .where(actions.c.group_name == group, actions.c.state == ActionState.PENDING.value)
            .order_by(actions.c.id).limit(1)
        ).first()
        if row is None:
            return None
        if row.kind != "heal" and row.from_capacity == planned_from != real_from:
            self._execute(actions.update().where(actions.c.id == row.id).values(from_capacity=real_from))
        return int(row.id)

    def upsert_active_alert(self, alert: ActiveAlert) -> None:
        self._flush_upserts()
        self._execute(self._store._stmts.alert_upsert, _alert_params(alert, alert.last_reason))

    def upsert_active_alerts(self, alerts: Sequence[ActiveAlert], reason: str | None = None,
                             set_reason: bool = False) -> None:
        if self._upserts and self._upserts_set_reason != set_reason:
            self._flush_upserts()
        self._upserts_set_reason = set_reason
        self._upserts.extend(_alert_params(a, reason if set_reason else a.last_reason) for a in alerts)

    def set_alert_reasons(self, group: str, policy: str, fingerprints: Sequence[str], reason: str | None) -> None:
        self._flush_upserts()
        if fingerprints:
            self._execute(self._store._stmts.alert_reason,
                          [{"b_group": group, "b_policy": policy, "b_fingerprint": f, "b_reason": reason}
                           for f in fingerprints])

    def set_alert_reason(self, group: str, policy: str, fingerprint: str, reason: str | None) -> None:
        self._flush_upserts()
        self._execute(self._store._stmts.alert_reason,
                      {"b_group": group, "b_policy": policy, "b_fingerprint": fingerprint, "b_reason": reason})

    def remove_active_alert(self, group: str, policy: str, fingerprint: str) -> bool:
        self._flush_upserts()
        result = self._execute(self._store._stmts.alert_delete,
                               {"b_group": group, "b_policy": policy, "b_fingerprint": fingerprint})
        return result.rowcount > 0

    def route_summary(self, group: str, policy: str) -> AlertRoute | None:
        self._flush_upserts()
        rows = self._execute(self._store._stmts.route_summary, {"b_group": group, "b_policy": policy}).all()
        routes = _routes(rows)
        return routes[0] if routes else None

    def route_alerts(self, group: str, policy: str, limit: int) -> list[ActiveAlert]:
        self._flush_upserts()
        a = active_alerts.c
        stmt = (sa.select(active_alerts).where(a.group_name == group, a.policy == policy)
                .order_by(a.starts_at, a.fingerprint).limit(_check_limit(limit)))
        return [_alert_from_row(r) for r in self._execute(stmt).all()]

    def remove_stale_alerts(self, group: str, policy: str, seen_before: datetime) -> list[ActiveAlert]:
        self._flush_upserts()
        a = active_alerts.c
        where = (a.group_name == group, a.policy == policy, a.last_seen_at < seen_before)
        stale = [_alert_from_row(r) for r in self._execute(
            sa.select(active_alerts).where(*where).order_by(a.starts_at, a.fingerprint)).all()]
        if stale:
            self._execute(active_alerts.delete().where(*where))
        return stale

    def set_route_reason(self, group: str, policy: str, reason: str | None) -> None:
        self._flush_upserts()
        a = active_alerts.c
        self._execute(active_alerts.update().where(a.group_name == group, a.policy == policy)
                      .values(last_reason=reason))

    def drop_route(self, group: str, policy: str) -> int:
        self._flush_upserts()
        a = active_alerts.c
        return int(self._execute(active_alerts.delete().where(a.group_name == group, a.policy == policy)).rowcount)

    def mark_processed(self, notification_id: int, now: datetime) -> bool:
        result = self._execute(self._store._stmts.mark_processed, {"b_id": notification_id, "b_now": now})
        return bool(result.rowcount == 1)


def _decision_params(decision: NewDecision) -> dict[str, Any]:
    return {"group_name": decision.group, "policy": decision.policy,
            "trigger": Trigger(decision.trigger).value, "outcome": Outcome(decision.outcome).value,
            "reason": Reason(decision.reason).value, "from_capacity": decision.from_capacity,
            "to_capacity": decision.to_capacity, "message": decision.message,
            "alerts": _dumps(decision.alerts), "notification_id": decision.notification_id,
            "alert_starts_at": decision.alert_starts_at, "received_at": decision.received_at,
            "decided_at": decision.decided_at, "action_id": None}


def _alert_params(alert: ActiveAlert, reason: str | None) -> dict[str, Any]:
    return {"group_name": alert.group, "policy": alert.policy, "fingerprint": alert.fingerprint,
            "labels": _dumps(alert.labels), "starts_at": alert.starts_at, "last_seen_at": alert.last_seen_at,
            "notification_id": alert.notification_id, "last_reason": reason}
