"""ORM models. Times are UTC (`UTCDateTime`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, ExactDecimal, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8), default="en")
    referrer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    is_blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    terms_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_banned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # by an admin
    #: When a banned user was told that access is closed (once per ban; None: not yet, or not banned).
    ban_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Order(Base):
    """One purchase. `status` changes only through services.orders (conditional updates)."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    product: Mapped[str] = mapped_column(String(32))
    product_ref: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(200))
    amount_cents: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    provider: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Same user, product, choice and price: at most one such order awaits payment (a double tap
    #: reuses it instead of making a second one).
    offer_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        Index("uq_orders_open_offer", "offer_key", unique=True, sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )


class OrderEvent(Base):
    """Every status change of an order, with its cause."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    cause: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invoice(Base):
    """A provider's invoice for an order, as the provider states it."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    asset: Mapped[str] = mapped_column(String(16))
    pay_url: Mapped[str | None] = mapped_column(String(512))
    address: Mapped[str | None] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(32), default="active", index=True)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The payment method the buyer picked ("stars", "kx-BTC"); at most one live invoice per order
    #: and method, so a double tap cannot make two payable invoices.
    method: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("provider", "external_id"),
        Index("uq_invoices_live_method", "order_id", "method", unique=True,
              sqlite_where=text("status IN ('creating', 'active')"),
              postgresql_where=text("status IN ('creating', 'active')")),
    )


class Payment(Base):
    """Money received. The unique key makes a repeated notification count once
    (for Stars the external id is `telegram_payment_charge_id`)."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(256))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal)
    asset: Mapped[str] = mapped_column(String(16))
    usd_cents: Mapped[int | None] = mapped_column(Integer)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("provider", "external_id"),)


class FulfilmentJob(Base):
    """Durable fulfilment queue: one row per paid order, written in the same transaction."""

    __tablename__ = "fulfilment_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(Integer, ForeignKey("orders.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _load_feature_models() -> None:
    """Each product keeps its tables in db/models_<feature>.py; import them all so the metadata
    (and Alembic) always sees every table."""
    import importlib
    import pkgutil

    import db

    for module in pkgutil.iter_modules(db.__path__):
        if module.name.startswith("models_"):
            importlib.import_module(f"db.{module.name}")


_load_feature_models()
