"""The notification outbox: ``outbox``, one row per notification to send (an alarm transition's ``notify:``
action or URL, written in the same transaction as the transition) with its stable id (``uid``: the receivers'
de-duplication key), what it goes to, the event, its status (pending, delivered, failed), the attempts made and
when the next is due, and the claim a replica holds while sending it; ``outbox_attempts``, one row per delivery
attempt (when, which replica, outcome, the HTTP status / SMTP reply / error text; never a secret).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(64), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("alarm", sa.Text(), nullable=True),
        sa.Column("group_name", sa.Text(), nullable=True),
        sa.Column("history_id", _id(), nullable=True),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("next_attempt_at", _ts(), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_until", _ts(), nullable=True),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.Column("last_result", sa.Text(), nullable=False),
        sa.UniqueConstraint("uid", name="uq_outbox_uid"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_index("ix_outbox_alarm_id", "outbox", ["alarm", "id"])
    op.create_table(
        "outbox_attempts",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("outbox_id", _id(), sa.ForeignKey("outbox.id"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("replica", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_attempts_outbox", "outbox_attempts", ["outbox_id", "attempt"])


def downgrade() -> None:
    op.drop_index("ix_outbox_attempts_outbox", table_name="outbox_attempts")
    op.drop_table("outbox_attempts")
    op.drop_index("ix_outbox_alarm_id", table_name="outbox")
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
