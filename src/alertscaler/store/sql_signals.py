"""The signed-URL and outside-signal part of ``SqlStore``: signing key ids (``url_keys``: never a key), the signed
URLs handed out (``signed_urls``: never a signature) and the outside signals accepted (``signals``, each with its
unique de-duplication key).

Mixed into ``store.sql.SqlStore`` (reads: ``signing_keys``, ``signed_urls``, ``get_signed_url``) and
``store.sql_tx._SqlTx`` (inside a write transaction: keys, URLs, ``claim_signal``). Called by ``act.signals``.

``claim_signal`` is one ``INSERT ... ON CONFLICT (dedup_key) DO NOTHING``: of two requests carrying the same key
(a client's retry racing its first try, two replicas), exactly one inserts; the other — on PostgreSQL after the
first one's transaction ends — sees it was there and decides nothing again. Call it first in the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from alertscaler.model.signals import AlarmState, SignalSource
from alertscaler.model.signing import SignedUrl, SigningKey, UrlTarget
from alertscaler.store.tables import _check_limit, signals, signed_urls, url_keys

if TYPE_CHECKING:
    from alertscaler.store.sql_statements import _Dialect

_k, _u, _s = url_keys.c, signed_urls.c, signals.c


class _Reads(Protocol):
    def _read(self) -> AbstractContextManager[Connection]: ...


class _Executes(Protocol):
    _store: Any

    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> sa.CursorResult[Any]: ...


def _key(row: Row[Any]) -> SigningKey:
    return SigningKey(kid=row.kid, created_at=row.created_at, retired_at=row.retired_at)


def _url(row: Row[Any]) -> SignedUrl:
    return SignedUrl(id=row.id, target=UrlTarget(row.target), group=row.group_name, policy=row.policy,
                     key_id=row.key_id, note=row.note, created_at=row.created_at, expires_at=row.expires_at,
                     revoked_at=row.revoked_at, last_used_at=row.last_used_at, uses=row.uses)


_KEYS = sa.select(url_keys).order_by(_k.created_at, _k.kid)


def _urls(group: str | None, limit: int) -> sa.Select[Any]:
    stmt = sa.select(signed_urls)
    if group is not None:
        stmt = stmt.where(_u.group_name == group)
    return stmt.order_by(_u.created_at.desc(), _u.id).limit(_check_limit(limit))


class SignalStoreMixin:
    def signing_keys(self: _Reads) -> list[SigningKey]:
        """Every signing key id, oldest first (retired ones too)."""
        with self._read() as conn:
            return [_key(r) for r in conn.execute(_KEYS)]

    def signed_urls(self: _Reads, group: str | None = None, limit: int = 100) -> list[SignedUrl]:
        """Signed URLs, newest first (revoked and expired ones too), optionally of one group."""
        with self._read() as conn:
            return [_url(r) for r in conn.execute(_urls(group, limit))]

    def get_signed_url(self: _Reads, url_id: str) -> SignedUrl | None:
        with self._read() as conn:
            row = conn.execute(sa.select(signed_urls).where(_u.id == url_id)).first()
        return _url(row) if row is not None else None


class SignalTxMixin:
    def signing_keys(self: _Executes) -> list[SigningKey]:
        return [_key(r) for r in self._execute(_KEYS)]

    def add_signing_key(self: _Executes, kid: str, now: datetime) -> SigningKey:
        self._execute(url_keys.insert().values(kid=kid, created_at=now, retired_at=None))
        return SigningKey(kid, now)

    def retire_signing_keys(self: _Executes, keep: str, now: datetime) -> list[str]:
        """Retire every key but ``keep`` not yet retired; their ids."""
        rows = self._execute(url_keys.update().where(_k.kid != keep, _k.retired_at.is_(None))
                             .values(retired_at=now).returning(_k.kid))
        return sorted(r.kid for r in rows)

    def add_signed_url(self: _Executes, url: SignedUrl) -> None:
        self._execute(signed_urls.insert().values(
            id=url.id, target=url.target.value, group_name=url.group, policy=url.policy, key_id=url.key_id,
            note=url.note, created_at=url.created_at, expires_at=url.expires_at, revoked_at=url.revoked_at,
            last_used_at=url.last_used_at, uses=url.uses))

    def get_signed_url(self: _Executes, url_id: str) -> SignedUrl | None:
        row = self._execute(sa.select(signed_urls).where(_u.id == url_id)).first()
        return _url(row) if row is not None else None

    def revoke_signed_url(self: _Executes, url_id: str, now: datetime) -> SignedUrl | None:
        """Revoke a URL (one already revoked keeps its first revocation); the URL after (None: no such URL)."""
        self._execute(signed_urls.update().where(_u.id == url_id, _u.revoked_at.is_(None)).values(revoked_at=now))
        row = self._execute(sa.select(signed_urls).where(_u.id == url_id)).first()
        return _url(row) if row is not None else None

    def mark_url_used(self: _Executes, url_id: str, now: datetime) -> None:
        self._execute(signed_urls.update().where(_u.id == url_id).values(last_used_at=now, uses=_u.uses + 1))

    def claim_signal(self: _Executes, source: SignalSource, key: str | None, url_id: str | None, alarm: str,
                     state: AlarmState, body: str, now: datetime) -> tuple[int, list[int] | None]:
        """Record an outside signal, claiming its de-duplication ``key``: (its id, None) when it is new, else (the
        first signal's id, the decisions that one gave). ``key`` None: always new."""
        dialect: _Dialect = self._store._dialect
        values = {"source": source.value, "dedup_key": key, "url_id": url_id, "alarm": alarm or None,
                  "state": state.value, "received_at": now, "decision_ids": "[]", "body": body}
        stmt = dialect.insert(signals).values(**values).on_conflict_do_nothing(index_elements=[_s.dedup_key])
        row = self._execute(stmt.returning(_s.id)).first()
        if row is not None:
            return int(row.id), None
        first = self._execute(sa.select(_s.id, _s.decision_ids).where(_s.dedup_key == key)).one()
        return int(first.id), [int(i) for i in json.loads(first.decision_ids)]

    def set_signal_decisions(self: _Executes, signal_id: int, decision_ids: Sequence[int]) -> None:
        self._execute(signals.update().where(_s.id == signal_id).values(decision_ids=json.dumps(list(decision_ids))))
