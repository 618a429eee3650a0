"""Payout runs: each run pays every seller with a payable balance (services.payouts). One item per (run,
seller), created with the ledger movement that takes its amount out of the seller's payable balance; its
`spend_id` makes the transfer happen once however often the item is retried."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class PayoutRun(Base):
    __tablename__ = "payout_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_by: Mapped[int | None] = mapped_column(BigInteger)  # an admin; None: the monthly schedule
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: An admin's run in the background: renewed while it runs (a second tap meanwhile is refused; a run whose
    #: process died lets the next tap start another), and the message its progress is edited into.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)


class PayoutItem(Base):
    """One seller's payout. `state`: sending (a transfer to make) → paid | failed (refused by the provider: the
    amount went back to payable); manual (an admin sends it by hand) → paid with the admin's reference."""

    __tablename__ = "payout_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("payout_runs.id"))
    seller: Mapped[str] = mapped_column(String(48))
    amount_micros: Mapped[int] = mapped_column(BigInteger)  # USD
    method: Mapped[str] = mapped_column(String(16))  # "transfer" or "manual"
    user_id: Mapped[int | None] = mapped_column(BigInteger)  # a transfer's recipient (Telegram account)
    address: Mapped[str | None] = mapped_column(String(200))  # a manual payout's destination
    via: Mapped[str | None] = mapped_column(String(32))  # the payment provider that transfers
    spend_id: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reference: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(BigInteger)  # the admin who recorded a manual payout
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("run_id", "seller"),
        Index("ix_payout_items_seller_state", "seller", "state"),
    )
