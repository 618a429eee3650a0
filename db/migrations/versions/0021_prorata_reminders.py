"""provider renewal reminders, pro-rata refunds, background payout runs

Revision ID: 0021_prorata_reminders
Revises: 0020_event_claimed_at
Create Date: 2026-12-04 10:06:55.698408
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_prorata_reminders"
down_revision: str | None = "0020_event_claimed_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_provider_notices_provider_id_providers")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_provider_notices_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_notices")),
        sa.UniqueConstraint(
            "user_id",
            "provider_id",
            "ends_at",
            "kind",
            name=op.f("uq_provider_notices_user_id_provider_id_ends_at_kind"),
        ),
    )
    with op.batch_alter_table("payout_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part_num", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("part_den", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("part_den")
        batch_op.drop_column("part_num")

    with op.batch_alter_table("payout_runs", schema=None) as batch_op:
        batch_op.drop_column("message_id")
        batch_op.drop_column("chat_id")
        batch_op.drop_column("lease_until")

    op.drop_table("provider_notices")
