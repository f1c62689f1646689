"""A fresh PostgreSQL schema per use: ``fresh_schema(base_url)`` creates one, gives a URL whose ``search_path``
is that schema, and drops it afterwards, so runs can repeat and overlap on one database.

Used by the store contract suite (tests/contract/conftest.py) and bench/tracking.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.pool import NullPool


@contextmanager
def fresh_schema(base: str, prefix: str = "t") -> Iterator[str]:
    schema = f"{prefix}_{uuid.uuid4().hex}"
    admin = sa.create_engine(base, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
