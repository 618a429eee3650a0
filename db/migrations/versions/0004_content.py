"""content

Revision ID: 0004_content
Revises: 0007_signals
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_content"
down_revision: str | None = "0007_signals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "content_generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("total_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("fallback_used", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_generations")),
    )
    with op.batch_alter_table("content_generations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_content_generations_created_at"), ["created_at"], unique=False)

    op.create_table(
        "content_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("admin_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["content_generations.id"],
            name=op.f("fk_content_drafts_generation_id_content_generations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_drafts")),
    )
    op.create_table(
        "content_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slot_key", sa.String(length=80), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("generation_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["content_generations.id"],
            name=op.f("fk_content_posts_generation_id_content_generations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_posts")),
        sa.UniqueConstraint("slot_key", name=op.f("uq_content_posts_slot_key")),
    )
    with op.batch_alter_table("content_posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_content_posts_slot_at"), ["slot_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_content_posts_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("content_posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_posts_status"))
        batch_op.drop_index(batch_op.f("ix_content_posts_slot_at"))

    op.drop_table("content_posts")
    op.drop_table("content_drafts")
    with op.batch_alter_table("content_generations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_generations_created_at"))

    op.drop_table("content_generations")
