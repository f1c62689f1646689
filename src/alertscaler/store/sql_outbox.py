"""The notification outbox part of ``SqlStore``: notifications of alarm transitions to send (table ``outbox``) and
their delivery attempts (``outbox_attempts``).

Mixed into ``store.sql.SqlStore`` (``due_notifications``, ``claim_notification``, ``finish_notification``, the
listings) and ``store.sql_tx._SqlTx`` (``enqueue_notifications``, in the transaction that stores the alarm
transition: what a transition must send is never lost, even when the process dies right after). Called by
``act.notifying`` (enqueue, the delivery loop) and ``api`` (the listings).

A delivery is claimed before it is sent: one conditional ``UPDATE`` (still pending, due, and no claim or an
expired one), so of two replicas only one sends an attempt; the claim lasts the send's timeout and a margin, so
that a replica dying mid-send leaves it to another (or to itself after a restart) once the claim ends. The
attempt is then recorded and the row moved on (delivered, failed, or pending with its next attempt's time) in
one transaction, only while the claim is still the sender's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from alertscaler.model.notifications import (
    AlarmEvent,
    Attempt,
    AttemptOutcome,
    DeliveryStatus,
    MethodKind,
    NewOutgoing,
    Outgoing,
)
from alertscaler.store.tables import _check_limit, outbox, outbox_attempts

_o = outbox.c
_a = outbox_attempts.c
_IDS_PER_SELECT: Final = 500
_DETAIL_MAX: Final = 2000


class _Connects(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...
    def _write(self) -> AbstractContextManager[Connection]: ...


class _Executes(Protocol):
    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> sa.CursorResult[Any]: ...


def _attempt(row: Row[Any]) -> Attempt:
    return Attempt(attempt=row.attempt, at=row.at, replica=row.replica, ok=bool(row.ok), status=row.status,
                   detail=row.detail, duration_ms=row.duration_ms)


def _outgoing(row: Row[Any], history: Sequence[Attempt] = ()) -> Outgoing:
    return Outgoing(id=row.id, uid=row.uid, method=row.method, kind=MethodKind(row.kind), target=row.target,
                    alarm=row.alarm, group=row.group_name, history_id=row.history_id,
                    event=AlarmEvent.from_json(row.event), status=DeliveryStatus(row.status), attempts=row.attempts,
                    max_attempts=row.max_attempts, created_at=row.created_at, next_attempt_at=row.next_attempt_at,
                    claimed_by=row.claimed_by, claimed_until=row.claimed_until, finished_at=row.finished_at,
                    last_result=row.last_result, history=tuple(history))


def _with_history(conn: Connection, rows: Sequence[Row[Any]]) -> list[Outgoing]:
    ids = [r.id for r in rows]
    history: dict[int, list[Attempt]] = {i: [] for i in ids}
    for start in range(0, len(ids), _IDS_PER_SELECT):
        chunk = ids[start:start + _IDS_PER_SELECT]
        for a in conn.execute(sa.select(outbox_attempts).where(_a.outbox_id.in_(chunk))
                              .order_by(_a.outbox_id, _a.attempt, _a.id)):
            history[a.outbox_id].append(_attempt(a))
    return [_outgoing(r, history[r.id]) for r in rows]


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(_o.status == DeliveryStatus.PENDING.value, _o.next_attempt_at <= now,
                   sa.or_(_o.claimed_until.is_(None), _o.claimed_until <= now))


class OutboxStoreMixin:
    def due_notifications(self: _Connects, now: datetime, limit: int = 50) -> list[Outgoing]:
        """Pending notifications whose next attempt is due at ``now`` and that nobody holds a claim on, the
        longest due first."""
        stmt = (sa.select(outbox).where(_claimable(now)).order_by(_o.next_attempt_at, _o.id)
                .limit(_check_limit(limit)))
        with self._read() as conn:
            return [_outgoing(r) for r in conn.execute(stmt)]

    def next_notification_due(self: _Connects) -> datetime | None:
        """When the earliest pending notification is due (None: nothing pending)."""
        with self._read() as conn:
            value: datetime | None = conn.execute(
                sa.select(sa.func.min(_o.next_attempt_at)).where(_o.status == DeliveryStatus.PENDING.value)
            ).scalar_one_or_none()
        return value

    def claim_notification(self: _Connects, notification_id: int, replica: str, now: datetime,
                           until: datetime) -> Outgoing | None:
        """Claim a due notification for ``replica`` until ``until``: the row as claimed, or None when it is not
        due, no longer pending, or claimed by another (one conditional UPDATE: exactly one claimant wins)."""
        with self._write() as conn:
            claimed = conn.execute(outbox.update().where(_o.id == notification_id, _claimable(now))
                                   .values(claimed_by=replica, claimed_until=until)).rowcount
            if claimed != 1:
                return None
            row = conn.execute(sa.select(outbox).where(_o.id == notification_id)).one()
            return _outgoing(row)

    def finish_notification(self: _Connects, notification_id: int, replica: str, attempt: Attempt,
                            outcome: AttemptOutcome) -> bool:
        """Record ``attempt`` and move the row to ``outcome`` (releasing the claim). The attempt is recorded
        whatever happens (it was made); the row moves only while ``replica`` still holds its claim (False: the
        claim had ended and another replica took it)."""
        finished = outcome.status is not DeliveryStatus.PENDING
        with self._write() as conn:
            conn.execute(outbox_attempts.insert().values(
                outbox_id=notification_id, attempt=attempt.attempt, at=attempt.at, replica=attempt.replica,
                ok=attempt.ok, status=attempt.status[:200], detail=attempt.detail[:_DETAIL_MAX],
                duration_ms=attempt.duration_ms))
            values: dict[str, Any] = {
                "status": outcome.status.value, "attempts": attempt.attempt, "claimed_by": None,
                "claimed_until": None, "last_result": outcome.last_result[:_DETAIL_MAX],
                "finished_at": attempt.at if finished else None}
            if outcome.next_attempt_at is not None:
                values["next_attempt_at"] = outcome.next_attempt_at
            moved = conn.execute(outbox.update().where(
                _o.id == notification_id, _o.claimed_by == replica,
                _o.status == DeliveryStatus.PENDING.value).values(**values)).rowcount
        return bool(moved == 1)

    def list_notifications(self: _Connects, alarm: str | None = None, status: DeliveryStatus | None = None,
                           method: str | None = None, since: datetime | None = None,
                           limit: int = 100) -> list[Outgoing]:
        """Notifications, newest first, each with its attempts (oldest first)."""
        stmt = sa.select(outbox)
        if alarm is not None:
            stmt = stmt.where(_o.alarm == alarm)
        if status is not None:
            stmt = stmt.where(_o.status == status.value)
        if method is not None:
            stmt = stmt.where(_o.method == method)
        if since is not None:
            stmt = stmt.where(_o.created_at >= since)
        stmt = stmt.order_by(_o.id.desc()).limit(_check_limit(limit))
        with self._read() as conn:
            return _with_history(conn, conn.execute(stmt).all())

    def get_notification(self: _Connects, notification_id: int) -> Outgoing | None:
        with self._read() as conn:
            row = conn.execute(sa.select(outbox).where(_o.id == notification_id)).first()
            return _with_history(conn, [row])[0] if row is not None else None


class OutboxTxMixin:
    def enqueue_notifications(self: _Executes, items: Sequence[NewOutgoing], now: datetime) -> list[int]:
        """Put ``items`` in the outbox, due at ``now``; their ids, in order."""
        ids = []
        for item in items:
            ids.append(int(self._execute(outbox.insert().returning(_o.id), {
                "uid": item.uid, "method": item.method, "kind": item.kind.value, "target": item.target,
                "alarm": item.event.alarm, "group_name": item.group, "history_id": item.history_id,
                "event": item.event.to_json(), "status": DeliveryStatus.PENDING.value, "attempts": 0,
                "max_attempts": item.max_attempts, "created_at": now, "next_attempt_at": now,
                "claimed_by": None, "claimed_until": None, "finished_at": None, "last_result": ""}).scalar_one()))
        return ids
