"""Approvals: an ``approvals`` table, one row per change that waited for an operator's approval (``act.recording``
records it ``pending_approval``), keyed by that decision's id, until approved, rejected, expired or superseded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("decision_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("step", sa.String(16), nullable=True),
        sa.Column("from_capacity", sa.Integer(), nullable=False),
        sa.Column("to_capacity", sa.Integer(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=True),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resolved_at", _ts(), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
    )
    op.create_index("ix_approvals_group_state", "approvals", ["group_name", "state"])
    op.create_index("ix_approvals_state_expires", "approvals", ["state", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_approvals_state_expires", table_name="approvals")
    op.drop_index("ix_approvals_group_state", table_name="approvals")
    op.drop_table("approvals")
