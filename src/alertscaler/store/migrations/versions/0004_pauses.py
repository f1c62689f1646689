"""Operators in control: a ``pauses`` table (a group's pause, or ``*`` for every group, with an optional end)
and ``group_states.held_until`` (a manual scale's hold: policies may not move the group before).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("group_states") as batch:
        batch.add_column(sa.Column("held_until", _ts(), nullable=True))
    op.create_table(
        "pauses",
        sa.Column("scope", sa.Text(), primary_key=True),
        sa.Column("since", _ts(), nullable=False),
        sa.Column("until", _ts(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pauses")
    with op.batch_alter_table("group_states") as batch:
        batch.drop_column("held_until")
