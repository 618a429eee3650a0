"""Outbound webhooks of the developer API: one URL per user (its signing secret encrypted at rest) and the
durable queue of deliveries to it, which is also the delivery log the user reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class ApiWebhook(Base):
    """A user's webhook. `secret` is the Fernet ciphertext of the signing secret (we sign with it, so it
    cannot be a hash). `failing_since`: the first failed delivery since the last success (None while
    deliveries succeed); a day of that disables the hook (`enabled` False, `disabled_at` set)."""

    __tablename__ = "api_webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiWebhookDelivery(Base):
    """One POST to make (a signal or an event for one hook), with its retries. `public_id` is the delivery id
    the receiver sees (`X-Webhook-Id`, stable across retries). `kind` is "signal.created" (`item_id` a
    signal) or "signal.event" (`item_id` an event). Status: queued → sending → delivered | failed |
    skipped (the plan no longer includes webhooks) | cancelled (the hook was switched off)."""

    __tablename__ = "api_webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    webhook_id: Mapped[int] = mapped_column(Integer, ForeignKey("api_webhooks.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim: Mapped[str | None] = mapped_column(String(32))
    status_code: Mapped[int | None] = mapped_column(Integer)  # the receiver's last answer
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("webhook_id", "kind", "item_id"),
        Index("ix_api_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_api_webhook_deliveries_user_id", "user_id", "id"),
    )
