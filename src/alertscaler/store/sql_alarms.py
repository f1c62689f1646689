"""The alarm part of ``SqlStore``: each alarm's current state per dimension set (table ``alarm_states``) and its
transitions (table ``alarm_history``, kept until retention prunes them).

Mixed into ``store.sql.SqlStore`` (reads: ``alarm_states``, ``alarm_history``) and ``store.sql_tx._SqlTx``
(inside a write transaction: ``lock_alarm_states``, ``save_alarm_state``, ``add_alarm_transitions``). Called by
``act.alarming`` (in the transaction that records and decides on a notification) and ``api`` (the listings).

``lock_alarm_states`` creates missing rows (``INSERT ... ON CONFLICT DO NOTHING``) and then reads them with a
row lock, in key order, so two replicas folding alerts of the same alarm into its state take turns instead of
losing one's update.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Row

from alertscaler.model.alarms import (
    AlarmSignal,
    AlarmState,
    AlarmStatus,
    AlertMark,
    Transition,
    dims_key,
)
from alertscaler.store.tables import _check_limit, _dumps, alarm_history, alarm_states

_s = alarm_states.c
_h = alarm_history.c
_KEYS_PER_SELECT: Final = 400  # (alarm, dims_key) pairs per statement (SQLite variable limit)
Key = tuple[str, str]  # (alarm, dims_key)


class _Reads(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...


class _Executes(Protocol):
    _conn: Connection

    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> sa.CursorResult[Any]: ...


def _marks(text: str) -> dict[str, AlertMark]:
    return {fp: AlertMark(AlarmSignal(m["signal"]), bool(m["firing"]), datetime.fromisoformat(m["at"]))
            for fp, m in json.loads(text).items()}


def _status(row: Row[Any]) -> AlarmStatus:
    return AlarmStatus(alarm=row.alarm, dimensions=json.loads(row.dimensions), state=AlarmState(row.state),
                       since=row.since, updated_at=row.updated_at, reason=row.reason, alerts=_marks(row.alerts))


def _transition(row: Row[Any]) -> Transition:
    return Transition(alarm=row.alarm, dimensions=json.loads(row.dimensions), old=AlarmState(row.old_state),
                      new=AlarmState(row.new_state), at=row.at, reason=row.reason, actions=(),
                      id=row.id, recorded_at=row.recorded_at, notification_id=row.notification_id)


def transition_actions(row_actions: str) -> list[str]:
    """The actions a stored transition was due (as written: ``scale web scale_out``, ``log``)."""
    return [str(a) for a in json.loads(row_actions)]


class AlarmStoreMixin:
    def alarm_states(self: _Reads, alarm: str | None = None) -> list[AlarmStatus]:
        """The stored state of every alarm and dimension set (or of one alarm), by alarm and dimensions."""
        stmt = sa.select(alarm_states).where(_s.state != "")
        if alarm is not None:
            stmt = stmt.where(_s.alarm == alarm)
        with self._read() as conn:
            return [_status(r) for r in conn.execute(stmt.order_by(_s.alarm, _s.dims_key))]

    def alarm_history(self: _Reads, alarm: str, limit: int = 100,
                      dimensions: Mapping[str, str] | None = None) -> list[tuple[Transition, list[str]]]:
        """An alarm's transitions, newest first (optionally of one dimension set), each with the actions that
        were due on it."""
        stmt = sa.select(alarm_history).where(_h.alarm == alarm)
        if dimensions is not None:
            stmt = stmt.where(_h.dims_key == dims_key(dimensions))
        stmt = stmt.order_by(_h.id.desc()).limit(_check_limit(limit))
        with self._read() as conn:
            return [(_transition(r), transition_actions(r.actions)) for r in conn.execute(stmt)]


class AlarmTxMixin:
    def lock_alarm_states(self: _Executes, keys: Sequence[Key], now: datetime) -> dict[Key, AlarmStatus]:
        """The stored states of ``keys`` (absent: never stored), locked until the end of the transaction
        (created first if missing, as placeholders: state ``""``, which the caller overwrites or leaves)."""
        todo = sorted(set(keys))
        if not todo:
            return {}
        insert = (sqlite_dialect.insert(alarm_states) if self._conn.dialect.name == "sqlite"
                  else pg_dialect.insert(alarm_states)).on_conflict_do_nothing(index_elements=[_s.alarm, _s.dims_key])
        self._execute(insert, [{"alarm": a, "dims_key": k, "dimensions": k, "state": "", "since": now,
                                "updated_at": now, "reason": "", "alerts": "{}"} for a, k in todo])
        out: dict[Key, AlarmStatus] = {}
        for start in range(0, len(todo), _KEYS_PER_SELECT):
            chunk = todo[start:start + _KEYS_PER_SELECT]
            stmt = (sa.select(alarm_states).where(sa.tuple_(_s.alarm, _s.dims_key).in_(chunk))
                    .order_by(_s.alarm, _s.dims_key))
            if self._conn.dialect.name != "sqlite":
                stmt = stmt.with_for_update()
            for row in self._execute(stmt):
                if row.state:  # a placeholder just made is no state yet
                    out[(row.alarm, row.dims_key)] = _status(row)
        return out

    def save_alarm_state(self: _Executes, status: AlarmStatus, now: datetime) -> None:
        """Write ``status`` (its row made by ``lock_alarm_states`` in this transaction)."""
        alerts = {fp: {"signal": m.signal.value, "firing": m.firing, "at": m.at.isoformat()}
                  for fp, m in status.alerts.items()}
        self._execute(alarm_states.update().where(_s.alarm == status.alarm, _s.dims_key == status.key).values(
            dimensions=_dumps(dict(status.dimensions)), state=status.state.value, since=status.since or now,
            updated_at=status.updated_at or now, reason=status.reason, alerts=_dumps(alerts)))

    def add_alarm_transitions(self: _Executes, transitions: Sequence[Transition], recorded_at: datetime,
                              notification_id: int | None = None) -> list[int]:
        """Store the transitions (one row each, few per notification); returns their history ids, in order (a
        notification of a transition names its row)."""
        ids = []
        for t in transitions:
            result = self._execute(alarm_history.insert(), {
                "alarm": t.alarm, "dims_key": dims_key(t.dimensions), "dimensions": _dumps(dict(t.dimensions)),
                "old_state": t.old.value, "new_state": t.new.value, "at": t.at, "recorded_at": recorded_at,
                "reason": t.reason, "actions": _dumps([str(a) for a in t.actions]),
                "notification_id": notification_id})
            key = result.inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
        return ids
