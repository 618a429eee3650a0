"""Dataset purchases: what a buyer bought (a dataset, its cut and the data's bounds at that moment), so
every download of it gives the same file."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, ExactDecimal, UTCDateTime, utcnow


class DatasetPurchase(Base):
    """One bought dataset. `cutoff_at` (the data's end time) and `bounds` (the highest row id of each table
    it reads, e.g. {"signals": 120, "signal_events": 310}) fix its content; `ref` is unique per purchase
    ("order:<id>" through the payment core, "credit:<user>:<key>" with API credit; the ledger movement
    of a credit purchase has the cause ("dataset", ref)). Downloads stop once `revoked_at` is set (a refund)."""

    __tablename__ = "dataset_purchases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(128), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(32))
    cut: Mapped[str] = mapped_column(String(16))  # "live" / "delayed"
    cutoff_at: Mapped[datetime] = mapped_column(UTCDateTime)
    bounds: Mapped[dict] = mapped_column(JSON)
    rows: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(ExactDecimal)  # USD
    paid_with: Mapped[str] = mapped_column(String(16))  # "order" / "credit"
    order_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("orders.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
