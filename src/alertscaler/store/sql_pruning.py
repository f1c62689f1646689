"""Retention for ``SqlStore``: what is older than ``store.retention`` and finished is deleted, in short
transactions of at most ``batch`` rows per table, so that webhooks never wait long for the writer.

Never deleted: an unprocessed notification, a notification still referenced (by a kept decision, an active
alert or a heal signal), an unfinished action, a decision whose action is kept, a pending heal signal, group
state and active alerts. Deleted, oldest first and in foreign-key order: heal history of finished actions,
judged heal signals, finished actions, decisions without an action, then notifications and their dedup keys.

A re-send of a notification whose dedup keys were pruned counts as new again: for an alert that has been
firing for longer than the retention that is what the re-evaluation timer does anyway (one step per
cooldown), so nothing acts twice that would not have.

Mixed into ``store.sql.SqlStore``; called by ``act.engine``'s pruning loop.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alertscaler.store.tables import (
    _UNFINISHED,
    actions,
    active_alerts,
    decisions,
    heal_history,
    heal_signals,
    notifications,
    seen_keys,
)

TABLES = ("heal_history", "heal_signals", "actions", "decisions", "seen_keys", "notifications")


class _Writes(Protocol):
    def _write(self) -> AbstractContextManager[Connection]: ...


def _victims(before: datetime) -> dict[str, sa.Select[tuple[int]]]:
    """Per table, the ids (``seen_keys``: notification ids) that may go, oldest first."""
    a, d, n, h, s = actions.c, decisions.c, notifications.c, heal_history.c, heal_signals.c
    finished = a.state.not_in(_UNFINISHED)
    old_finished_action = sa.select(a.id).where(a.id == h.action_id, finished, a.created_at < before)
    kept_by = [
        sa.select(d.id).where(d.notification_id == n.id),
        sa.select(active_alerts.c.notification_id).where(active_alerts.c.notification_id == n.id),
        sa.select(s.id).where(s.notification_id == n.id),
    ]
    prunable_notification = sa.and_(n.processed_at.is_not(None), n.received_at < before,
                                    *[~sa.exists(q) for q in kept_by])
    return {
        "heal_history": sa.select(h.id).where(h.at < before, sa.or_(h.action_id.is_(None),
                                                                      sa.exists(old_finished_action))).order_by(h.id),
        "heal_signals": sa.select(s.id).where(s.decision_id.is_not(None), s.received_at < before).order_by(s.id),
        "actions": sa.select(a.id).where(finished, a.created_at < before,
                                         ~sa.exists(sa.select(h.id).where(h.action_id == a.id))).order_by(a.id),
        "decisions": sa.select(d.id).where(d.decided_at < before,
                                           ~sa.exists(sa.select(a.id).where(a.decision_id == d.id))).order_by(d.id),
        "seen_keys": sa.select(n.id).where(prunable_notification,
                                           sa.exists(sa.select(seen_keys.c.notification_id)
                                                     .where(seen_keys.c.notification_id == n.id))).order_by(n.id),
        "notifications": sa.select(n.id).where(prunable_notification).order_by(n.id),
    }


_DELETE = {
    "heal_history": lambda ids: sa.delete(heal_history).where(heal_history.c.id.in_(ids)),
    "heal_signals": lambda ids: sa.delete(heal_signals).where(heal_signals.c.id.in_(ids)),
    "actions": lambda ids: sa.delete(actions).where(actions.c.id.in_(ids)),
    "decisions": lambda ids: sa.delete(decisions).where(decisions.c.id.in_(ids)),
    "seen_keys": lambda ids: sa.delete(seen_keys).where(seen_keys.c.notification_id.in_(ids)),
    "notifications": lambda ids: sa.delete(notifications).where(notifications.c.id.in_(ids)),
}


class PruneStoreMixin:
    def prune(self: _Writes, before: datetime, batch: int = 2000) -> dict[str, int]:
        """Delete what is finished and older than ``before``; rows deleted per table. Each transaction
        deletes at most ``batch`` rows of one table (ids chosen and deleted in the same transaction)."""
        counts = dict.fromkeys(TABLES, 0)
        victims = _victims(before)
        for table in TABLES:
            while True:
                with self._write() as conn:
                    ids = [row[0] for row in conn.execute(victims[table].limit(batch))]
                    if ids:
                        result = conn.execute(_DELETE[table](ids))
                        counts[table] += result.rowcount
                if len(ids) < batch:
                    break
        return counts
