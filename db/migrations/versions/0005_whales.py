"""whale leaderboards

Revision ID: 0005_whales
Revises: 0004_content
Create Date: 2026-11-21 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_whales"
down_revision: str | None = "0004_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "whale_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whale_posts")),
        sa.UniqueConstraint("week", name=op.f("uq_whale_posts_week")),
    )
    op.create_table(
        "whale_wallets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("twitter", sa.String(length=32), nullable=True),
        sa.Column("verified", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whale_wallets")),
        sa.UniqueConstraint("address", "chain", name=op.f("uq_whale_wallets_address_chain")),
    )
    op.create_table(
        "whale_days",
        sa.Column("wallet_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("volume_cents", sa.BigInteger(), nullable=False),
        sa.Column("pnl_cents", sa.BigInteger(), nullable=False),
        sa.Column("cost_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["whale_wallets.id"], name=op.f("fk_whale_days_wallet_id_whale_wallets")
        ),
        sa.PrimaryKeyConstraint("wallet_id", "day", name=op.f("pk_whale_days")),
    )
    with op.batch_alter_table("whale_days", schema=None) as batch_op:
        batch_op.create_index(
            "ix_whale_days_day_cover",
            ["day", "wallet_id", "trades", "closed", "wins", "volume_cents", "pnl_cents", "cost_cents"],
            unique=False,
        )

    op.create_table(
        "whale_follows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("wallet_id", sa.Integer(), nullable=False),
        sa.Column("threshold_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_whale_follows_user_id_users")),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["whale_wallets.id"], name=op.f("fk_whale_follows_wallet_id_whale_wallets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whale_follows")),
        sa.UniqueConstraint("user_id", "wallet_id", name=op.f("uq_whale_follows_user_id_wallet_id")),
    )
    with op.batch_alter_table("whale_follows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_whale_follows_wallet_id"), ["wallet_id"], unique=False)

    op.create_table(
        "whale_totals",
        sa.Column("wallet_id", sa.Integer(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("volume_cents", sa.BigInteger(), nullable=False),
        sa.Column("pnl_cents", sa.BigInteger(), nullable=False),
        sa.Column("cost_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["whale_wallets.id"], name=op.f("fk_whale_totals_wallet_id_whale_wallets")
        ),
        sa.PrimaryKeyConstraint("wallet_id", name=op.f("pk_whale_totals")),
    )
    op.create_table(
        "whale_trades",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("wallet_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("usd_value", sa.String(length=64), nullable=False),
        sa.Column("pnl_usd", sa.String(length=64), nullable=True),
        sa.Column("usd_cents", sa.BigInteger(), nullable=False),
        sa.Column("pnl_cents", sa.BigInteger(), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["whale_wallets.id"], name=op.f("fk_whale_trades_wallet_id_whale_wallets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whale_trades")),
        sa.UniqueConstraint("external_id", name=op.f("uq_whale_trades_external_id")),
    )
    with op.batch_alter_table("whale_trades", schema=None) as batch_op:
        batch_op.create_index("ix_whale_trades_wallet_id_ts", ["wallet_id", "ts"], unique=False)

    op.create_table(
        "whale_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follow_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("trade_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["follow_id"],
            ["whale_follows.id"],
            name=op.f("fk_whale_alerts_follow_id_whale_follows"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["trade_id"], ["whale_trades.id"], name=op.f("fk_whale_alerts_trade_id_whale_trades")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whale_alerts")),
        sa.UniqueConstraint("follow_id", "trade_id", name=op.f("uq_whale_alerts_follow_id_trade_id")),
    )
    with op.batch_alter_table("whale_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_whale_alerts_status_queued_at", ["status", "queued_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_whale_alerts_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("whale_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_whale_alerts_user_id"))
        batch_op.drop_index("ix_whale_alerts_status_queued_at")

    op.drop_table("whale_alerts")
    with op.batch_alter_table("whale_trades", schema=None) as batch_op:
        batch_op.drop_index("ix_whale_trades_wallet_id_ts")

    op.drop_table("whale_trades")
    op.drop_table("whale_totals")
    with op.batch_alter_table("whale_follows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_whale_follows_wallet_id"))

    op.drop_table("whale_follows")
    with op.batch_alter_table("whale_days", schema=None) as batch_op:
        batch_op.drop_index("ix_whale_days_day_cover")

    op.drop_table("whale_days")
    op.drop_table("whale_wallets")
    op.drop_table("whale_posts")
