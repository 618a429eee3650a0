"""Telegram update ids already taken in (dedup of webhook retries)

Revision ID: 0017_update_dedup
Revises: 0016_datasets
Create Date: 2026-12-03 22:05:15.065037
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_update_dedup"
down_revision: str | None = "0016_datasets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "update_dedup",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_update_dedup")),
    )
    with op.batch_alter_table("update_dedup", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_update_dedup_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("update_dedup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_update_dedup_seen_at"))

    op.drop_table("update_dedup")
