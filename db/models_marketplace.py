"""The signal-provider marketplace: providers (their application and review), subscriptions to a provider
(periods paid by orders, like plan periods) and sellers' earnings (each paid order's share, held, then payable)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class Provider(Base):
    """A signal provider: one per user. `status`: pending → approved | rejected; approved ⇄ suspended; a
    rejected applicant may apply again (the row goes back to pending)."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    ecosystems: Mapped[list] = mapped_column(JSON, default=list)
    price_cents: Mapped[int] = mapped_column(Integer)  # a month, USD cents
    payout_method: Mapped[str] = mapped_column(String(16))  # "telegram" (their Telegram account) / "address"
    payout_address: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    reason: Mapped[str | None] = mapped_column(String(300))  # of a rejection or suspension
    reviewed_by: Mapped[int | None] = mapped_column(BigInteger)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first approval: "verified since"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderSubscription(Base):
    """One paid period of a user's subscription to a provider; renewals start where the last one ends."""

    __tablename__ = "provider_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    provider_id: Mapped[int] = mapped_column(Integer, ForeignKey("providers.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    order_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("orders.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_provider_subscriptions_provider_id_ends_at", "provider_id", "ends_at"),
        Index("ix_provider_subscriptions_user_id_provider_id", "user_id", "provider_id"),
    )


class SellerEarning(Base):
    """A seller's share of one paid order (the money itself is in the ledger; this row schedules it).
    `seller` names who is paid ("provider:7"; indicator developers later). `state`: pending (until
    `payable_at`) → payable | refunded; a payable one refunded later stays payable and its share is taken
    from the seller's balance (a debt against future earnings)."""

    __tablename__ = "seller_earnings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id"))
    seller: Mapped[str] = mapped_column(String(48), index=True)
    price_micros: Mapped[int] = mapped_column(BigInteger)
    share_micros: Mapped[int] = mapped_column(BigInteger)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payable_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("order_id"),
        Index("ix_seller_earnings_state_payable_at", "state", "payable_at"),
    )


class ProviderNotice(Base):
    """A renewal reminder ("remind_3d", "remind_1d") for a user's paid time with a provider that ends at
    `ends_at`. Claimed by inserting the row (the unique key: once across runs and replicas); a renewal moves the
    end, so the new end gets its own reminders."""

    __tablename__ = "provider_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    provider_id: Mapped[int] = mapped_column(Integer, ForeignKey("providers.id"))
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # claimed, sent, skipped
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("user_id", "provider_id", "ends_at", "kind"),)
