"""The SQL statements of ``SqlStore`` and its transactions, built once per store (SQLAlchemy then finds them
in its compiled cache instead of compiling a statement per call), and the dialect differences they depend on.
Used by ``store.sql`` and ``store.sql_tx`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from alertscaler.store.tables import (
    _UNFINISHED,
    UtcDateTime,
    actions,
    active_alerts,
    decisions,
    group_states,
    notifications,
    seen_keys,
)


@dataclass(frozen=True)
class _Dialect:
    """What differs between the back ends, decided once at construction."""

    name: str

    @property
    def sqlite(self) -> bool:
        return self.name == "sqlite"

    def insert(self, table: sa.Table) -> Any:  # sqlite.Insert | postgresql.Insert: same API we use
        return sqlite_dialect.insert(table) if self.sqlite else pg_dialect.insert(table)


class _Statements:
    """The transaction's statements, built once per store: SQLAlchemy then finds them in its compiled cache
    instead of building and compiling a statement per call (the notification hot path runs ~9 of them)."""

    def __init__(self, dialect: _Dialect) -> None:
        b = sa.bindparam
        g, a, d = group_states.c, active_alerts.c, decisions.c
        self.group_create = (dialect.insert(group_states)
                             .values(name=b("b_name"), desired=b("b_desired"))
                             .on_conflict_do_nothing(index_elements=[g.name]))
        select_group = sa.select(group_states).where(g.name == b("b_name"))
        self.group_select = select_group if dialect.sqlite else select_group.with_for_update()
        # Rows are locked in the order they are read: code-point order (COLLATE "C" on PostgreSQL), the order
        # Python's sorted() gives lock_groups' chunks, whatever the database's collation — one lock order for
        # every transaction, so lock_groups calls never deadlock each other.
        select_many = (sa.select(group_states).where(g.name.in_(sa.bindparam("b_names", expanding=True)))
                       .order_by(g.name if dialect.sqlite else g.name.collate("C")))
        self.groups_select = select_many if dialect.sqlite else select_many.with_for_update()
        self.group_update = (group_states.update().where(g.name == b("b_name"))
                             .values(desired=b("b_desired"), last_scale_out_at=b("b_out", type_=UtcDateTime),
                                     last_scale_in_at=b("b_in", type_=UtcDateTime),
                                     updated_at=b("b_updated", type_=UtcDateTime),
                                     held_until=b("b_held", type_=UtcDateTime)))
        self.decision_insert = decisions.insert().returning(d.id)
        self.decision_insert_many = decisions.insert()
        self.action_insert = actions.insert().returning(actions.c.id, actions.c.state)
        self.unfinished_of_group = (sa.select(actions.c.id)
                                    .where(actions.c.group_name == b("b_group"), actions.c.state.in_(_UNFINISHED))
                                    .limit(1))
        self.decision_link = decisions.update().where(d.id == b("b_decision")).values(action_id=b("b_action"))
        upsert = dialect.insert(active_alerts)
        self.alert_upsert = upsert.on_conflict_do_update(
            index_elements=[a.group_name, a.policy, a.fingerprint],
            set_={k: upsert.excluded[k] for k in ("labels", "last_seen_at", "notification_id")},
        )
        self.alert_upsert_reason = upsert.on_conflict_do_update(
            index_elements=[a.group_name, a.policy, a.fingerprint],
            set_={k: upsert.excluded[k] for k in ("labels", "last_seen_at", "notification_id", "last_reason")},
        )
        key = (a.group_name == b("b_group"), a.policy == b("b_policy"), a.fingerprint == b("b_fingerprint"))
        self.alert_reason = active_alerts.update().where(*key).values(last_reason=b("b_reason"))
        self.alert_delete = active_alerts.delete().where(*key)
        self.notification_insert = notifications.insert().returning(notifications.c.id,
                                                                    sort_by_parameter_order=True)
        self.keys_claim_owner = (dialect.insert(seen_keys)
                                 .on_conflict_do_nothing(index_elements=[seen_keys.c.dedup_key])
                                 .returning(seen_keys.c.notification_id, seen_keys.c.dedup_key,
                                            sort_by_parameter_order=True))
        self.keys_claim = (dialect.insert(seen_keys)
                           .on_conflict_do_nothing(index_elements=[seen_keys.c.dedup_key])
                           .returning(seen_keys.c.dedup_key, sort_by_parameter_order=True))
        summary = (sa.select(a.group_name, a.policy, a.last_reason, sa.func.count().label("n"),
                             sa.func.min(a.last_seen_at).label("oldest"))
                   .group_by(a.group_name, a.policy, a.last_reason))
        self.route_summaries = summary.order_by(a.group_name, a.policy)
        self.route_summary = summary.where(a.group_name == b("b_group"), a.policy == b("b_policy"))
        self.mark_processed = (notifications.update()
                               .where(notifications.c.id == b("b_id"), notifications.c.processed_at.is_(None))
                               .values(processed_at=b("b_now", type_=UtcDateTime)))
