"""provider subscriber gains: what each provider's subscribers got, kept by the /market ranking that worked it out

Revision ID: 0024_provider_subscriber_gains
Revises: 0023_market_board_snapshot
Create Date: 2026-12-04 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_provider_subscriber_gains"
down_revision: str | None = "0023_market_board_snapshot"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_subscriber_gains",
        sa.Column("provider_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("gains", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"],
                                name=op.f("fk_provider_subscriber_gains_provider_id_providers")),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_provider_subscriber_gains")),
    )


def downgrade() -> None:
    op.drop_table("provider_subscriber_gains")
