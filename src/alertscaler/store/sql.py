"""``SqlStore``: the one implementation of the ``StateStore`` Protocol, on SQLAlchemy 2 Core.

Owns (with the schema in ``store.tables``, created and upgraded by the alembic migrations in
``store/migrations``) the engine and its connection pool, SQLite's pragmas and write locking, and the
translation of database failures into ``StoreUnavailable`` / ``StoreError``. Called by ``service`` (builds
it, runs ``migrate()``), ``ingest``'s webhook handler (``record_notification``, the hot path), the
processing loop (``pending_notifications``, ``transaction()``), ``act`` (the action lifecycle) and ``api``
(read-only listings).

Two back ends:

* SQLite (default, one replica): WAL journal, ``synchronous`` FULL or NORMAL, 5 s busy timeout, foreign
  keys on. Every write runs in a ``BEGIN IMMEDIATE`` transaction, so writers are serialised by SQLite's
  write lock (that lock is what ``Tx.lock_group`` holds); reads use deferred ``BEGIN`` and run alongside.
* PostgreSQL (``postgresql+psycopg://``, several replicas): ``Tx.lock_group`` is a ``SELECT ... FOR
  UPDATE`` row lock, ``claim_action`` a conditional ``UPDATE``; the migration holds an advisory lock.

The engine is thread-safe: each call checks a connection out of the pool for its own duration only.
Times go in and come out as timezone-aware UTC datetimes (``UtcDateTime``); the store never reads the clock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NoReturn

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from alertscaler.model.alerts import Notification
from alertscaler.model.decisions import Action, ActionState, Decision, Outcome, Reason, Trigger
from alertscaler.model.errors import StoreError, StoreUnavailable
from alertscaler.model.groups import GroupState
from alertscaler.store.base import ActiveAlert, NewDecision, Receipt, StateStore, StoredNotification, Tx
from alertscaler.store.tables import (
    _DECISIONS_WITH_CALL,
    _UNFINISHED,
    UtcDateTime,
    _action_from_row,
    _alert_from_row,
    _check_limit,
    _decision_from_row,
    _dumps,
    _group_from_row,
    _unique,
    actions,
    active_alerts,
    decisions,
    group_states,
    metadata,
    notifications,
    seen_keys,
)

__all__ = ["SqlStore", "UtcDateTime", "metadata", "sqlite_url"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final = 5000
PG_CONNECT_TIMEOUT_S: Final = 5
# pg_advisory_xact_lock key serialising concurrent migrate() calls ("alertsca" as a big-endian int64).
PG_MIGRATION_LOCK_KEY: Final = int.from_bytes(b"alertsca", "big", signed=True)
_SQLITE_SYNCHRONOUS: Final = ("full", "normal")
_WRITE_OPTION: Final = "alertscaler_write"  # execution option: SQLite BEGIN IMMEDIATE for this connection
_KEYS_PER_INSERT: Final = 500  # rows per multi-VALUES insert into seen_keys (SQLite variable limit)


def sqlite_url(path: str | Path) -> str:
    """SQLAlchemy URL of the SQLite database file at ``path`` (made absolute; ``~`` expanded)."""
    return f"sqlite+pysqlite:///{Path(path).expanduser().absolute()}"


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
        self.group_update = (group_states.update().where(g.name == b("b_name"))
                             .values(desired=b("b_desired"), last_scale_out_at=b("b_out", type_=UtcDateTime),
                                     last_scale_in_at=b("b_in", type_=UtcDateTime),
                                     updated_at=b("b_updated", type_=UtcDateTime)))
        self.decision_insert = decisions.insert().returning(d.id)
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
        key = (a.group_name == b("b_group"), a.policy == b("b_policy"), a.fingerprint == b("b_fingerprint"))
        self.alert_reason = active_alerts.update().where(*key).values(last_reason=b("b_reason"))
        self.alert_delete = active_alerts.delete().where(*key)
        self.notification_insert = notifications.insert().returning(notifications.c.id,
                                                                    sort_by_parameter_order=True)
        self.keys_claim_owner = (dialect.insert(seen_keys)
                                 .on_conflict_do_nothing(index_elements=[seen_keys.c.dedup_key])
                                 .returning(seen_keys.c.notification_id, sort_by_parameter_order=True))
        self.keys_claim = (dialect.insert(seen_keys)
                           .on_conflict_do_nothing(index_elements=[seen_keys.c.dedup_key])
                           .returning(seen_keys.c.dedup_key, sort_by_parameter_order=True))
        self.mark_processed = (notifications.update()
                               .where(notifications.c.id == b("b_id"), notifications.c.processed_at.is_(None))
                               .values(processed_at=b("b_now", type_=UtcDateTime)))


# --- the store --------------------------------------------------------------------------------------


class SqlStore:
    """``StateStore`` on SQLite or PostgreSQL. Safe to share between threads; ``close()`` when done.

    Construction does no I/O: an unreachable database shows up as ``StoreUnavailable`` from the first call
    (``ping()`` or ``migrate()`` at start-up).
    """

    def __init__(self, url: str | URL, *, sqlite_synchronous: str = "full") -> None:
        sync = sqlite_synchronous.lower()
        if sync not in _SQLITE_SYNCHRONOUS:
            raise ValueError(
                f"sqlite_synchronous must be one of {', '.join(_SQLITE_SYNCHRONOUS)}, got {sync!r}")
        try:
            parsed = make_url(url)
        except (ValueError, sa.exc.ArgumentError):
            raise ValueError("invalid database URL (expected sqlite:///path or postgresql+psycopg://...)"
                             ) from None  # the URL may hold a password: do not echo it
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not SQLAlchemy's psycopg2
        self._dialect = _Dialect(parsed.get_backend_name())
        if self._dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {parsed.render_as_string(hide_password=True)!r}: "
                             "use sqlite:///path or postgresql+psycopg://...")
        self._password = parsed.password if isinstance(parsed.password, str) and parsed.password else None
        self._engine = self._create_engine(parsed, sync)
        self._stmts = _Statements(self._dialect)
        self._writer_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if self._dialect.sqlite else contextlib.nullcontext())
        self.safe_url = self._engine.url.render_as_string(hide_password=True)

    # --- engine -------------------------------------------------------------------------------------

    def _create_engine(self, url: URL, synchronous: str) -> Engine:
        if self._dialect.sqlite:
            database = url.database or ""
            if not database or database == ":memory:" or url.query.get("mode") == "memory":
                raise ValueError("SqlStore needs a SQLite database file, not an in-memory database")
            engine = sa.create_engine(
                url, poolclass=sa.pool.QueuePool, pool_size=5, max_overflow=10,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
            _install_sqlite_hooks(engine, Path(database), synchronous)
            return engine
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                connect_args=connect_args)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect_name(self) -> str:
        return self._dialect.name

    def write_busy(self) -> bool:
        """True while a write transaction of this process is open (SQLite): a caller on an event loop should
        not start one inline now, or the whole loop would wait for it."""
        lock = self._writer_lock
        return isinstance(lock, type(threading.Lock())) and lock.locked()

    # --- connection scopes --------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            self._raise(exc)

    def _raise(self, exc: sa.exc.SQLAlchemyError) -> NoReturn:
        detail = str(exc.orig) if isinstance(exc, sa.exc.DBAPIError) else str(exc)
        detail = detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
        if self._password:
            detail = detail.replace(self._password, "***")
        if _unavailable(exc):
            raise StoreUnavailable(f"database {self.safe_url} unavailable: {detail}") from exc
        raise StoreError(f"database {self.safe_url}: {type(exc).__name__}: {detail}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._errors(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE). Commits on success, rolls back on any error.

        On SQLite, writers of this process queue on a Python lock first: SQLite has one writer anyway, and its
        own busy handler waits by sleeping in steps of up to 100 ms, which turned a burst of webhooks into
        hundreds of milliseconds of latency. Other processes are still kept out by BEGIN IMMEDIATE."""
        with self._errors(), self._writer_lock, self._engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    # --- lifecycle ----------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest alembic revision. Idempotent; concurrent callers are
        serialised (SQLite: the write lock; PostgreSQL: a transaction-scoped advisory lock)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        with self._write() as conn:
            if not self._dialect.sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        log.info("database %s schema is up to date", self.safe_url)

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1")).scalar_one()

    def close(self) -> None:
        self._engine.dispose()

    # --- ingest -------------------------------------------------------------------------------------

    def record_notification(self, notification: Notification, received_at: datetime) -> Receipt:
        keys = notification.dedup_keys()
        st = self._stmts
        with self._write() as conn:
            notification_id: int = conn.execute(
                st.notification_insert,
                {"receiver": notification.receiver, "group_key": notification.group_key,
                 "body": _dumps(notification.raw), "received_at": received_at, "processed_at": None},
            ).scalar_one()
            claimed = 0
            unique = _unique(keys)
            for start in range(0, len(unique), _KEYS_PER_INSERT):
                chunk = unique[start:start + _KEYS_PER_INSERT]
                params = [{"dedup_key": k, "notification_id": notification_id} for k in chunk]
                claimed += len(conn.execute(st.keys_claim, params).all())
        return Receipt(notification_id=notification_id, new=claimed, duplicates=len(keys) - claimed)

    def record_notifications(self, items: Sequence[tuple[Notification, datetime]]) -> list[Receipt]:
        if not items:
            return []
        st = self._stmts
        with self._write() as conn:
            ids = [row.id for row in conn.execute(st.notification_insert, [
                {"receiver": n.receiver, "group_key": n.group_key, "body": _dumps(n.raw), "received_at": at,
                 "processed_at": None} for n, at in items])]
            all_keys = [n.dedup_keys() for n, _ in items]
            params = [{"dedup_key": k, "notification_id": nid}
                      for nid, keys in zip(ids, all_keys, strict=True) for k in _unique(keys)]
            claimed: dict[int, int] = dict.fromkeys(ids, 0)
            for start in range(0, len(params), _KEYS_PER_INSERT):
                chunk = params[start:start + _KEYS_PER_INSERT]
                for row in conn.execute(st.keys_claim_owner, chunk):
                    claimed[row.notification_id] += 1
        return [Receipt(notification_id=nid, new=claimed[nid], duplicates=len(keys) - claimed[nid])
                for nid, keys in zip(ids, all_keys, strict=True)]

    def pending_notifications(self, limit: int = 100) -> list[StoredNotification]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(notifications.c.id, notifications.c.received_at, notifications.c.body)
                .where(notifications.c.processed_at.is_(None))
                .order_by(notifications.c.id)
                .limit(_check_limit(limit))
            ).all()
            if not rows:
                return []
            keys: dict[int, set[str]] = {row.id: set() for row in rows}
            for key_row in conn.execute(
                sa.select(seen_keys.c.notification_id, seen_keys.c.dedup_key)
                .where(seen_keys.c.notification_id.in_(list(keys)))
            ):
                keys[key_row.notification_id].add(key_row.dedup_key)
        return [StoredNotification(id=row.id, received_at=row.received_at, body=json.loads(row.body),
                                   new_keys=frozenset(keys[row.id])) for row in rows]

    def notification_body(self, notification_id: int) -> dict[str, Any] | None:
        with self._read() as conn:
            body = conn.execute(
                sa.select(notifications.c.body).where(notifications.c.id == notification_id)
            ).scalar_one_or_none()
        return json.loads(body) if body is not None else None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction: committed when the ``with`` block ends normally, rolled back (and the
        exception re-raised unchanged) when it raises. Do not keep it open across slow calls (providers):
        on SQLite it blocks every other writer."""
        with self._write() as conn:
            yield _SqlTx(self, conn)

    # --- groups -------------------------------------------------------------------------------------

    def group_states(self) -> list[GroupState]:
        with self._read() as conn:
            rows = conn.execute(sa.select(group_states).order_by(group_states.c.name)).all()
        return [_group_from_row(r) for r in rows]

    def get_group_state(self, name: str) -> GroupState | None:
        with self._read() as conn:
            row = conn.execute(sa.select(group_states).where(group_states.c.name == name)).first()
        return _group_from_row(row) if row is not None else None

    # --- decisions ----------------------------------------------------------------------------------

    def list_decisions(
        self,
        group: str | None = None,
        outcome: Outcome | None = None,
        reason: Reason | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Decision]:
        """Newest first (``decided_at`` then id, descending). ``since`` is inclusive, ``until`` exclusive."""
        d = decisions
        stmt = _DECISIONS_WITH_CALL
        if group is not None:
            stmt = stmt.where(d.c.group_name == group)
        if outcome is not None:
            stmt = stmt.where(d.c.outcome == Outcome(outcome).value)
        if reason is not None:
            stmt = stmt.where(d.c.reason == Reason(reason).value)
        if since is not None:
            stmt = stmt.where(d.c.decided_at >= since)
        if until is not None:
            stmt = stmt.where(d.c.decided_at < until)
        stmt = stmt.order_by(d.c.decided_at.desc(), d.c.id.desc()).limit(_check_limit(limit))
        with self._read() as conn:
            return [_decision_from_row(r) for r in conn.execute(stmt).all()]

    def get_decision(self, decision_id: int) -> Decision | None:
        with self._read() as conn:
            row = conn.execute(_DECISIONS_WITH_CALL.where(decisions.c.id == decision_id)).first()
        return _decision_from_row(row) if row is not None else None

    # --- actions ------------------------------------------------------------------------------------

    def list_actions(self, group: str | None = None, state: ActionState | None = None,
                     limit: int = 100) -> list[Action]:
        """Newest (highest id) first."""
        stmt = sa.select(actions)
        if group is not None:
            stmt = stmt.where(actions.c.group_name == group)
        if state is not None:
            stmt = stmt.where(actions.c.state == ActionState(state).value)
        stmt = stmt.order_by(actions.c.id.desc()).limit(_check_limit(limit))
        with self._read() as conn:
            return [_action_from_row(r) for r in conn.execute(stmt).all()]

    def get_action(self, action_id: int) -> Action | None:
        with self._read() as conn:
            row = conn.execute(sa.select(actions).where(actions.c.id == action_id)).first()
        return _action_from_row(row) if row is not None else None

    def next_action(self, group: str) -> Action | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(actions)
                .where(actions.c.group_name == group, actions.c.state.in_(_UNFINISHED))
                .order_by(actions.c.id)
                .limit(1)
            ).first()
        return _action_from_row(row) if row is not None else None

    def claim_action(self, action_id: int, now: datetime) -> Action | None:
        """PENDING → RUNNING in one conditional UPDATE (atomic across threads and replicas). ``not_before``
        is not checked here: the caller decides when an action is due."""
        stmt = (
            actions.update()
            .where(actions.c.id == action_id, actions.c.state == ActionState.PENDING.value)
            .values(state=ActionState.RUNNING.value, attempts=actions.c.attempts + 1,
                    started_at=sa.func.coalesce(actions.c.started_at,
                                                sa.bindparam("now", now, type_=UtcDateTime)))
            .returning(*actions.c)
        )
        with self._write() as conn:
            row = conn.execute(stmt).first()
        return _action_from_row(row) if row is not None else None

    def release_action(self, action_id: int, not_before: datetime, error: str,
                       called_at: datetime | None = None) -> None:
        """RUNNING → PENDING. A no-op (logged) if the action is not RUNNING any more, so a late release can
        never resurrect an action that was finished meanwhile."""
        with self._write() as conn:
            result = conn.execute(
                actions.update()
                .where(actions.c.id == action_id, actions.c.state == ActionState.RUNNING.value)
                .values(state=ActionState.PENDING.value, not_before=not_before, error=error,
                        started_at=_first_call(called_at))
            )
        if result.rowcount != 1:
            log.warning("release_action(%s): action is missing or not running; left unchanged", action_id)

    def finish_action(self, action_id: int, state: ActionState, now: datetime,
                      result: str | None = None, error: str | None = None,
                      called_at: datetime | None = None) -> None:
        """RUNNING or PENDING → SUCCEEDED / FAILED. ``error=None`` clears the error on success and keeps the
        last temporary error on failure. A no-op (logged) if the action is already finished or missing."""
        state = ActionState(state)
        if not state.finished:
            raise ValueError(f"finish_action needs succeeded or failed, got {state.value}")
        if error is not None:
            new_error: Any = error
        elif state is ActionState.FAILED:
            new_error = actions.c.error
        else:
            new_error = None
        with self._write() as conn:
            res = conn.execute(
                actions.update()
                .where(actions.c.id == action_id, actions.c.state.in_(_UNFINISHED))
                .values(state=state.value, finished_at=now, result=result, error=new_error,
                        started_at=_first_call(called_at))
            )
        if res.rowcount != 1:
            log.warning("finish_action(%s, %s): action is missing or already finished; left unchanged",
                        action_id, state.value)

    def running_actions(self) -> list[Action]:
        """Oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(actions).where(actions.c.state == ActionState.RUNNING.value).order_by(actions.c.id)
            ).all()
        return [_action_from_row(r) for r in rows]

    def active_alerts(self, group: str | None = None) -> list[ActiveAlert]:
        """Ordered by group, policy, fingerprint."""
        stmt = sa.select(active_alerts)
        if group is not None:
            stmt = stmt.where(active_alerts.c.group_name == group)
        stmt = stmt.order_by(active_alerts.c.group_name, active_alerts.c.policy, active_alerts.c.fingerprint)
        with self._read() as conn:
            return [_alert_from_row(r) for r in conn.execute(stmt).all()]


class _SqlTx:
    """``Tx`` over one open write transaction. Used by one thread, only inside ``SqlStore.transaction()``.

    A ``StoreError`` raised by one of its methods leaves the transaction unusable on PostgreSQL: let it
    propagate out of the ``with`` block (which rolls everything back).
    """

    def __init__(self, store: SqlStore, conn: Connection) -> None:
        self._store = store
        self._conn = conn
        self._claimed: set[int] = set()

    def _execute(self, stmt: sa.Executable,
                 params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 ) -> sa.CursorResult[Any]:
        try:
            return self._conn.execute(stmt, params)
        except sa.exc.SQLAlchemyError as exc:
            self._store._raise(exc)

    def lock_group(self, name: str, initial_desired: int) -> GroupState:
        st = self._store._stmts
        self._execute(st.group_create, {"b_name": name, "b_desired": initial_desired})
        return _group_from_row(self._execute(st.group_select, {"b_name": name}).one())

    def save_group(self, state: GroupState) -> None:
        st = self._store._stmts
        params = {"b_name": state.name, "b_desired": state.desired, "b_out": state.last_scale_out_at,
                  "b_in": state.last_scale_in_at, "b_updated": state.updated_at}
        if self._execute(st.group_update, params).rowcount == 0:  # not created by lock_group: create it
            self._execute(st.group_create, {"b_name": state.name, "b_desired": state.desired})
            self._execute(st.group_update, params)

    def add_decision(self, decision: NewDecision) -> int:
        row = self._execute(
            self._store._stmts.decision_insert,
            {"group_name": decision.group, "policy": decision.policy,
             "trigger": Trigger(decision.trigger).value, "outcome": Outcome(decision.outcome).value,
             "reason": Reason(decision.reason).value, "from_capacity": decision.from_capacity,
             "to_capacity": decision.to_capacity, "message": decision.message,
             "alerts": _dumps(decision.alerts), "notification_id": decision.notification_id,
             "alert_starts_at": decision.alert_starts_at, "received_at": decision.received_at,
             "decided_at": decision.decided_at, "action_id": None},
        ).one()
        return int(row.id)

    def add_action(self, decision_id: int, group: str, from_capacity: int, desired: int,
                   now: datetime, claim: bool = False) -> int:
        """Raises ``StoreError`` if the decision is unknown or already has an action."""
        st = self._store._stmts
        if claim and self._execute(st.unfinished_of_group, {"b_group": group}).first() is not None:
            claim = False  # an older action of the group goes first
        state = ActionState.RUNNING if claim else ActionState.PENDING
        row = self._execute(
            st.action_insert,
            {"decision_id": decision_id, "group_name": group, "from_capacity": from_capacity,
             "desired": desired, "state": state.value, "attempts": 1 if claim else 0, "not_before": None,
             "created_at": now, "started_at": now if claim else None, "finished_at": None, "error": None,
             "result": None},
        ).one()
        action_id = int(row.id)
        if claim:
            self._claimed.add(action_id)
        self._execute(st.decision_link, {"b_decision": decision_id, "b_action": action_id})
        return action_id

    def claimed_action(self, action_id: int) -> bool:
        return action_id in self._claimed

    def upsert_active_alert(self, alert: ActiveAlert) -> None:
        self._execute(self._store._stmts.alert_upsert, {
            "group_name": alert.group, "policy": alert.policy, "fingerprint": alert.fingerprint,
            "labels": _dumps(alert.labels), "starts_at": alert.starts_at, "last_seen_at": alert.last_seen_at,
            "notification_id": alert.notification_id, "last_reason": alert.last_reason,
        })

    def set_alert_reasons(self, group: str, policy: str, fingerprints: Sequence[str], reason: str | None) -> None:
        if fingerprints:
            self._execute(self._store._stmts.alert_reason,
                          [{"b_group": group, "b_policy": policy, "b_fingerprint": f, "b_reason": reason}
                           for f in fingerprints])

    def set_alert_reason(self, group: str, policy: str, fingerprint: str, reason: str | None) -> None:
        self._execute(self._store._stmts.alert_reason,
                      {"b_group": group, "b_policy": policy, "b_fingerprint": fingerprint, "b_reason": reason})

    def remove_active_alert(self, group: str, policy: str, fingerprint: str) -> bool:
        result = self._execute(self._store._stmts.alert_delete,
                               {"b_group": group, "b_policy": policy, "b_fingerprint": fingerprint})
        return result.rowcount > 0

    def mark_processed(self, notification_id: int, now: datetime) -> bool:
        result = self._execute(self._store._stmts.mark_processed, {"b_id": notification_id, "b_now": now})
        return bool(result.rowcount == 1)


def _first_call(called_at: datetime | None) -> Any:
    """``started_at`` becomes the provider call time of the FIRST attempt; later attempts keep it."""
    if called_at is None:
        return actions.c.started_at
    return sa.case((actions.c.attempts <= 1, sa.bindparam("b_called", called_at, type_=UtcDateTime)),
                   else_=actions.c.started_at)


def _conforms(store: SqlStore, tx: _SqlTx) -> tuple[StateStore, Tx]:
    """Never called: makes mypy check that ``SqlStore`` / ``_SqlTx`` still satisfy the Protocols."""
    return store, tx


# --- SQLite specifics -------------------------------------------------------------------------------


def _install_sqlite_hooks(engine: Engine, path: Path, synchronous: str) -> None:
    @event.listens_for(engine, "do_connect")
    def _make_parent_dir(dialect: Dialect, conn_rec: ConnectionPoolEntry, cargs: Any, cparams: Any) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # sqlite3 then fails with "unable to open database file"
            log.debug("cannot create %s: %s", path.parent, exc)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, conn_rec: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None  # sqlite3 must not BEGIN on its own; _begin below does
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _set_wal(cursor)
            cursor.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _set_wal(cursor: Any) -> None:
    """WAL mode (persistent in the file). Switching a fresh database needs an exclusive lock, and SQLite
    answers "database is locked" at once — without its busy handler — when another connection switches it at
    the same moment (several processes starting on a new file): retry for up to the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


_SQLITE_SCHEMA_ERRORS: Final = ("no such table", "no such column", "syntax error", "has no column")


def _unavailable(exc: sa.exc.SQLAlchemyError) -> bool:
    """True for failures worth retrying later: cannot connect, locked / busy, disk full or failing, pool
    exhausted, connection lost, PostgreSQL serialisation failure or deadlock."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.DisconnectionError | sa.exc.InterfaceError):
        return True
    if isinstance(exc, sa.exc.OperationalError):
        # SQLite reports a missing schema as OperationalError too: that is a bug or a missing migrate().
        text = str(exc.orig).lower()
        return not any(marker in text for marker in _SQLITE_SCHEMA_ERRORS)
    return False
