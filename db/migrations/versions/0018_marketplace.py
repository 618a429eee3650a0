"""signal-provider marketplace

Revision ID: 0018_marketplace
Revises: 0017_update_dedup
Create Date: 2026-12-04 04:23:25.136066
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_marketplace"
down_revision: str | None = "0017_update_dedup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("ecosystems", sa.JSON(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("payout_method", sa.String(length=16), nullable=False),
        sa.Column("payout_address", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("reviewed_by", sa.BigInteger(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_providers_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("user_id", name=op.f("uq_providers_user_id")),
    )
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_providers_status"), ["status"], unique=False)

    op.create_table(
        "provider_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_provider_subscriptions_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_provider_subscriptions_provider_id_providers")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_provider_subscriptions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_subscriptions")),
        sa.UniqueConstraint("order_id", name=op.f("uq_provider_subscriptions_order_id")),
    )
    with op.batch_alter_table("provider_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_provider_subscriptions_provider_id_ends_at", ["provider_id", "ends_at"], unique=False)
        batch_op.create_index("ix_provider_subscriptions_user_id_provider_id", ["user_id", "provider_id"], unique=False)

    op.create_table(
        "seller_earnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("seller", sa.String(length=48), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("share_micros", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payable_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_seller_earnings_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller_earnings")),
        sa.UniqueConstraint("order_id", name=op.f("uq_seller_earnings_order_id")),
    )
    with op.batch_alter_table("seller_earnings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seller_earnings_seller"), ["seller"], unique=False)
        batch_op.create_index("ix_seller_earnings_state_payable_at", ["state", "payable_at"], unique=False)

    with op.batch_alter_table("signal_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_signal_events_provider_id"), ["provider_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_signal_events_provider_id_providers"), "providers", ["provider_id"], ["id"]
        )

    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_signals_provider_id"), ["provider_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_signals_provider_id_providers"), "providers", ["provider_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_signals_provider_id_providers"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_signals_provider_id"))
        batch_op.drop_column("provider_id")

    with op.batch_alter_table("signal_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_signal_events_provider_id_providers"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_signal_events_provider_id"))
        batch_op.drop_column("provider_id")

    with op.batch_alter_table("seller_earnings", schema=None) as batch_op:
        batch_op.drop_index("ix_seller_earnings_state_payable_at")
        batch_op.drop_index(batch_op.f("ix_seller_earnings_seller"))

    op.drop_table("seller_earnings")
    with op.batch_alter_table("provider_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_subscriptions_user_id_provider_id")
        batch_op.drop_index("ix_provider_subscriptions_provider_id_ends_at")

    op.drop_table("provider_subscriptions")
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_providers_status"))

    op.drop_table("providers")
