"""API outbound webhooks and their deliveries

Revision ID: 0015_api_webhooks
Revises: 0014_api_usage
Create Date: 2026-12-03 22:03:05.112056
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_api_webhooks"
down_revision: str | None = "0014_api_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_webhooks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_webhooks")),
        sa.UniqueConstraint("user_id", name=op.f("uq_api_webhooks_user_id")),
    )
    op.create_table(
        "api_webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["api_webhooks.id"],
            name=op.f("fk_api_webhook_deliveries_webhook_id_api_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_webhook_deliveries")),
        sa.UniqueConstraint("public_id", name=op.f("uq_api_webhook_deliveries_public_id")),
        sa.UniqueConstraint(
            "webhook_id", "kind", "item_id", name=op.f("uq_api_webhook_deliveries_webhook_id_kind_item_id")
        ),
    )
    with op.batch_alter_table("api_webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_api_webhook_deliveries_status_next", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_api_webhook_deliveries_user_id", ["user_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_api_webhook_deliveries_user_id")
        batch_op.drop_index("ix_api_webhook_deliveries_status_next")

    op.drop_table("api_webhook_deliveries")
    op.drop_table("api_webhooks")
