"""Whale leaderboards: wallets, their trades, who follows whom, the alert queue and weekly posts.

Amounts are kept twice on purpose: exactly as sent (`ExactDecimal`, for display) and as integer
cents (`BigInteger`, for SQL SUM/ORDER BY — an ExactDecimal is a string column and cannot be
aggregated correctly in SQL)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, ExactDecimal, UTCDateTime, utcnow


class WhaleWallet(Base):
    __tablename__ = "whale_wallets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(128))
    chain: Mapped[str] = mapped_column(String(32))
    label: Mapped[str | None] = mapped_column(String(64))
    twitter: Mapped[str | None] = mapped_column(String(32))  # handle without "@"; set by admins only
    verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # admins only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("address", "chain"),)


class WhaleTrade(Base):
    __tablename__ = "whale_trades"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    wallet_id: Mapped[int] = mapped_column(Integer, ForeignKey("whale_wallets.id"))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))  # "buy" | "sell"
    usd_value: Mapped[Decimal] = mapped_column(ExactDecimal)
    pnl_usd: Mapped[Decimal | None] = mapped_column(ExactDecimal)  # realised PnL; None when nothing realised
    usd_cents: Mapped[int] = mapped_column(BigInteger)
    pnl_cents: Mapped[int | None] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_whale_trades_wallet_id_ts", "wallet_id", "ts"),)


class _Counters:
    """What a leaderboard needs, summed over trades: counts and integer cents."""

    trades: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)  # trades with a realised PnL
    wins: Mapped[int] = mapped_column(Integer, default=0)  # trades with PnL > 0
    volume_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    pnl_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # usd - pnl of the realising trades


class WhaleDay(_Counters, Base):
    """Per wallet and UTC day of the trade, kept in the ingest transaction: 7/30-day boards sum these
    instead of scanning every trade."""

    __tablename__ = "whale_days"

    wallet_id: Mapped[int] = mapped_column(Integer, ForeignKey("whale_wallets.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)

    # Covering: a 7/30-day board reads the index alone.
    __table_args__ = (Index("ix_whale_days_day_cover", "day", "wallet_id", "trades", "closed", "wins", "volume_cents",
                            "pnl_cents", "cost_cents"),)


class WhaleTotal(_Counters, Base):
    """All-time counters per wallet (the all-time board reads one row per wallet)."""

    __tablename__ = "whale_totals"

    wallet_id: Mapped[int] = mapped_column(Integer, ForeignKey("whale_wallets.id"), primary_key=True)


class WhaleFollow(Base):
    __tablename__ = "whale_follows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    wallet_id: Mapped[int] = mapped_column(Integer, ForeignKey("whale_wallets.id"), index=True)
    threshold_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("user_id", "wallet_id"),)


class WhaleAlert(Base):
    """Durable alert queue: one row per (follow, trade), written in the ingest transaction.
    pending -> sending (claimed, leased) -> sent | skipped | failed."""

    __tablename__ = "whale_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follow_id: Mapped[int] = mapped_column(Integer, ForeignKey("whale_follows.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    trade_id: Mapped[int] = mapped_column(Integer, ForeignKey("whale_trades.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("follow_id", "trade_id"),
        Index("ix_whale_alerts_status_queued_at", "status", "queued_at"),
    )


class WhalePost(Base):
    """One weekly leaderboard post per week key ("2026-W47"): claimed before sending, so a second
    scheduler run or a restart never posts twice."""

    __tablename__ = "whale_posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="sending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
