"""Replicas, action leases and group ownership for ``SqlStore`` (several replicas sharing one store).

The rules this module enforces (in SQL, so they hold across processes on SQLite and PostgreSQL):

* A replica is live while its ``replicas.expires_at`` is after the caller's ``now``; ``heartbeat`` moves it
  forward and, in the same transaction and ONE statement, the lease of every RUNNING action it holds.
* A RUNNING action's lease holds while ``lease_expires_at`` is after ``now``. ``take_over_action`` is a
  conditional UPDATE that succeeds only on an expired (or never set) lease, so a live peer's action is never
  taken and two replicas recovering the same dead peer's action cannot both get it.
* ``leave`` (clean stop) expires the replica, its action leases and its groups at once.
* A group is driven by the replica in ``group_owners`` while that replica is live. ``balance_groups``
  (serialised between replicas: PostgreSQL advisory lock; SQLite's write lock) releases and takes groups
  following rendezvous hashing over the live replicas (``store.replicas``); a group held by another live
  replica is never taken, so at any ``now`` at most one live replica holds a group.

Time is always passed in. Leases compare the callers' clocks: replicas must agree on the time to well within
the lease duration (NTP). Mixed into ``store.sql.SqlStore``; called by ``act`` (engine, lifecycle, workers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alertscaler.model.decisions import Action, ActionState
from alertscaler.store.base import ActionLease, Lease, ReplicaInfo
from alertscaler.store.replicas import assign_groups
from alertscaler.store.sql_statements import _Dialect
from alertscaler.store.tables import UtcDateTime, _action_from_row, actions, group_owners, replicas

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key serialising balance_groups between replicas ("alscgrps" as a big-endian int64).
PG_BALANCE_LOCK_KEY: Final = int.from_bytes(b"alscgrps", "big", signed=True)
FORGET_REPLICAS_AFTER: Final = timedelta(days=1)  # a replica row dead this long is deleted by heartbeat
_NAMES_PER_STATEMENT: Final = 500  # group names per IN (...) (SQLite variable limit)
_RUNNING: Final = ActionState.RUNNING.value


class _Connects(Protocol):
    _dialect: _Dialect

    def _read(self) -> AbstractContextManager[Connection]: ...
    def _write(self) -> AbstractContextManager[Connection]: ...


def _ts(name: str, value: datetime) -> sa.BindParameter[datetime]:
    return sa.bindparam(name, value, type_=UtcDateTime)


def lease_expired(now: datetime) -> sa.ColumnElement[bool]:
    """An action's lease is over at ``now`` (or was never set)."""
    return sa.or_(actions.c.lease_expires_at.is_(None), actions.c.lease_expires_at <= _ts("b_lease_now", now))


def _chunks(names: Sequence[str]) -> list[list[str]]:
    return [list(names[i:i + _NAMES_PER_STATEMENT]) for i in range(0, len(names), _NAMES_PER_STATEMENT)]


class LeaseStoreMixin:
    """The replica / lease / ownership part of ``SqlStore`` (see the module docstring)."""

    def heartbeat(self: _Connects, replica: str, now: datetime, until: datetime) -> frozenset[int]:
        if until <= now:
            raise ValueError("heartbeat: until must be after now")
        r = replicas.c
        upsert = self._dialect.insert(replicas).values(id=replica, started_at=now, heartbeat_at=now,
                                                       expires_at=until, stopped_at=None)
        upsert = upsert.on_conflict_do_update(
            index_elements=[r.id],
            set_={"heartbeat_at": upsert.excluded.heartbeat_at, "expires_at": upsert.excluded.expires_at,
                  "stopped_at": None})
        with self._write() as conn:
            conn.execute(upsert)
            renewed = conn.execute(
                actions.update()
                .where(actions.c.owner == replica, actions.c.state == _RUNNING)
                .values(lease_expires_at=_ts("b_until", until))
                .returning(actions.c.id)
            ).scalars().all()
            conn.execute(replicas.delete().where(r.expires_at < _ts("b_forget", now - FORGET_REPLICAS_AFTER)))
        return frozenset(int(i) for i in renewed)

    def leave(self: _Connects, replica: str, now: datetime) -> list[int]:
        with self._write() as conn:
            conn.execute(replicas.update().where(replicas.c.id == replica)
                         .values(expires_at=_ts("b_now", now), stopped_at=_ts("b_stop", now)))
            handed = conn.execute(
                actions.update()
                .where(actions.c.owner == replica, actions.c.state == _RUNNING)
                .values(lease_expires_at=_ts("b_now", now))
                .returning(actions.c.id)
            ).scalars().all()
            conn.execute(group_owners.update().where(group_owners.c.owner == replica)
                         .values(owner=None, since=_ts("b_now", now)))
        return sorted(int(i) for i in handed)

    def live_replicas(self: _Connects, now: datetime) -> list[ReplicaInfo]:
        r = replicas.c
        with self._read() as conn:
            rows = conn.execute(sa.select(replicas).where(r.expires_at > _ts("b_now", now)).order_by(r.id)).all()
        return [ReplicaInfo(id=row.id, started_at=row.started_at, heartbeat_at=row.heartbeat_at,
                            expires_at=row.expires_at, stopped_at=row.stopped_at) for row in rows]

    def expired_actions(self: _Connects, now: datetime) -> list[Action]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(actions).where(actions.c.state == _RUNNING, lease_expired(now)).order_by(actions.c.id)
            ).all()
        return [_action_from_row(row) for row in rows]

    def take_over_action(self: _Connects, action_id: int, now: datetime, lease: Lease) -> Action | None:
        if lease.until <= now:
            raise ValueError("take_over_action: the new lease must end after now")
        with self._write() as conn:
            row = conn.execute(
                actions.update()
                .where(actions.c.id == action_id, actions.c.state == _RUNNING, lease_expired(now))
                .values(owner=lease.owner, lease_expires_at=_ts("b_until", lease.until))
                .returning(*actions.c)
            ).first()
        if row is None:
            return None
        log.warning("action %s group=%s taken over by replica %s (the previous lease had expired)",
                    action_id, row.group_name, lease.owner)
        return _action_from_row(row)

    def action_lease(self: _Connects, action_id: int) -> ActionLease | None:
        a = actions.c
        with self._read() as conn:
            row = conn.execute(sa.select(a.id, a.group_name, a.owner, a.lease_expires_at)
                               .where(a.id == action_id, a.state == _RUNNING)).first()
        if row is None:
            return None
        return ActionLease(action_id=row.id, group=row.group_name, owner=row.owner, until=row.lease_expires_at)

    def balance_groups(self: _Connects, replica: str, groups: Sequence[str], now: datetime) -> frozenset[str]:
        g = group_owners.c
        with self._write() as conn:
            if not self._dialect.sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_BALANCE_LOCK_KEY})
            live = list(conn.execute(sa.select(replicas.c.id).where(replicas.c.expires_at > _ts("b_now", now))
                                     ).scalars())
            if replica not in live:
                return frozenset()
            assignment = assign_groups(groups, live)
            wanted = {name for name, owner in assignment.items() if owner == replica}
            held = set(conn.execute(sa.select(g.group_name).where(g.owner == replica)).scalars())
            busy = set(conn.execute(sa.select(actions.c.group_name).distinct()
                                    .where(actions.c.owner == replica, actions.c.state == _RUNNING)).scalars())
            for names in _chunks(sorted(held - wanted - busy)):
                conn.execute(group_owners.update().where(g.owner == replica, g.group_name.in_(names))
                             .values(owner=None, since=_ts("b_now", now)))
            kept = held & (wanted | busy)
            taken: set[str] = set()
            free = sa.or_(g.owner.is_(None), g.owner.not_in(live))
            for names in _chunks(sorted(wanted - held)):
                taken.update(conn.execute(
                    group_owners.update().where(g.group_name.in_(names), free)
                    .values(owner=replica, since=_ts("b_now", now)).returning(g.group_name)).scalars())
                missing = set(names) - taken - set(conn.execute(
                    sa.select(g.group_name).where(g.group_name.in_(names))).scalars())
                if missing:
                    insert = self._dialect.insert(group_owners).on_conflict_do_nothing(index_elements=[g.group_name])
                    params: list[dict[str, Any]] = [{"group_name": n, "owner": replica, "since": now}
                                                    for n in sorted(missing)]
                    taken.update(row.group_name for row in conn.execute(
                        insert.returning(g.group_name, sort_by_parameter_order=True), params))
        return frozenset(kept | taken)

    def group_owners(self: _Connects, now: datetime) -> dict[str, str]:
        g, r = group_owners.c, replicas.c
        with self._read() as conn:
            rows = conn.execute(sa.select(g.group_name, g.owner)
                                .join_from(group_owners, replicas, r.id == g.owner)
                                .where(r.expires_at > _ts("b_now", now)).order_by(g.group_name)).all()
        return {row.group_name: row.owner for row in rows}
