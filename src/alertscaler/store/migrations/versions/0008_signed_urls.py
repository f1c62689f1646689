"""Signed URLs and outside signals: ``url_keys``, the signing key ids (never the key: each key is derived from
the configured secret and its id, ``act.signing``); ``signed_urls``, one row per URL handed out (what it
targets, its key id, expiry, revocation; never its signature); ``signals``, one row per accepted outside signal
(a signed URL's POST, an Aodh alarm action, a Monasca notification) with its de-duplication key, unique, and the
decisions it gave.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "url_keys",
        sa.Column("kid", sa.String(32), primary_key=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("retired_at", _ts(), nullable=True),
    )
    op.create_table(
        "signed_urls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("group_name", sa.Text(), nullable=True),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
        sa.Column("last_used_at", _ts(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
    )
    op.create_table(
        "signals",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.Text(), nullable=True),
        sa.Column("url_id", sa.String(64), nullable=True),
        sa.Column("alarm", sa.Text(), nullable=True),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("decision_ids", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.UniqueConstraint("dedup_key", name="uq_signals_dedup_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_signals_received_at", "signals", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_signals_received_at", table_name="signals")
    op.drop_table("signals")
    op.drop_table("signed_urls")
    op.drop_table("url_keys")
