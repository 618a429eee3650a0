"""refunds and delivery secrets

Revision ID: 0009_refunds
Revises: 0008_admin
Create Date: 2026-12-03 13:27:18.020426
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_refunds"
down_revision: str | None = "0008_admin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_secrets",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_delivery_secrets_order_id_orders")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_delivery_secrets")),
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("admin_id", sa.BigInteger(), nullable=True),
        sa.Column("takeback", sa.String(length=16), nullable=False),
        sa.Column("taken_back", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refunds_takeback"), ["takeback"], unique=False)

    op.create_table(
        "refund_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refund_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.String(length=64), nullable=False),
        sa.Column("portion", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("spend_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=256), nullable=True),
        sa.Column("reference", sa.String(length=256), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_refund_requests_order_id_orders")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refund_requests_payment_id_payments")),
        sa.ForeignKeyConstraint(["refund_id"], ["refunds.id"], name=op.f("fk_refund_requests_refund_id_refunds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_requests")),
        sa.UniqueConstraint("payment_id", "kind", name=op.f("uq_refund_requests_payment_id_kind")),
        sa.UniqueConstraint("spend_id", name=op.f("uq_refund_requests_spend_id")),
    )
    with op.batch_alter_table("refund_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refund_requests_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refund_requests_refund_id"), ["refund_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refund_requests_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_refund_requests_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refund_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refund_requests_user_id"))
        batch_op.drop_index(batch_op.f("ix_refund_requests_state"))
        batch_op.drop_index(batch_op.f("ix_refund_requests_refund_id"))
        batch_op.drop_index(batch_op.f("ix_refund_requests_order_id"))

    op.drop_table("refund_requests")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_takeback"))
        batch_op.drop_index(batch_op.f("ix_refunds_order_id"))

    op.drop_table("refunds")
    op.drop_table("delivery_secrets")
