"""admin prefs

Revision ID: 0011_admin_prefs
Revises: 0010_one_invoice
Create Date: 2026-12-03 14:10:39.748431
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_admin_prefs"
down_revision: str | None = "0010_one_invoice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_prefs",
        sa.Column("admin_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sale_notices", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("admin_id", name=op.f("pk_admin_prefs")),
    )


def downgrade() -> None:
    op.drop_table("admin_prefs")
