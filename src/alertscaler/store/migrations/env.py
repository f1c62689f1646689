"""Alembic environment for alertscaler's schema, run by ``SqlStore.migrate()`` (never by an alembic.ini).

``migrate()`` passes its open connection, already inside a transaction (and, on PostgreSQL, holding the
migration advisory lock), as ``config.attributes["connection"]``; everything runs in that transaction.
Logging is left to the application: no ``fileConfig``.

Offline mode (``alembic upgrade --sql``, for a DBA) works when ``sqlalchemy.url`` is set on the Config.
"""

from __future__ import annotations

from alembic import context

from alertscaler.store.tables import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("alertscaler migrations run through SqlStore.migrate(), which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
