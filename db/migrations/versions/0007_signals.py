"""signals

Revision ID: 0007_signals
Revises: 0006_plans
Create Date: 2026-11-21 09:50:02.435449
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_signals"
down_revision: str | None = "0006_plans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.BigInteger(), nullable=False),
        sa.Column("from_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=48), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("progress_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("progress_message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_table(
        "signal_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("chat", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["signal_outbox.id"], name=op.f("fk_signal_outbox_parent_id_signal_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_outbox")),
        sa.UniqueConstraint("kind", "item_id", "chat", name=op.f("uq_signal_outbox_kind_item_id_chat")),
    )
    with op.batch_alter_table("signal_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_signal_outbox_kind_item_id_status", ["kind", "item_id", "status"], unique=False)
        batch_op.create_index("ix_signal_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_signal_outbox_user_id"), ["user_id"], unique=False)

    op.create_table(
        "signals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("ecosystem", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("entry", sa.String(length=64), nullable=False),
        sa.Column("take_profits", sa.JSON(), nullable=False),
        sa.Column("stop_loss", sa.String(length=64), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint("external_id", name=op.f("uq_signals_external_id")),
        sa.UniqueConstraint("hash", name=op.f("uq_signals_hash")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_signals_prev_hash")),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signals_received_at"), ["received_at"], unique=False)

    op.create_table(
        "signal_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signal_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("price", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["signal_id"], ["signals.id"], name=op.f("fk_signal_events_signal_id_signals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_signal_events_hash")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_signal_events_prev_hash")),
        sa.UniqueConstraint("signal_id", "type", "level", name=op.f("uq_signal_events_signal_id_type_level")),
    )
    with op.batch_alter_table("signal_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signal_events_signal_id"), ["signal_id"], unique=False)

    op.create_table(
        "signal_filters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_signal_filters_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_filters")),
        sa.UniqueConstraint("user_id", "kind", "value", name=op.f("uq_signal_filters_user_id_kind_value")),
    )
    with op.batch_alter_table("signal_filters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signal_filters_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signal_filters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signal_filters_user_id"))

    op.drop_table("signal_filters")
    with op.batch_alter_table("signal_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signal_events_signal_id"))

    op.drop_table("signal_events")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_received_at"))

    op.drop_table("signals")
    with op.batch_alter_table("signal_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signal_outbox_user_id"))
        batch_op.drop_index("ix_signal_outbox_status_next_attempt_at")
        batch_op.drop_index("ix_signal_outbox_kind_item_id_status")

    op.drop_table("signal_outbox")
    op.drop_table("broadcasts")
