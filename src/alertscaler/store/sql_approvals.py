"""The approval part of ``SqlStore``: changes that wait for an operator's approval (table ``approvals``, one row
per ``pending_approval`` decision, keyed by that decision's id, kept once resolved until retention prunes it).

Mixed into ``store.sql.SqlStore`` (reads: ``approvals``, ``get_approval``, ``due_approvals``) and
``store.sql_tx._SqlTx`` (inside a write transaction: ``pending_approvals``, ``add_approval``, ``get_approval``,
``resolve_approval``). Called by ``act.recording`` (a change that waits, a newer one superseding it),
``act.approving`` (approve, reject, the expiry pass) and ``api`` (the listings).

Resolving is one conditional ``UPDATE ... WHERE state = 'pending'``: of two replicas (or an operator and the
expiry pass) resolving the same approval, exactly one sees it change and records the decision that ends it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alertscaler.model.approvals import ApprovalState, PendingApproval
from alertscaler.store.tables import _approval_from_row, _check_limit, _dumps, approvals, decisions

_PENDING = ApprovalState.PENDING.value


class _Reads(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...


class _Executes(Protocol):
    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> sa.CursorResult[Any]: ...


class ApprovalStoreMixin:
    def approvals(self: _Reads, group: str | None = None, pending_only: bool = True,
                  limit: int = 100) -> list[PendingApproval]:
        """Approvals, newest first: the pending ones (expired ones not yet marked included: ``waiting`` tells),
        or (``pending_only`` False) every kept one; optionally of one group."""
        a = approvals.c
        stmt = sa.select(approvals)
        if group is not None:
            stmt = stmt.where(a.group_name == group)
        if pending_only:
            stmt = stmt.where(a.state == _PENDING)
        stmt = stmt.order_by(a.decision_id.desc()).limit(_check_limit(limit))
        with self._read() as conn:
            return [_approval_from_row(r) for r in conn.execute(stmt)]

    def get_approval(self: _Reads, decision_id: int) -> PendingApproval | None:
        with self._read() as conn:
            row = conn.execute(sa.select(approvals).where(approvals.c.decision_id == decision_id)).first()
        return _approval_from_row(row) if row is not None else None

    def due_approvals(self: _Reads, now: datetime) -> list[PendingApproval]:
        """Pending approvals whose expiry is at or before ``now``, oldest first (the expiry pass's work)."""
        a = approvals.c
        stmt = (sa.select(approvals).where(a.state == _PENDING, a.expires_at <= now)
                .order_by(a.decision_id))
        with self._read() as conn:
            return [_approval_from_row(r) for r in conn.execute(stmt)]


class ApprovalTxMixin:
    def pending_approvals(self: _Executes, group: str) -> list[PendingApproval]:
        """The group's pending approvals (expired ones not yet marked included), oldest first."""
        a = approvals.c
        rows = self._execute(sa.select(approvals).where(a.group_name == group, a.state == _PENDING)
                             .order_by(a.decision_id))
        return [_approval_from_row(r) for r in rows]

    def add_approval(self: _Executes, approval: PendingApproval, decision_message: str | None = None) -> None:
        """Keep a change that waits (its decision, ``approval.decision_id``, added first in this transaction);
        ``decision_message``: that decision's message, rewritten (it names the approval's id, known only now)."""
        values = asdict(approval)
        values.update(group_name=values.pop("group"), kind=approval.kind.value, trigger=approval.trigger.value,
                      state=approval.state.value,
                      targets=_dumps([asdict(t) for t in approval.targets]) if approval.targets else None)
        self._execute(approvals.insert().values(**values))
        if decision_message is not None:
            self._execute(decisions.update().where(decisions.c.id == approval.decision_id)
                          .values(message=decision_message))

    def get_approval(self: _Executes, decision_id: int, lock: bool = False) -> PendingApproval | None:
        """One approval, read in this transaction; ``lock``: held until the end of it (PostgreSQL: a row lock;
        SQLite: the write transaction holds everything). Lock the group's row first (``lock_group``)."""
        stmt = sa.select(approvals).where(approvals.c.decision_id == decision_id)
        row = self._execute(stmt.with_for_update() if lock else stmt).first()
        return _approval_from_row(row) if row is not None else None

    def resolve_approval(self: _Executes, decision_id: int, state: ApprovalState, now: datetime, by: str,
                         resolution_id: int | None) -> bool:
        """End a PENDING approval as ``state`` (by whom or what, the decision that recorded it). False when it
        was no longer pending (another replica, the expiry pass or an operator ended it first)."""
        a = approvals.c
        done = self._execute(approvals.update().where(a.decision_id == decision_id, a.state == _PENDING)
                             .values(state=state.value, resolved_at=now, resolved_by=by,
                                     resolution_id=resolution_id))
        return bool(done.rowcount == 1)
