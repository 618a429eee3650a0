"""market board snapshot: /market's last computed board, served by a process that has just started

Revision ID: 0023_market_board_snapshot
Revises: 0022_provider_records
Create Date: 2026-12-04 10:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_market_board_snapshot"
down_revision: str | None = "0022_provider_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_board_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("line_up", sa.JSON(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_board_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("market_board_snapshots")
