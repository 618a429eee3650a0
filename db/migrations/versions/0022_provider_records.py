"""provider records: each marketplace provider's figures kept as its signals close (the /market ranking's input)

Every existing provider gets a record marked stale: the first ranking after the upgrade recomputes it once from
the stored signals (services.marketplace_rollups.rebuild_stale); from then on it is kept in step by each
signal and closing event.

Revision ID: 0022_provider_records
Revises: 0021_prorata_reminders
Create Date: 2026-12-04 10:08:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_provider_records"
down_revision: str | None = "0021_prorata_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_record_days",
        sa.Column("slot", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("total", sa.Text(), nullable=False),
        sa.Column("trades", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_provider_record_days_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_provider_record_days")),
    )
    op.create_table(
        "provider_record_weeks",
        sa.Column("provider_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("week", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("total", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_provider_record_weeks_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("provider_id", "week", name=op.f("pk_provider_record_weeks")),
    )
    op.create_table(
        "provider_records",
        sa.Column("provider_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stale", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("first_signal_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_signal_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("markets", sa.JSON(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("ret_sum", sa.Text(), nullable=False),
        sa.Column("ret_exact", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("peak", sa.Text(), nullable=False),
        sa.Column("max_drawdown", sa.Text(), nullable=False),
        sa.Column("r_sum", sa.Text(), nullable=False),
        sa.Column("r_count", sa.Integer(), nullable=False),
        sa.Column("last_closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_closed_signal", sa.Integer(), nullable=True),
        sa.Column("weeks", sa.Integer(), nullable=False),
        sa.Column("positive_weeks", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Integer(), nullable=True),
        sa.Column("last_day", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_provider_records_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_provider_records")),
    )
    # the backfill: every provider's record is recomputed from its signals before the next ranking
    op.execute(
        sa.text(
            "INSERT INTO provider_records (provider_id, stale, markets, closed, wins, ret_sum, ret_exact, level, "
            "peak, max_drawdown, r_sum, r_count, weeks, positive_weeks) "
            "SELECT id, TRUE, '[]', 0, 0, '0', '0', '1', '1', '0', '0', 0, 0, 0 FROM providers"
        )
    )


def downgrade() -> None:
    op.drop_table("provider_records")
    op.drop_table("provider_record_weeks")
    op.drop_table("provider_record_days")
