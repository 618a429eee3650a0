"""Subscriptions: a user's paid (or granted) time on a plan."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class Subscription(Base):
    """One period on a plan. Renewals add a row that starts where the last one ends, so the history
    is kept and "active" is simply a row covering now."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    plan: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(32))  # "order", "grant", "stars_subscription"
    order_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("orders.id"), unique=True)
    granted_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_subscriptions_user_id_ends_at", "user_id", "ends_at"),)
