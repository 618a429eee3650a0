"""API usage per day and charged calls

Revision ID: 0014_api_usage
Revises: 0013_referrals
Create Date: 2026-12-03 21:58:01.200542
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_api_usage"
down_revision: str | None = "0013_referrals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("group", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_charges_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_charges")),
        sa.UniqueConstraint("request_id", name=op.f("uq_api_charges_request_id")),
    )
    with op.batch_alter_table("api_charges", schema=None) as batch_op:
        batch_op.create_index("ix_api_charges_user_day", ["user_id", "day"], unique=False)

    op.create_table(
        "api_usage_days",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("group", sa.String(length=16), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_usage_days_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "day", "group", name=op.f("pk_api_usage_days")),
    )


def downgrade() -> None:
    op.drop_table("api_usage_days")
    with op.batch_alter_table("api_charges", schema=None) as batch_op:
        batch_op.drop_index("ix_api_charges_user_day")

    op.drop_table("api_charges")
