"""Dataset purchases

Revision ID: 0016_datasets
Revises: 0015_api_webhooks
Create Date: 2026-12-03 22:02:03.310399
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_datasets"
down_revision: str | None = "0015_api_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dataset_purchases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("dataset", sa.String(length=32), nullable=False),
        sa.Column("cut", sa.String(length=16), nullable=False),
        sa.Column("cutoff_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bounds", sa.JSON(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("price", sa.String(length=64), nullable=False),
        sa.Column("paid_with", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_dataset_purchases_order_id_orders")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_dataset_purchases_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_purchases")),
        sa.UniqueConstraint("order_id", name=op.f("uq_dataset_purchases_order_id")),
        sa.UniqueConstraint("ref", name=op.f("uq_dataset_purchases_ref")),
    )
    with op.batch_alter_table("dataset_purchases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_purchases_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dataset_purchases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_purchases_user_id"))

    op.drop_table("dataset_purchases")
