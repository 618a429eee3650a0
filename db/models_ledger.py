"""The one money ledger: accounts, movements (one per cause) and their entries (double entry)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class LedgerAccount(Base):
    """A named account (`user:<id>:api_credit`, `platform:sales`, ...). It holds no balance: a balance is
    the sum of its entries. A user's row is locked (SELECT ... FOR UPDATE) while that user is charged."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerMovement(Base):
    """One movement of money and its cause: (`kind`, `ref`) is unique, so a retried movement is recorded
    once (e.g. ("order", "42"), ("api_call", a request id), ("refund", "42"))."""

    __tablename__ = "ledger_movements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("kind", "ref"),)


class LedgerEntry(Base):
    """One side of a movement: a signed amount in integer micro-dollars (1 USD = 1,000,000) on one
    account. A movement's entries sum to zero; one entry per (movement, account)."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    movement_id: Mapped[int] = mapped_column(Integer, ForeignKey("ledger_movements.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(Integer, ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("movement_id", "account_id"),)
