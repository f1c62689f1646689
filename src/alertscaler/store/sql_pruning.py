"""Retention for ``SqlStore``: what is older than ``store.retention`` and finished is deleted, in short
transactions of at most ``batch`` rows per table, so that webhooks never wait long for the writer.

Never deleted: an unprocessed notification, a notification still referenced (by a kept decision, an active
alert or a heal signal), an unfinished action, a decision whose action is kept, a pending heal signal, group
state and active alerts. Deleted, oldest first and in foreign-key order: heal history of finished actions,
judged heal signals, finished actions, decisions without an action, then notifications and their dedup keys,
then outside signals (``signals``: a signed URL's POST, an Aodh or Monasca alarm) and their de-duplication keys,
then finished notifications of the outbox (delivered or failed; ``outbox``) with their attempts. A pending
notification is never deleted. Approvals (``approvals``) go once ended (approved, rejected, expired, superseded)
for longer than the retention; a pending one never. Alarm transitions (``alarm_history``) go once recorded
longer ago than the retention; an alarm's current state (``alarm_states``) stays.

A re-send of a notification whose dedup keys were pruned counts as new again: for an alert that has been
firing for longer than the retention that is what the re-evaluation timer does anyway (one step per
cooldown), so nothing acts twice that would not have.

Mixed into ``store.sql.SqlStore``; called by ``act.engine``'s pruning loop.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alertscaler.store.tables import (
    _UNFINISHED,
    actions,
    active_alerts,
    alarm_history,
    approvals,
    decisions,
    heal_history,
    heal_signals,
    notifications,
    outbox,
    outbox_attempts,
    seen_keys,
    signals,
)

TABLES = ("heal_history", "heal_signals", "actions", "decisions", "seen_keys", "notifications", "signals",
          "outbox_attempts", "outbox", "approvals", "alarm_history")


class _Connects(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...
    def _write(self) -> AbstractContextManager[Connection]: ...


def _prunable(before: datetime) -> dict[str, tuple[sa.Table, sa.ColumnElement[bool]]]:
    """Per table (in deletion order), the condition a row must meet to go. ``seen_keys`` rows go with their
    notification."""
    a, d, n, h, s = actions.c, decisions.c, notifications.c, heal_history.c, heal_signals.c
    finished = a.state.not_in(_UNFINISHED)
    old_finished_action = sa.select(a.id).where(a.id == h.action_id, finished, a.created_at < before)
    notification_kept_by = [
        sa.select(d.id).where(d.notification_id == n.id),
        sa.select(active_alerts.c.notification_id).where(active_alerts.c.notification_id == n.id),
        sa.select(s.id).where(s.notification_id == n.id),
    ]
    finished_notification = sa.and_(outbox.c.status != "pending", outbox.c.finished_at < before)
    prunable_notification = sa.and_(n.processed_at.is_not(None), n.received_at < before,
                                    *[~sa.exists(q) for q in notification_kept_by])
    return {
        "heal_history": (heal_history, sa.and_(h.at < before, sa.or_(h.action_id.is_(None),
                                                                       sa.exists(old_finished_action)))),
        "heal_signals": (heal_signals, sa.and_(s.decision_id.is_not(None), s.received_at < before)),
        "actions": (actions, sa.and_(finished, a.created_at < before,
                                     ~sa.exists(sa.select(h.id).where(h.action_id == a.id)))),
        "decisions": (decisions, sa.and_(d.decided_at < before,
                                         ~sa.exists(sa.select(a.id).where(a.decision_id == d.id)))),
        "seen_keys": (seen_keys, sa.exists(sa.select(n.id).where(n.id == seen_keys.c.notification_id,
                                                                 prunable_notification))),
        "notifications": (notifications, prunable_notification),
        # outside signals: their de-duplication keys (a retry after the retention counts as new, like a webhook's)
        "signals": (signals, signals.c.received_at < before),
        # the outbox: finished notifications (delivered or failed), their attempts first
        "outbox_attempts": (outbox_attempts, sa.exists(sa.select(outbox.c.id).where(
            outbox.c.id == outbox_attempts.c.outbox_id, finished_notification))),
        "outbox": (outbox, finished_notification),
        # approvals: ended ones (their decisions go by the decisions' own rule; none references them)
        "approvals": (approvals, sa.and_(approvals.c.state != "pending", approvals.c.resolved_at < before)),
        # alarm transitions (each alarm's current state is its alarm_states row, never pruned)
        "alarm_history": (alarm_history, alarm_history.c.recorded_at < before),
    }


def _key(table: sa.Table) -> sa.Column[Any]:
    if table is approvals:
        return table.c.decision_id
    return table.c.notification_id if table is seen_keys else table.c.id


class PruneStoreMixin:
    def prune(self: _Connects, before: datetime, batch: int = 2000) -> dict[str, int]:
        """Delete what is finished and older than ``before``; rows deleted per table. Candidates are found on
        a read connection (no write lock: webhooks are not held up while nothing is old enough); the write
        transaction then deletes at most ``batch`` of them, re-checking the condition on each row."""
        counts = dict.fromkeys(TABLES, 0)
        for name, (table, condition) in _prunable(before).items():
            key = _key(table)
            while True:
                with self._read() as conn:
                    ids = list(conn.execute(sa.select(key).where(condition).distinct().order_by(key)
                                            .limit(batch)).scalars())
                if ids:
                    with self._write() as conn:
                        counts[name] += conn.execute(sa.delete(table).where(key.in_(ids), condition)).rowcount
                if len(ids) < batch:
                    break
        return counts
