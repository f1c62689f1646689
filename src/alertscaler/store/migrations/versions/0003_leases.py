"""Replicas and leases: a ``replicas`` table (heartbeats), ``actions.owner`` / ``actions.lease_expires_at``,
and ``group_owners`` (which live replica drives each group).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Actions left RUNNING by an older version get no owner and no lease: they count as expired, so the first
replica that recovers takes them over (what every start did before this revision).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("owner", sa.Text(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", _ts(), nullable=True))
    op.create_index("ix_actions_owner", "actions", ["owner"])
    op.create_table(
        "replicas",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("heartbeat_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("stopped_at", _ts(), nullable=True),
    )
    op.create_table(
        "group_owners",
        sa.Column("group_name", sa.Text(), primary_key=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("since", _ts(), nullable=False),
    )
    op.create_index("ix_group_owners_owner", "group_owners", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_group_owners_owner", table_name="group_owners")
    op.drop_table("group_owners")
    op.drop_table("replicas")
    op.drop_index("ix_actions_owner", table_name="actions")
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner")
