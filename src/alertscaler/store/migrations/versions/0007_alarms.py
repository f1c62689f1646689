"""Alarms: ``alarm_states``, one row per alarm of the policy file's ``alarms`` section and dimension set (its
``match_by`` labels' values; ``{}`` without ``match_by``) with its current state (ok, alarm, insufficient data)
and the alerts it was derived from; ``alarm_history``, one row per state transition (the actions due on it
included, for whatever delivers them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alarm_states",
        sa.Column("alarm", sa.Text(), primary_key=True),
        sa.Column("dims_key", sa.Text(), primary_key=True),
        sa.Column("dimensions", sa.Text(), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("since", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("alerts", sa.Text(), nullable=False),
    )
    op.create_table(
        "alarm_history",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("alarm", sa.Text(), nullable=False),
        sa.Column("dims_key", sa.Text(), nullable=False),
        sa.Column("dimensions", sa.Text(), nullable=False),
        sa.Column("old_state", sa.String(24), nullable=False),
        sa.Column("new_state", sa.String(24), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("notification_id", _id(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alarm_history_alarm_id", "alarm_history", ["alarm", "id"])
    op.create_index("ix_alarm_history_recorded_at", "alarm_history", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_alarm_history_recorded_at", table_name="alarm_history")
    op.drop_index("ix_alarm_history_alarm_id", table_name="alarm_history")
    op.drop_table("alarm_history")
    op.drop_table("alarm_states")
