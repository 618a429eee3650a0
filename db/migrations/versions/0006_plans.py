"""plan notices

Revision ID: 0006_plans
Revises: 0003
Create Date: 2026-11-21 09:49:21.838904
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_plans"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_plan_notices_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_notices")),
        sa.UniqueConstraint("user_id", "ends_at", "kind", name=op.f("uq_plan_notices_user_id_ends_at_kind")),
    )


def downgrade() -> None:
    op.drop_table("plan_notices")
