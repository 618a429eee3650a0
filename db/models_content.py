"""Channel content: the post log (one row per slot, claimed before anything is generated or sent),
the generation log (every call to the model or the template) and admins' preview drafts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class ContentGeneration(Base):
    """One generation: what was asked, what came back, what it cost, and whether the template stood in."""

    __tablename__ = "content_generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)  # the model's raw answer (last attempt)
    text: Mapped[str] = mapped_column(Text)  # what would be posted: sanitised output or the template
    model: Mapped[str | None] = mapped_column(String(64))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    total_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fallback_used: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ContentPost(Base):
    """One post. `slot_key` is unique, so a slot (or one /post_now, or one draft) posts once however many
    processes try. Status: claimed → posted | dry_run | failed; interrupted (died while claimed);
    skipped (missed past the grace window)."""

    __tablename__ = "content_posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_key: Mapped[str] = mapped_column(String(80), unique=True)
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(16))  # schedule, manual, draft
    kind: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="claimed", index=True)
    text: Mapped[str | None] = mapped_column(Text)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(Integer)
    generation_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("content_generations.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContentDraft(Base):
    """A /preview draft shown to one admin. Buttons act on it only while it is `open` and theirs."""

    __tablename__ = "content_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    admin_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    generation_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("content_generations.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, published, replaced, discarded
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
