"""The pause part of ``SqlStore``: operators' pauses (table ``pauses``: one row per paused group, ``*`` for
every group). A hold is a column of the group's row (``group_states.held_until``, saved with it).

Mixed into ``store.sql.SqlStore`` (``pauses``: a read) and ``store.sql_tx._SqlTx`` (inside a write
transaction: ``pauses`` read once per transaction and kept up to date, ``set_pause``, ``clear_pause``).
Called by ``act.recording`` (every decision asks whether its group is paused) and ``act.engine`` (pause,
resume, the views).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alertscaler.model.controls import Pause
from alertscaler.store.tables import _pause_from_row, pauses


class _Reads(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...


class _Executes(Protocol):
    _pauses: dict[str, Pause] | None

    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> sa.CursorResult[Any]: ...


class PauseStoreMixin:
    def pauses(self: _Reads) -> list[Pause]:
        """Every stored pause, expired ones included (``Pause.holds`` tells), ordered by scope."""
        with self._read() as conn:
            return [_pause_from_row(r) for r in conn.execute(sa.select(pauses).order_by(pauses.c.scope))]


class PauseTxMixin:
    _pauses: dict[str, Pause] | None = None  # read once per transaction, then kept up to date

    def pauses(self: _Executes) -> list[Pause]:
        if self._pauses is None:
            self._pauses = {r.scope: _pause_from_row(r) for r in self._execute(sa.select(pauses))}
        return list(self._pauses.values())

    def set_pause(self: _Executes, pause: Pause) -> None:
        self._execute(pauses.delete().where(pauses.c.scope == pause.scope))
        self._execute(pauses.insert().values(scope=pause.scope, since=pause.since, until=pause.until,
                                             reason=pause.reason))
        if self._pauses is not None:
            self._pauses[pause.scope] = pause

    def clear_pause(self: _Executes, scope: str) -> Pause | None:
        row = self._execute(sa.select(pauses).where(pauses.c.scope == scope)).first()
        self._execute(pauses.delete().where(pauses.c.scope == scope))
        if self._pauses is not None:
            self._pauses.pop(scope, None)
        return _pause_from_row(row) if row is not None else None
