"""Referral rewards and the banned user's notice

Revision ID: 0013_referrals
Revises: 0012_ledger_api_keys
Create Date: 2026-12-03 17:34:41.324585
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_referrals"
down_revision: str | None = "0012_ledger_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "referral_rewards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referred_user_id", sa.BigInteger(), nullable=False),
        sa.Column("referrer_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_referral_rewards_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["referred_user_id"],
            ["users.id"],
            name=op.f("fk_referral_rewards_referred_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["users.id"], name=op.f("fk_referral_rewards_referrer_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_rewards")),
        sa.UniqueConstraint("referred_user_id", name=op.f("uq_referral_rewards_referred_user_id")),
    )
    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_rewards_referrer_id"), ["referrer_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ban_notice_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("ban_notice_at")

    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_rewards_referrer_id"))

    op.drop_table("referral_rewards")
