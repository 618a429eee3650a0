"""signal events: the sender's claimed time (`at`), nullable

Revision ID: 0020_event_claimed_at
Revises: 0019_payouts_ratings
Create Date: 2026-12-04 10:04:11.730301
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_event_claimed_at"
down_revision: str | None = "0019_payouts_ratings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signal_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signal_events", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
