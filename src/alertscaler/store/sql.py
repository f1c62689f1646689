"""``SqlStore``: the one implementation of the ``StateStore`` Protocol, on SQLAlchemy 2 Core (its prebuilt
statements in ``store.sql_statements``, its write transaction ``_SqlTx`` in ``store.sql_tx``, the healing
tables in ``store.sql_healing``).

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NoReturn, TypeVar

import anyio
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from alertscaler.model.alerts import Notification
from alertscaler.model.decisions import Action, ActionState, Decision, Outcome, Reason
from alertscaler.model.errors import StoreError, StoreUnavailable
from alertscaler.model.groups import GroupState
from alertscaler.store.base import (
    ActiveAlert,
    AlertRoute,
    Lease,
    Receipt,
    StateStore,
    StoredNotification,
    Tx,
)
from alertscaler.store.sql_alarms import AlarmStoreMixin
from alertscaler.store.sql_approvals import ApprovalStoreMixin
from alertscaler.store.sql_healing import HealStoreMixin
from alertscaler.store.sql_leases import LeaseStoreMixin
from alertscaler.store.sql_outbox import OutboxStoreMixin
from alertscaler.store.sql_pauses import PauseStoreMixin
from alertscaler.store.sql_pruning import PruneStoreMixin
from alertscaler.store.sql_removals import RemovalStoreMixin
from alertscaler.store.sql_signals import SignalStoreMixin
from alertscaler.store.sql_statements import _Dialect, _Statements
from alertscaler.store.sql_tx import _KEYS_PER_INSERT, _routes, _SqlTx
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
_T = TypeVar("_T")

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final = 5000
PG_CONNECT_TIMEOUT_S: Final = 5
# pg_advisory_xact_lock key serialising concurrent migrate() calls ("alertsca" as a big-endian int64).
PG_MIGRATION_LOCK_KEY: Final = int.from_bytes(b"alertsca", "big", signed=True)
_SQLITE_SYNCHRONOUS: Final = ("full", "normal")
_WRITE_OPTION: Final = "alertscaler_write"  # execution option: SQLite BEGIN IMMEDIATE for this connection


def sqlite_url(path: str | Path) -> str:
    """SQLAlchemy URL of the SQLite database file at ``path`` (made absolute; ``~`` expanded)."""
    return f"sqlite+pysqlite:///{Path(path).expanduser().absolute()}"


# --- the store --------------------------------------------------------------------------------------


class SqlStore(SignalStoreMixin, HealStoreMixin, PruneStoreMixin, LeaseStoreMixin, PauseStoreMixin, ApprovalStoreMixin,
               RemovalStoreMixin, AlarmStoreMixin, OutboxStoreMixin):
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
        self.claims: Callable[[str, datetime], Lease | None] | None = None

    def act_as(self, claims: Callable[[str, datetime], Lease | None] | None) -> None:
        self.claims = claims

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

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a short store call (``fn(*args)``, e.g. a bound method of this store) for a caller on the event
        loop. On SQLite it runs right there: a commit takes about a millisecond, SQLite has one writer anyway,
        and a hop through the thread pool (plus the GIL hand-over) costs more than the call under bursts —
        unless another thread of ours is in a write transaction (the loop must never wait for one). Other
        databases: always in a worker thread."""
        if self._dialect.name == "sqlite" and not self.write_busy():
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args)

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

    def migrate(self, revision: str = "head") -> None:
        """Create or upgrade the schema to the newest alembic revision (or ``revision``, for tests of the
        migrations). Idempotent; concurrent callers are serialised (SQLite: the write lock; PostgreSQL: a
        transaction-scoped advisory lock)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        with self._write() as conn:
            if not self._dialect.sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
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
            unique = sorted(_unique(keys))  # one lock order for every writer (PostgreSQL: no deadlock)
            for start in range(0, len(unique), _KEYS_PER_INSERT):
                chunk = unique[start:start + _KEYS_PER_INSERT]
                params = [{"dedup_key": k, "notification_id": notification_id} for k in chunk]
                claimed += len(conn.execute(st.keys_claim, params).all())
        return Receipt(notification_id=notification_id, new=claimed, duplicates=len(keys) - claimed)

    def record_notifications(self, items: Sequence[tuple[Notification, datetime]]) -> list[Receipt]:
        if not items:
            return []
        with self.transaction() as tx:
            return tx.record_notifications(items)

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
            tx = _SqlTx(self, conn)
            yield tx
            tx.flush()

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

    def claim_action(self, action_id: int, now: datetime, lease: Lease | None = None) -> Action | None:
        """PENDING → RUNNING in one conditional UPDATE (atomic across threads and replicas). ``not_before``
        is not checked here: the caller decides when an action is due."""
        stmt = (
            actions.update()
            .where(actions.c.id == action_id, actions.c.state == ActionState.PENDING.value)
            .values(state=ActionState.RUNNING.value, attempts=actions.c.attempts + 1,
                    started_at=sa.func.coalesce(actions.c.started_at,
                                                sa.bindparam("now", now, type_=UtcDateTime)),
                    owner=lease.owner if lease else None,
                    lease_expires_at=sa.bindparam("b_until", lease.until if lease else None, type_=UtcDateTime))
            .returning(*actions.c)
        )
        with self._write() as conn:
            row = conn.execute(stmt).first()
        return _action_from_row(row) if row is not None else None

    def release_action(self, action_id: int, not_before: datetime, error: str,
                       called_at: datetime | None = None, owner: str | None = None) -> None:
        """RUNNING → PENDING (owner and lease cleared). A no-op (logged) if the action is not RUNNING any more
        — or, with ``owner``, not held by that replica — so a late release can never resurrect an action that
        was finished or taken over meanwhile."""
        with self._write() as conn:
            result = conn.execute(
                actions.update()
                .where(actions.c.id == action_id, actions.c.state == ActionState.RUNNING.value, *_held_by(owner))
                .values(state=ActionState.PENDING.value, not_before=not_before, error=error,
                        started_at=_first_call(called_at), owner=None, lease_expires_at=None)
            )
        if result.rowcount != 1:
            log.warning("release_action(%s): action is missing, not running or not held by %s; left unchanged",
                        action_id, owner or "anyone")

    def finish_action(self, action_id: int, state: ActionState, now: datetime,
                      result: str | None = None, error: str | None = None,
                      called_at: datetime | None = None, owner: str | None = None) -> None:
        """RUNNING or PENDING → SUCCEEDED / FAILED. ``error=None`` clears the error on success and keeps the
        last temporary error on failure. A no-op (logged) if the action is already finished or missing, or,
        with ``owner``, held by another replica (which took it over). The owner is kept for the history."""
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
                .where(actions.c.id == action_id, actions.c.state.in_(_UNFINISHED), *_held_by(owner))
                .values(state=state.value, finished_at=now, result=result, error=new_error,
                        started_at=_first_call(called_at), lease_expires_at=None)
            )
        if res.rowcount != 1:
            log.warning("finish_action(%s, %s): action is missing, already finished or not held by %s; "
                        "left unchanged", action_id, state.value, owner or "anyone")

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

    def active_alert_routes(self) -> list[AlertRoute]:
        with self._read() as conn:
            return _routes(conn.execute(self._stmts.route_summaries).all())


def _held_by(owner: str | None) -> tuple[sa.ColumnElement[bool], ...]:
    """With ``owner``: the action must be held by that replica (or by nobody: a PENDING action, or a RUNNING
    one claimed without a lease)."""
    if owner is None:
        return ()
    return (sa.or_(actions.c.owner.is_(None), actions.c.owner == owner),)


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
