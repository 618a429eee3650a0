"""one open order per offer, one live invoice per order and method

Revision ID: 0010_one_invoice
Revises: 0009_refunds
Create Date: 2026-12-03 13:30:15.064095
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_one_invoice"
down_revision: str | None = "0009_refunds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("method", sa.String(length=32), nullable=True))
        batch_op.create_index(
            "uq_invoices_live_method",
            ["order_id", "method"],
            unique=True,
            sqlite_where=sa.text("status IN ('creating', 'active')"),
            postgresql_where=sa.text("status IN ('creating', 'active')"),
        )

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("offer_key", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "uq_orders_open_offer",
            ["offer_key"],
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_orders_open_offer",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_column("offer_key")

    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_invoices_live_method",
            sqlite_where=sa.text("status IN ('creating', 'active')"),
            postgresql_where=sa.text("status IN ('creating', 'active')"),
        )
        batch_op.drop_column("method")
