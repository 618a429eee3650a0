"""payout runs and provider ratings

Revision ID: 0019_payouts_ratings
Revises: 0018_marketplace
Create Date: 2026-12-04 05:01:03.239844
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_payouts_ratings"
down_revision: str | None = "0018_marketplace"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payout_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_runs")),
    )
    op.create_table(
        "payout_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seller", sa.String(length=48), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("via", sa.String(length=32), nullable=True),
        sa.Column("spend_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.BigInteger(), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["payout_runs.id"], name=op.f("fk_payout_items_run_id_payout_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_items")),
        sa.UniqueConstraint("run_id", "seller", name=op.f("uq_payout_items_run_id_seller")),
        sa.UniqueConstraint("spend_id", name=op.f("uq_payout_items_spend_id")),
    )
    with op.batch_alter_table("payout_items", schema=None) as batch_op:
        batch_op.create_index("ix_payout_items_seller_state", ["seller", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_payout_items_state"), ["state"], unique=False)

    op.create_table(
        "provider_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("stars", sa.SmallInteger(), nullable=False),
        sa.Column("review", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply", sa.String(length=300), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_provider_ratings_provider_id_providers")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_provider_ratings_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_ratings")),
        sa.UniqueConstraint("provider_id", "user_id", name=op.f("uq_provider_ratings_provider_id_user_id")),
    )
    with op.batch_alter_table("provider_ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_ratings_provider_id"), ["provider_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("provider_ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_ratings_provider_id"))

    op.drop_table("provider_ratings")
    with op.batch_alter_table("payout_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payout_items_state"))
        batch_op.drop_index("ix_payout_items_seller_state")

    op.drop_table("payout_items")
    op.drop_table("payout_runs")
