"""The developer API's wire models (pydantic): what `/api/v1` answers and what outbound webhooks post.

These classes validate and serialise, and the OpenAPI document is generated from them, so the document
cannot drift from the answers. Prices and amounts are decimal strings (exact), times are ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from db.models_signals import Signal, SignalEvent

#: A decimal amount as a JSON string ("0.01"), never a float.
DecimalText = Annotated[Decimal, PlainSerializer(lambda value: format(value.normalize(), "f"), return_type=str,
                                                 when_used="json"),
                        Field(json_schema_extra={"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"})]


class Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignalEventOut(Wire):
    """Something that happened to a signal after it was sent."""

    type: Literal["tp_hit", "sl_hit", "closed"]
    level: int = Field(description="the take-profit level for tp_hit (1 = first); 0 otherwise")
    price: DecimalText
    at: datetime
    hash: str = Field(description="this event's link in the track record's hash chain")


class SignalOut(Wire):
    """A trading signal as it was received, with what happened to it since."""

    id: int = Field(description="our id: use it in /api/v1/signals/{id}")
    external_id: str = Field(description="the sender's id")
    ecosystem: str
    symbol: str
    side: Literal["long", "short"]
    entry: DecimalText
    take_profits: list[DecimalText]
    stop_loss: DecimalText
    timeframe: str | None
    note: str | None
    received_at: datetime
    status: Literal["open", "closed"]
    hash: str = Field(description="this signal's link in the track record's hash chain")
    events: list[SignalEventOut]


def event_out(event: SignalEvent) -> SignalEventOut:
    return SignalEventOut(type=event.type, level=event.level, price=event.price, at=event.received_at,
                          hash=event.hash)


def signal_out(signal: Signal, events: list[SignalEvent]) -> SignalOut:
    """`events`: this signal's events (any order; they are listed oldest first)."""
    ordered = sorted(events, key=lambda e: e.id)
    closed = any(e.type in ("sl_hit", "closed") for e in ordered)
    return SignalOut(
        id=signal.id, external_id=signal.external_id, ecosystem=signal.ecosystem, symbol=signal.symbol,
        side=signal.side, entry=signal.entry, take_profits=[Decimal(p) for p in signal.take_profits],
        stop_loss=signal.stop_loss, timeframe=signal.timeframe, note=signal.note, received_at=signal.received_at,
        status="closed" if closed else "open", hash=signal.hash, events=[event_out(e) for e in ordered])
