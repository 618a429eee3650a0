"""The developer API's wire models (pydantic): what `/api/v1` answers and what outbound webhooks post.

These classes validate and serialise, and the OpenAPI document is generated from them, so the document
cannot drift from the answers. Prices and amounts are decimal strings (exact), times are ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PrivateAttr

from db.models_signals import Signal, SignalEvent

#: A decimal amount as a JSON string ("0.01"), never a float.
DecimalText = Annotated[Decimal, PlainSerializer(lambda value: format(value.normalize(), "f"), return_type=str,
                                                 when_used="json"),
                        Field(json_schema_extra={"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"})]



def usd_text(value: Decimal) -> str:
    """USD with at least two decimals ("2.50", "0.005"), never an exponent."""
    value = value.normalize()
    return format(value.quantize(Decimal("0.01")) if value.as_tuple().exponent > -2 else value, "f")


#: A USD amount as a JSON string with at least two decimals ("2.50").
UsdText = Annotated[Decimal, PlainSerializer(usd_text, return_type=str, when_used="json"),
                    Field(json_schema_extra={"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2,6}$"})]


class Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    _json: bytes | None = PrivateAttr(None)

    def json_bytes(self) -> bytes:
        """The JSON answer, serialised once per instance (an answer served from memory to many callers)."""
        if self._json is None:
            self._json = self.model_dump_json().encode()
        return self._json


class SignalEventOut(Wire):
    """Something that happened to a signal after it was sent."""

    type: Literal["tp_hit", "sl_hit", "closed"]
    level: int = Field(description="the take-profit level for tp_hit (1 = first); 0 otherwise")
    price: DecimalText
    at: datetime = Field(description="when the event arrived (what every figure uses)")
    claimed_at: datetime | None = Field(None, description="when the sender says the price was reached (the event's "
                                                          "optional `at`); null when it did not say")
    hash: str = Field(description="this event's link in the track record's hash chain")


class ProviderRef(Wire):
    """The marketplace provider a signal is from (a provider you are subscribed to)."""

    id: int = Field(description="the provider's id (its card in /market; `?provider=` of /api/v1/performance)")
    name: str


class SignalOut(Wire):
    """A trading signal as it was received, with what happened to it since."""

    id: int = Field(description="our id: use it in /api/v1/signals/{id}")
    external_id: str = Field(description="the sender's id (a provider's own id for its signals)")
    provider: ProviderRef | None = Field(None, description="the marketplace provider the signal is from; null for "
                                                           "the house's (the operator's) signals")
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
                          claimed_at=event.claimed_at, hash=event.hash)


def provider_ref(signal: Signal) -> ProviderRef | None:
    """The signal's provider (None for the house's); its `provider` relationship is loaded with the signal."""
    if signal.provider_id is None:
        return None
    provider = signal.provider
    return ProviderRef(id=signal.provider_id, name=provider.name if provider is not None else "")


def sender_id(signal: Signal) -> str:
    """The id as its sender sent it (a provider's are stored as "p<provider>:<id>", services.signals.stored_id)."""
    prefix = f"p{signal.provider_id}:"
    if signal.provider_id is not None and signal.external_id.startswith(prefix):
        return signal.external_id[len(prefix):]
    return signal.external_id


def signal_out(signal: Signal, events: list[SignalEvent]) -> SignalOut:
    """`events`: this signal's events (any order; they are listed oldest first)."""
    ordered = sorted(events, key=lambda e: e.id)
    closed = any(e.type in ("sl_hit", "closed") for e in ordered)
    return SignalOut(
        id=signal.id, external_id=sender_id(signal), provider=provider_ref(signal), ecosystem=signal.ecosystem,
        symbol=signal.symbol,
        side=signal.side, entry=signal.entry, take_profits=[Decimal(p) for p in signal.take_profits],
        stop_loss=signal.stop_loss, timeframe=signal.timeframe, note=signal.note, received_at=signal.received_at,
        status="closed" if closed else "open", hash=signal.hash, events=[event_out(e) for e in ordered])


class Problem(Wire):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    type: str = Field(description="a URI reference naming the kind of problem (see the docs page)")
    title: str
    status: int
    detail: str


class Limits(Wire):
    per_minute: int | None = Field(description="calls per minute; null: unlimited")
    per_day: int | None = Field(description="calls per UTC day before calls are charged to credit; null: unlimited")


class TodayUsage(Wire):
    today: int = Field(description="calls counted today (UTC), charged ones included")


class WhoAmI(Wire):
    user_id: int
    plan: str
    plan_expires_at: datetime | None
    features: list[str] = Field(description="what the plan includes (the entitlement check for licensed add-ons)")
    limits: Limits
    usage: TodayUsage
    credit_usd: UsdText = Field(description="prepaid API credit left")


class SignalList(Wire):
    signals: list[SignalOut] = Field(description="newest first: the house's signals and those of the marketplace "
                                                 "providers you are subscribed to (while subscribed)")
    delayed_by_minutes: int = Field(description="the plan's delay: the house's signals newer than this are not listed "
                                                "yet (a subscribed provider's are listed at once)")
    history_days: int = Field(description="how far back the plan's history window reaches")


class PeriodFigures(Wire):
    trades: int
    wins: int
    win_rate: DecimalText | None = Field(description="0..1")
    avg_r: DecimalText | None = Field(description="average R multiple")
    cumulative_return: DecimalText = Field(description="sum of returns (0.1 = +10 %)")
    max_drawdown: DecimalText = Field(description="0..1")
    sharpe: DecimalText | None


class ChainHead(Wire):
    signals: int
    events: int
    head: str = Field(description="the newest link of the signals' hash chain")
    events_head: str = Field(description="the newest link of the events' hash chain")
    valid: bool = Field(description="both chains recompute from their first link to their head")


class Performance(Wire):
    provider: ProviderRef | None = Field(None, description="the marketplace provider whose record this is "
                                                           "(`?provider=`); null for the house's")
    ecosystem: str | None
    period: Literal["7d", "30d", "all"]
    figures: PeriodFigures
    chain: ChainHead


class WhaleRow(Wire):
    rank: int
    chain: str
    address: str
    label: str | None
    verified: bool
    trades: int
    pnl_usd: UsdText
    volume_usd: UsdText
    win_rate: float | None = Field(description="0..1")
    roi: float | None
    score: float = Field(description="0..100, see the docs")


class WhaleBoard(Wire):
    period: Literal["7d", "30d", "all"]
    metric: Literal["score", "pnl", "roi", "win_rate", "volume"]
    total: int = Field(description="wallets ranked in the period (what the plan may page through)")
    offset: int
    wallets: list[WhaleRow]


class WalletFigures(Wire):
    trades: int
    pnl_usd: UsdText
    volume_usd: UsdText
    win_rate: float | None
    roi: float | None


class WhaleTradeOut(Wire):
    symbol: str
    side: Literal["buy", "sell"]
    usd_value: UsdText
    pnl_usd: UsdText | None
    at: datetime


class WalletCard(Wire):
    chain: str
    address: str
    label: str | None
    verified: bool
    figures: dict[str, WalletFigures] = Field(description="by period: 7d, 30d, all")
    recent_trades: list[WhaleTradeOut]


class UsageDay(Wire):
    day: str = Field(description="UTC day, YYYY-MM-DD")
    calls: int
    charged_calls: int
    credit_spent_usd: UsdText = Field(description="API credit spent on calls over the day's quota")
    datasets_usd: UsdText = Field(description="API credit spent on datasets")


class Usage(Wire):
    days: list[UsageDay] = Field(description="newest first; days without calls are left out")
    credit_usd: UsdText
