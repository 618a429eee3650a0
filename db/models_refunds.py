"""Refunds: what an admin decided to refund (and whether the product was taken back), and one
request per payment that tracks the money going back to the buyer.

A request's states: requested → sent | failed (a provider that pays back by API: Stars, Crypto Pay),
or requested → awaiting_address → awaiting_admin → sent | failed (money sent on-chain by hand).
(payment_id, kind) is unique, so a payment is refunded once; `spend_id` is the idempotency key a
retried transfer reuses.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, ExactDecimal, UTCDateTime, utcnow


class Refund(Base):
    """One admin decision: refund an order in full (the product is taken back) or only its excess."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # full, excess, unused
    admin_id: Mapped[int | None] = mapped_column(BigInteger)
    #: An "unused" refund's part of the order (part_num / part_den, e.g. seconds left / seconds paid for),
    #: decided once when it is recorded: the money back and the product's take-back both follow it.
    part_num: Mapped[int | None] = mapped_column(BigInteger)
    part_den: Mapped[int | None] = mapped_column(BigInteger)
    takeback: Mapped[str] = mapped_column(String(16), index=True)  # pending, done, none
    taken_back: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefundRequest(Base):
    """Money owed back for one payment."""

    __tablename__ = "refund_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    refund_id: Mapped[int] = mapped_column(Integer, ForeignKey("refunds.id"), index=True)
    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id"), index=True)
    payment_id: Mapped[int] = mapped_column(Integer, ForeignKey("payments.id"))
    kind: Mapped[str] = mapped_column(String(8))  # full, excess
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    provider: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)  # what is sent back, in `asset`
    portion: Mapped[Decimal] = mapped_column(ExactDecimal)  # the part of the payment refunded, in its unit
    state: Mapped[str] = mapped_column(String(20), index=True)
    spend_id: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str | None] = mapped_column(String(256))
    reference: Mapped[str | None] = mapped_column(String(256))  # transfer id or transaction hash
    error: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("payment_id", "kind"),)


class DeliverySecret(Base):
    """A delivered secret (an API key), encrypted, kept only until the delivery is recorded so a
    retry after a crash can send the same one again."""

    __tablename__ = "delivery_secrets"

    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id"), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
