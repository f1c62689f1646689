"""The removed-members part of ``SqlStore``: members alertscaler takes out of a group on purpose (table
``removed_members``, one row per group and member id: ``removing`` while it drains, then ``removed``), kept
while remembered (``model.removals.REMEMBER`` after the stop) and deleted after that (by the next removal).

Mixed into ``store.sql.SqlStore`` (``removed_members``: a read, for ``/api/v1/targets``; the writes of a
provider's departures, each in its own short transaction) and ``store.sql_tx._SqlTx`` (inside a write
transaction: the group's remembered members, marking the one ``removed_member`` decision). Called by
``act.removals`` (the provider's departures), ``act.heal_intake`` and ``act.healing`` (dropping heal signals
about removed members) and ``api`` (the targets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from alertscaler.model.removals import REMEMBER, RemovalState, RemovedMember
from alertscaler.store.tables import removed_members

_r = removed_members.c
_REMOVING = RemovalState.REMOVING.value
_REMOVED = RemovalState.REMOVED.value


class _Writes(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...
    def _write(self) -> AbstractContextManager[Connection]: ...


class _Executes(Protocol):
    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> sa.CursorResult[Any]: ...


def _remembered(now: datetime) -> sa.ColumnElement[bool]:
    """Rows still remembered at ``now`` (``RemovedMember.remembered``): stopped, or still removing and started
    leaving, less than ``REMEMBER`` ago."""
    return sa.func.coalesce(_r.removed_at, _r.since) > now - REMEMBER


def _member(row: Row[Any]) -> RemovedMember:
    return RemovedMember(group=row.group_name, member_id=row.member_id, address=row.address,
                         state=RemovalState(row.state), why=row.why, since=row.since, removed_at=row.removed_at,
                         reported_at=row.reported_at)


class RemovalStoreMixin:
    def removed_members(self: _Writes, now: datetime, group: str | None = None) -> list[RemovedMember]:
        """Every member remembered as removed at ``now`` (optionally of one group), by group and member id."""
        stmt = sa.select(removed_members).where(_remembered(now))
        if group is not None:
            stmt = stmt.where(_r.group_name == group)
        with self._read() as conn:
            return [_member(row) for row in conn.execute(stmt.order_by(_r.group_name, _r.member_id))]

    def add_removing(self: _Writes, group: str, members: Sequence[tuple[str, str | None]], why: str,
                     now: datetime) -> None:
        """Members (id, address) of ``group`` leave discovery at ``now``: ``removing`` (a row left by an earlier
        removal of the same id is replaced; one already ``removing`` keeps its start). Forgets, on the way, the
        members of every group no longer remembered."""
        ids = [member_id for member_id, _ in members]
        with self._write() as conn:
            conn.execute(removed_members.delete().where(sa.not_(_remembered(now))))
            if not ids:
                return
            leaving = {row.member_id for row in conn.execute(
                sa.select(_r.member_id).where(_r.group_name == group, _r.member_id.in_(ids), _r.state == _REMOVING))}
            fresh = [(member_id, address) for member_id, address in dict(members).items() if member_id not in leaving]
            if not fresh:
                return
            conn.execute(removed_members.delete().where(_r.group_name == group,
                                                         _r.member_id.in_([m for m, _ in fresh])))
            conn.execute(removed_members.insert(), [
                {"group_name": group, "member_id": member_id, "address": address, "state": _REMOVING, "why": why,
                 "since": now, "removed_at": None, "reported_at": None} for member_id, address in fresh])

    def mark_removed(self: _Writes, group: str, member_ids: Sequence[str], now: datetime) -> None:
        """The members (``removing``) are stopped: ``removed`` from ``now``."""
        if not member_ids:
            return
        with self._write() as conn:
            conn.execute(removed_members.update().where(
                _r.group_name == group, _r.member_id.in_(list(member_ids)), _r.state == _REMOVING)
                .values(state=_REMOVED, removed_at=now))

    def forget_removing(self: _Writes, group: str, member_ids: Sequence[str]) -> None:
        """A removal abandoned (the member stays in the group): its ``removing`` row is deleted."""
        if not member_ids:
            return
        with self._write() as conn:
            conn.execute(removed_members.delete().where(
                _r.group_name == group, _r.member_id.in_(list(member_ids)), _r.state == _REMOVING))


class RemovalTxMixin:
    def removed_members_of(self: _Executes, group: str, now: datetime) -> list[RemovedMember]:
        """The members of ``group`` remembered as removed at ``now``, by member id."""
        rows = self._execute(sa.select(removed_members).where(_r.group_name == group, _remembered(now))
                             .order_by(_r.member_id)).all()
        return [_member(row) for row in rows]

    def mark_removed_reported(self: _Executes, group: str, member_ids: Sequence[str], now: datetime) -> list[str]:
        """Claim the one ``removed_member`` decision of each member: returns the ids not reported before (their
        ``reported_at`` is now ``now``); the others already have theirs."""
        if not member_ids:
            return []
        fresh = []
        for member_id in dict.fromkeys(member_ids):  # one conditional UPDATE each: of two replicas, one wins
            done = self._execute(removed_members.update().where(
                _r.group_name == group, _r.member_id == member_id, _r.reported_at.is_(None)).values(reported_at=now))
            if done.rowcount:
                fresh.append(member_id)
        return fresh
