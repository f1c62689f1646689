"""Healing: heal signals, heal history, and heal actions (``actions.kind``, ``actions.targets``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="scale"))
        batch.add_column(sa.Column("targets", sa.Text(), nullable=True))
    op.create_table(
        "heal_signals",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.Column("member_key", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("notification_id", _id(), sa.ForeignKey("notifications.id"), nullable=True),
        sa.Column("decision_id", _id(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_heal_signals_pending", "heal_signals", ["group_name", "received_at"],
                    postgresql_where=sa.text("decision_id IS NULL"), sqlite_where=sa.text("decision_id IS NULL"))
    op.create_table(
        "heal_history",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.Column("slot", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("action_id", _id(), sa.ForeignKey("actions.id"), nullable=True),
        sa.Column("replaced_by", sa.Text(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_heal_history_group_at", "heal_history", ["group_name", "at"])
    op.create_index("ix_heal_history_replaced_by", "heal_history", ["group_name", "replaced_by"])


def downgrade() -> None:
    op.drop_index("ix_heal_history_replaced_by", table_name="heal_history")
    op.drop_index("ix_heal_history_group_at", table_name="heal_history")
    op.drop_table("heal_history")
    op.drop_index("ix_heal_signals_pending", table_name="heal_signals")
    op.drop_table("heal_signals")
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("targets")
        batch.drop_column("kind")
