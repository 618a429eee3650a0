"""Developer API keys (only a SHA-256 hash of each key is stored, with the first characters for display), calls
per day and the calls paid from API credit."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, UTCDateTime, utcnow


class ApiKey(Base):
    """A user's API key. Usable while `revoked_at` is unset and `grace_until` (set when it was rolled:
    the old key's last moment) is unset or still ahead. `last_used_at` is written in batches."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, for display
    permissions: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    grace_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rolled_from_id: Mapped[int | None] = mapped_column(Integer)  # the key this one replaced


class ApiUsageDay(Base):
    """Calls a user made on one UTC day to one endpoint group (charged ones included). Written in batches
    (a statistic, not money: the money of a charged call is in the ledger)."""

    __tablename__ = "api_usage_days"

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    group: Mapped[str] = mapped_column(String(16), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class ApiCharge(Base):
    """A call over the day's quota that was paid from API credit: written in the transaction of its ledger
    movement (kind "api_call", ref `request_id`), so the call and its charge are recorded together."""

    __tablename__ = "api_charges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    key_id: Mapped[int] = mapped_column(Integer)
    group: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(200))
    day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_api_charges_user_day", "user_id", "day"),)
