"""Removed members: a ``removed_members`` table, one row per member alertscaler took out of a group on purpose
(a scale-in victim, a member a heal replaced) from the moment it leaves discovery (``removing``) until it is
stopped (``removed``) and for a bounded time after, so that heal alerts naming it are dropped (one
``removed_member`` decision at most: ``reported_at``) instead of healing a member that was meant to go.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "removed_members",
        sa.Column("group_name", sa.Text(), primary_key=True),
        sa.Column("member_id", sa.Text(), primary_key=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("since", _ts(), nullable=False),
        sa.Column("removed_at", _ts(), nullable=True),
        sa.Column("reported_at", _ts(), nullable=True),
    )
    op.create_index("ix_removed_members_since", "removed_members", ["since"])


def downgrade() -> None:
    op.drop_index("ix_removed_members_since", table_name="removed_members")
    op.drop_table("removed_members")
