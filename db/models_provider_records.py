"""Each marketplace provider's record kept up to date as its signals arrive and close (services.marketplace_rollups):
what /market's ranking needs, so the board reads a row per provider instead of every signal."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, Text, false
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from db.base import Base, UTCDateTime

SLOTS = 10**6  # more than any date's ordinal (738,000 in 2021)


class Figure(TypeDecorator[Decimal]):
    """A Decimal kept exactly as written (every digit and the exponent, any length): a running figure
    must read back exactly as it was computed, or the next step would round differently."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"expected a finite Decimal, got {value!r}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: object) -> Decimal | None:
        return None if value is None else Decimal(value)


class ProviderRecord(Base):
    """A provider's record, updated in the transaction that stores each of its signals and closing events.
    The running figures follow track_record.figures step by step in closing order (closing time, then signal
    id). `stale`: not to be trusted (written before the record existed, or a close arrived out of order):
    recomputed from the signals before the next ranking."""

    __tablename__ = "provider_records"

    provider_id: Mapped[int] = mapped_column(Integer, ForeignKey("providers.id"), primary_key=True,
                                             autoincrement=False)
    stale: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    first_signal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_signal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    markets: Mapped[list] = mapped_column(JSON, default=list)  # ecosystems of its signals, sorted
    closed: Mapped[int] = mapped_column(Integer, default=0)
    wins: Mapped[int] = mapped_column(Integer, default=0)
    ret_sum: Mapped[Decimal] = mapped_column(Figure, default=Decimal(0))  # cumulative return
    ret_exact: Mapped[Decimal] = mapped_column(Figure, default=Decimal(0))  # the same, not rounded
    level: Mapped[Decimal] = mapped_column(Figure, default=Decimal(1))  # the equity curve's last point
    peak: Mapped[Decimal] = mapped_column(Figure, default=Decimal(1))
    max_drawdown: Mapped[Decimal] = mapped_column(Figure, default=Decimal(0))
    r_sum: Mapped[Decimal] = mapped_column(Figure, default=Decimal(0))
    r_count: Mapped[int] = mapped_column(Integer, default=0)
    last_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_closed_signal: Mapped[int | None] = mapped_column(Integer)
    weeks: Mapped[int] = mapped_column(Integer, default=0)  # ISO weeks (UTC) with closings
    positive_weeks: Mapped[int] = mapped_column(Integer, default=0)  # of which the returns sum above 0
    first_day: Mapped[int | None] = mapped_column(Integer)  # ProviderRecordDay rows span these days
    last_day: Mapped[int | None] = mapped_column(Integer)


class ProviderRecordWeek(Base):
    """The exact sum of the returns closed in one ISO week (year × 100 + week, UTC)."""

    __tablename__ = "provider_record_weeks"

    provider_id: Mapped[int] = mapped_column(Integer, ForeignKey("providers.id"), primary_key=True,
                                             autoincrement=False)
    week: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    total: Mapped[Decimal] = mapped_column(Figure)


class ProviderRecordDay(Base):
    """Closed signals by the day (UTC, date ordinal) they arrived: `total`, the exact sum of their returns;
    `before`, the exact sum for the days before; `trades`, [arrival (µs since 1970, UTC), return] of each. Rows
    run without gaps from the first such day to the last, so what a subscriber since any moment got is one row
    away."""

    __tablename__ = "provider_record_days"

    #: provider_id × SLOTS + day: one integer key, so the board fetches any set of (provider, day) rows with one
    #: plain IN, and a provider's days from one on are a range of it
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    provider_id: Mapped[int] = mapped_column(Integer, ForeignKey("providers.id"))
    day: Mapped[int] = mapped_column(Integer)
    before: Mapped[Decimal] = mapped_column(Figure)
    total: Mapped[Decimal] = mapped_column(Figure)
    trades: Mapped[list] = mapped_column(JSON, default=list)


class MarketBoardSnapshot(Base):
    """/market's last computed board (one row), so a process that starts (or whose board expired) serves it at
    once while it is younger than the board's keeping time; `line_up` (id, name, price and declared markets of
    each approved provider then) tells which providers changed since, whose entries are redone. Written by
    whoever computes the whole board (the leader's refresh job)."""

    __tablename__ = "market_board_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    line_up: Mapped[list] = mapped_column(JSON)
    entries: Mapped[list] = mapped_column(JSON)


class ProviderSubscriberGains(Base):
    """What a provider's subscribers got (services.marketplace_rollups.subscriber_sums), kept by the ranking that
    worked it out so the next one (in any process) reads a row per provider instead of a day row per subscriber:
    `gains` maps a subscriber's start (µs since 1970, UTC) to the exact sum of the returns of the closed signals
    that arrived from it. Valid while the provider's record is at `version` (marketplace_rollups.version_of)."""

    __tablename__ = "provider_subscriber_gains"

    provider_id: Mapped[int] = mapped_column(Integer, ForeignKey("providers.id"), primary_key=True,
                                             autoincrement=False)
    version: Mapped[str] = mapped_column(Text)
    gains: Mapped[dict] = mapped_column(JSON, default=dict)
