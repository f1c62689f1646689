"""Initial schema: notifications, seen_keys, group_states, decisions, actions, active_alerts.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Datetimes are ``DateTime(timezone=True)``: TIMESTAMP WITH TIME ZONE on PostgreSQL, naive-UTC text on
SQLite (``store.sql.UtcDateTime`` converts). JSON is stored as text. Ids are BIGSERIAL on PostgreSQL and
INTEGER PRIMARY KEY AUTOINCREMENT (never reused) on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("receiver", sa.Text(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("processed_at", _ts(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notifications_pending", "notifications", ["id"],
                    postgresql_where=sa.text("processed_at IS NULL"),
                    sqlite_where=sa.text("processed_at IS NULL"))

    op.create_table(
        "seen_keys",
        sa.Column("dedup_key", sa.Text(), primary_key=True),
        sa.Column("notification_id", _id(), sa.ForeignKey("notifications.id"), nullable=False),
    )
    op.create_index("ix_seen_keys_notification", "seen_keys", ["notification_id"])

    op.create_table(
        "group_states",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("desired", sa.Integer(), nullable=False),
        sa.Column("last_scale_out_at", _ts(), nullable=True),
        sa.Column("last_scale_in_at", _ts(), nullable=True),
        sa.Column("updated_at", _ts(), nullable=True),
    )

    op.create_table(
        "decisions",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("group_name", sa.Text(), nullable=True),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("from_capacity", sa.Integer(), nullable=True),
        sa.Column("to_capacity", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("alerts", sa.Text(), nullable=False),
        sa.Column("notification_id", _id(), sa.ForeignKey("notifications.id"), nullable=True),
        sa.Column("alert_starts_at", _ts(), nullable=True),
        sa.Column("received_at", _ts(), nullable=True),
        sa.Column("decided_at", _ts(), nullable=False),
        sa.Column("action_id", _id(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])
    op.create_index("ix_decisions_group_decided_at", "decisions", ["group_name", "decided_at"])

    op.create_table(
        "actions",
        sa.Column("id", _id(), primary_key=True),
        sa.Column("decision_id", _id(), sa.ForeignKey("decisions.id"), nullable=False),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.Column("from_capacity", sa.Integer(), nullable=False),
        sa.Column("desired", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("started_at", _ts(), nullable=True),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.UniqueConstraint("decision_id", name="uq_actions_decision_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_actions_group_state", "actions", ["group_name", "state"])
    op.create_index("ix_actions_state", "actions", ["state"])

    op.create_table(
        "active_alerts",
        sa.Column("group_name", sa.Text(), primary_key=True),
        sa.Column("policy", sa.Text(), primary_key=True),
        sa.Column("fingerprint", sa.Text(), primary_key=True),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("starts_at", _ts(), nullable=False),
        sa.Column("last_seen_at", _ts(), nullable=False),
        sa.Column("notification_id", _id(), sa.ForeignKey("notifications.id"), nullable=False),
        sa.Column("last_reason", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("active_alerts")
    op.drop_table("actions")
    op.drop_table("decisions")
    op.drop_table("group_states")
    op.drop_table("seen_keys")
    op.drop_table("notifications")
