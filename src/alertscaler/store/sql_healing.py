"""The healing part of ``SqlStore``: heal signals (pending until their group's batch window closes) and
heal history (what the flap detection and the budget count; which member replaced which).

Mixed into ``store.sql.SqlStore`` (reads, own transactions) and ``store.sql._SqlTx`` (inside a write
transaction): the methods use the host class's ``_read``/``_write`` and ``_execute``. Called by
``act.processing`` (signals from alerts), ``act.healing`` (judging a batch) and ``act.executing`` (history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alertscaler.model.healing import HealAction, HealRecord, HealSignal, SignalSource
from alertscaler.store.base import PendingSignal
from alertscaler.store.tables import heal_history, heal_signals


class _Reads(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...
    def _write(self) -> AbstractContextManager[Connection]: ...


class _Executes(Protocol):
    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> sa.CursorResult[Any]: ...


_pending = heal_signals.c.decision_id.is_(None)


class HealStoreMixin:
    def pending_heal_groups(self: _Reads) -> list[tuple[str, datetime]]:
        """Groups with pending heal signals and the arrival of their oldest one (the window's start)."""
        s = heal_signals.c
        stmt = (sa.select(s.group_name, sa.func.min(s.received_at).label("first"))
                .where(_pending).group_by(s.group_name).order_by(s.group_name))
        with self._read() as conn:
            return [(row.group_name, row.first) for row in conn.execute(stmt)]

    def add_heal_records(self: _Reads, group: str, records: Sequence[tuple[HealRecord, int | None, str | None]]
                         ) -> None:
        """Record heals done: (record, action id, the replacement's id for ``replace``)."""
        if not records:
            return
        with self._write() as conn:
            conn.execute(heal_history.insert(), [
                {"group_name": group, "slot": r.slot, "member_id": r.member_id, "action": r.action.value,
                 "at": r.at, "action_id": action_id, "replaced_by": new}
                for r, action_id, new in records])

    def heal_history(self: _Reads, group: str, since: datetime) -> list[HealRecord]:
        with self._read() as conn:
            return _history(conn, group, since)


class HealTxMixin:
    def add_heal_signals(self: _Executes, group: str, signals: Sequence[HealSignal],
                         notification_id: int | None = None) -> int:
        """Add signals, skipping one that repeats a PENDING signal of the same member and source (a member
        reported failed at every status pass counts once per window). Returns how many were added."""
        s = heal_signals.c
        pending = {(row.member_key, row.source) for row in self._execute(
            sa.select(s.member_key, s.source).where(_pending, s.group_name == group))}
        rows = []
        for signal in signals:
            key = (signal.member_key, signal.source.value)
            if key in pending:
                continue
            pending.add(key)
            rows.append({"group_name": group, "member_key": signal.member_key, "source": signal.source.value,
                         "reason": signal.reason, "received_at": signal.at, "notification_id": notification_id,
                         "decision_id": None})
        if rows:
            self._execute(heal_signals.insert(), rows)
        return len(rows)

    def pending_heal_signals(self: _Executes, group: str) -> list[PendingSignal]:
        s = heal_signals.c
        rows = self._execute(sa.select(heal_signals).where(_pending, s.group_name == group)
                             .order_by(s.received_at, s.id)).all()
        return [PendingSignal(row.id, HealSignal(row.member_key, SignalSource(row.source), row.reason,
                                                 row.received_at)) for row in rows]

    def consume_heal_signals(self: _Executes, ids: Sequence[int], decision_id: int) -> None:
        if ids:
            self._execute(heal_signals.update().where(heal_signals.c.id.in_(list(ids)))
                          .values(decision_id=decision_id))

    def drop_heal_signals(self: _Executes, ids: Sequence[int]) -> None:
        """Delete signals judged without a decision of their own (about a removed member already reported)."""
        if ids:
            self._execute(heal_signals.delete().where(heal_signals.c.id.in_(list(ids))))

    def heal_history_in(self: _Executes, group: str, since: datetime) -> list[HealRecord]:
        h = heal_history.c
        rows = self._execute(sa.select(heal_history).where(h.group_name == group, h.at > since)
                             .order_by(h.at, h.id)).all()
        return [_record(row) for row in rows]

    def heal_slots(self: _Executes, group: str) -> dict[str, str]:
        """Replacement member id → the slot it took over."""
        h = heal_history.c
        rows = self._execute(sa.select(h.replaced_by, h.slot)
                             .where(h.group_name == group, h.replaced_by.is_not(None))).all()
        return {row.replaced_by: row.slot for row in rows}


def _history(conn: Connection, group: str, since: datetime) -> list[HealRecord]:
    h = heal_history.c
    rows = conn.execute(sa.select(heal_history).where(h.group_name == group, h.at > since)
                        .order_by(h.at, h.id)).all()
    return [_record(row) for row in rows]


def _record(row: Any) -> HealRecord:
    return HealRecord(row.slot, row.member_id, HealAction(row.action), row.at)
