"""Signals: what was received (hash-chained), what happened to it later, who it went to, and
admin broadcasts that ride the same delivery queue."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, ExactDecimal, UTCDateTime, utcnow

if TYPE_CHECKING:
    from db.models_marketplace import Provider


class Signal(Base):
    """One trading signal, as received. `hash` chains it to the previous signal (`prev_hash`):
    sha256 over the previous hash, the content and the receive time (services.track_record)."""

    __tablename__ = "signals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)  # the sender's id
    source: Mapped[str] = mapped_column(String(16))  # "api" or "admin"
    ecosystem: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))  # "long" / "short"
    entry: Mapped[Decimal] = mapped_column(ExactDecimal)
    take_profits: Mapped[list] = mapped_column(JSON)  # decimal strings, in order
    stop_loss: Mapped[Decimal] = mapped_column(ExactDecimal)
    timeframe: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)  # unique: the chain cannot fork
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: None: the house's (the operator's) signal; else a marketplace provider's, on that provider's own chain
    provider_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("providers.id"), index=True)
    #: loaded with the signal (no query for the house's): the name its subscribers see it under
    provider: Mapped[Provider | None] = relationship(lazy="selectin", viewonly=True)


class SignalEvent(Base):
    """A later event of a signal (tp_hit with its level, sl_hit, closed), chained like signals. `claimed_at`: when
    the sender says the price was reached (optional `at`); never used for figures, only for the late-events flag
    (services.marketplace_integrity), and hashed only when present, so older rows verify unchanged."""

    __tablename__ = "signal_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signal_id: Mapped[int] = mapped_column(Integer, ForeignKey("signals.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer, default=0)  # tp level; 0 for sl_hit / closed
    price: Mapped[Decimal] = mapped_column(ExactDecimal)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("providers.id"), index=True)  # its signal's

    __table_args__ = (UniqueConstraint("signal_id", "type", "level"),)


class Outbox(Base):
    """The durable delivery queue: one row per (item, recipient chat), unique, so a crash or a second
    worker never sends twice. `kind` is "signal", "event" or "broadcast"; `item_id` the row it sends.
    An event row replies to its `parent_id` row's `message_id` (the recipient's copy of the signal)."""

    __tablename__ = "signal_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int] = mapped_column(Integer)
    chat: Mapped[str] = mapped_column(String(64))  # a chat id or @channel
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)  # None for channels
    parent_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("signal_outbox.id"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # queued → sending → sent | blocked | failed | skipped | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim: Mapped[str | None] = mapped_column(String(32))
    message_id: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("kind", "item_id", "chat"),
        Index("ix_signal_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_signal_outbox_kind_item_id_status", "kind", "item_id", "status"),
    )


class SignalFilter(Base):
    """A user's filter: only these ecosystems / symbols (none of a kind = all of it)."""

    __tablename__ = "signal_filters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "ecosystem" / "symbol"
    value: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("user_id", "kind", "value"),)


class Broadcast(Base):
    """An admin's message to an audience; its recipients are Outbox rows of kind "broadcast"."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    admin_id: Mapped[int] = mapped_column(BigInteger)
    from_chat_id: Mapped[int] = mapped_column(BigInteger)  # the message is copied from here
    message_id: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(48))  # all / paying / lapsed / plan:<code>
    status: Mapped[str] = mapped_column(String(16), default="sending")  # sending / done / cancelled
    total: Mapped[int] = mapped_column(Integer, default=0)
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
