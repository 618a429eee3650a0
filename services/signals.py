"""Signals: validation (the field named on error), storage on the hash chain, who gets each signal,
events, filters and history (the Cornix-parsable rendering is presentation/signals.py).

Who gets a signal (decided once, in the transaction that stores it, as one outbox row per recipient):
every user who has not blocked the bot, on their current plan (Free when no paid time covers now),
whose plan's daily cap (`signals_per_day`, days in `TIMEZONE`) is not reached and whose filters match;
plus the channel mapped to the signal's ecosystem (`TELEGRAM_CHANNEL_MAP`). Free users get the full
signal `FREE_DELAY` later (paid plans get it at once); /signals hides it from them for as long.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from db.base import utcnow
from db.engine import Database
from db.models import User
from db.models_marketplace import ProviderSubscription
from db.models_signals import Outbox, Signal, SignalEvent, SignalFilter
from services import api_webhooks, marketplace_rollups, outbox, track_record
from services.group_commit import GroupCommit
from services.money import plain
from services.plans import FREE, Plan
from services.subscriptions import best_plans
from services.text import strip_invisible_or_none

FREE_DELAY = timedelta(minutes=30)
CLAIM_SKEW = timedelta(seconds=60)  # an event's claimed time (`at`) may be this far ahead of our clock
ACTIVE = ("queued", "sending", "sent")  # outbox states that count as "delivered or on its way"
MAX_TARGETS = 10
PRICE_RE = re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})?")
SYMBOL_RE = re.compile(r"[A-Z0-9]{1,20}(/[A-Z0-9]{1,20})?")
FILTER_KINDS = ("ecosystem", "symbol")
INGEST_BATCH = 50  # most signals stored in one transaction (group commit)


class InvalidInput(ValueError):
    """A body or command that fails validation; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def parse_price(value: Any) -> Decimal:
    """An exact positive decimal from a string ("142.5"); numbers are refused (floats are not exact)."""
    if not isinstance(value, str):
        raise ValueError("must be a decimal string such as \"142.5\"")
    text = value.strip()
    if not text.isascii():  # Decimal() reads "١٢٣" as 123: a price is written with the digits 0-9
        raise ValueError("must be written with the digits 0-9, such as \"142.5\"")
    if not PRICE_RE.fullmatch(text):
        raise ValueError("must be a positive decimal string such as \"142.5\"")
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if price <= 0:
        raise ValueError("must be greater than 0")
    return price


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str
    ecosystem: str
    symbol: str
    side: Literal["long", "short"]
    entry: Decimal
    take_profits: list[Decimal]
    stop_loss: Decimal
    timeframe: str | None = None
    note: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not 1 <= len(value) <= 128:
            raise ValueError("must be 1 to 128 characters")
        if not value.isprintable():
            raise ValueError("must be printable text")
        return value

    @field_validator("ecosystem")
    @classmethod
    def _ecosystem(cls, value: str) -> str:
        value = value.lower()
        if not re.fullmatch(r"[a-z0-9_-]{1,32}", value):
            raise ValueError("must be a short name such as \"crypto\"")
        return value

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        value = value.upper().replace("-", "/")
        if not SYMBOL_RE.fullmatch(value):
            raise ValueError("must be a pair such as \"SOL/USDT\"")
        return value

    @field_validator("side", mode="before")
    @classmethod
    def _side(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("entry", "stop_loss", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Decimal:
        return parse_price(value)

    @field_validator("take_profits", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> list[Decimal]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_TARGETS:
            raise ValueError(f"must be a list of 1 to {MAX_TARGETS} decimal strings")
        prices = []
        for i, item in enumerate(value):
            try:
                prices.append(parse_price(item))
            except ValueError as exc:
                raise ValueError(f"item {i + 1}: {exc}") from None
        return prices

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not re.fullmatch(r"\d{1,3}[smhdwM]", value):
            raise ValueError("must look like 15m, 4h or 1d")
        return value

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 500:
            raise ValueError("must be at most 500 characters")
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return strip_invisible_or_none(value)  # shown in every copy: no bidi or zero-width tricks

    @model_validator(mode="after")
    def _levels(self) -> SignalIn:
        long = self.side == "long"
        if (self.stop_loss >= self.entry) if long else (self.stop_loss <= self.entry):
            raise InvalidInput("stop_loss", f"must be {'below' if long else 'above'} the entry for a {self.side}")
        wrong = [tp for tp in self.take_profits if (tp <= self.entry if long else tp >= self.entry)]
        if wrong:
            raise InvalidInput("take_profits",
                               f"every target must be {'above' if long else 'below'} the entry for a {self.side}")
        self.take_profits = sorted(self.take_profits, reverse=not long)
        return self


def parse_claimed_at(value: Any) -> datetime | None:
    """An event's optional `at`: ISO 8601 with a UTC offset ("2026-12-04T10:00:00Z"), as UTC. How it compares with
    our clock and the signal is checked when the event is stored (`SignalService.add_event`)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.isascii() or not 10 <= len(value.strip()) <= 40:
        raise ValueError("must be an ISO 8601 time with a UTC offset, such as \"2026-12-04T10:00:00Z\"")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be an ISO 8601 time with a UTC offset, such as \"2026-12-04T10:00:00Z\"") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("must carry a UTC offset (\"Z\" or \"+02:00\"), such as \"2026-12-04T10:00:00Z\"")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: Literal["tp_hit", "sl_hit", "closed"]
    level: int | None = None
    price: Decimal
    at: datetime | None = Field(
        None, description="optional: when the price was reached (ISO 8601 with a UTC offset). At most "
                          f"{int(CLAIM_SKEW.total_seconds())} s ahead of our clock and not before the signal was "
                          "received. Figures use our arrival time only; events arriving more than 5 minutes after "
                          "the time they claim are flagged for review on a marketplace provider's record.")

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Decimal:
        return parse_price(value)

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> datetime | None:
        return parse_claimed_at(value)

    @model_validator(mode="after")
    def _level(self) -> EventIn:
        if self.type == "tp_hit" and (self.level is None or self.level < 1):
            raise InvalidInput("level", "a tp_hit needs the target level, 1 or more")
        if self.type != "tp_hit":
            self.level = 0
        return self


def validate(model: type[BaseModel], payload: Any) -> Any:
    """The model, or InvalidInput naming the first bad field."""
    try:
        return model.model_validate(payload)
    except InvalidInput:
        raise
    except ValidationError as exc:
        error = exc.errors()[0]
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, InvalidInput):
            raise original from None
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        raise InvalidInput(field, message) from None


def parse_command(text: str, *, external_id: str) -> SignalIn:
    """Admin one-line format: `<ecosystem> <PAIR> <long|short> <entry> <tp1,tp2,...> <stop> [timeframe] [note...]`."""
    parts = text.split()
    names = ("ecosystem", "symbol", "side", "entry", "take_profits", "stop_loss")
    if len(parts) < len(names):
        raise InvalidInput(names[len(parts)], "is missing")
    payload: dict[str, Any] = dict(zip(names, parts[:6], strict=True))
    payload["take_profits"] = [p for p in payload["take_profits"].split(",") if p]
    rest = parts[6:]
    if rest and re.fullmatch(r"\d{1,3}[smhdwM]", rest[0]):
        payload["timeframe"] = rest.pop(0)
    if rest:
        payload["note"] = " ".join(rest)
    payload["id"] = external_id
    return validate(SignalIn, payload)


# ------------------------------------------------------------------------------------------ decimals

def _p(value: Decimal | str) -> str:
    return plain(Decimal(value))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------ the service

@dataclass(frozen=True, slots=True)
class Ingested:
    created: bool
    signal_id: int
    recipients: int = 0


class EventOutcome(StrEnum):
    """What became of a signal's event (the values are the strings compared and logged before)."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    NOT_FOUND = "not_found"  # no signal with that sender's id
    CLOSED = "closed"  # the signal was already closed


@dataclass(frozen=True, slots=True)
class EventResult:
    status: EventOutcome
    event_id: int | None = None
    recipients: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    plan: Plan
    ends_at: datetime | None
    today: int


@dataclass(slots=True)
class _Audience:
    """Who may get a signal, read once per ingest batch; `today` counts each user's signals since midnight
    and grows as the batch queues more, so a daily cap holds across the batch."""

    users: list[int]
    paid: dict[int, tuple[Plan, datetime]]
    filters: dict[int, dict[str, set[str]]]
    today: Counter[int]

    def recipients(self, signal: Signal, now: datetime, *, free_delay: timedelta,
                   channel: int | str | None) -> list[dict]:
        rows = []
        for user_id in self.users:
            plan = self.paid[user_id][0] if user_id in self.paid else FREE
            if plan.signals_per_day is not None and self.today[user_id] >= plan.signals_per_day:
                continue
            if not matches(self.filters.get(user_id), signal.ecosystem, signal.symbol):
                continue
            self.today[user_id] += 1
            due = now + free_delay if not plan.is_paid else now
            rows.append(outbox.row("signal", signal.id, user_id, user_id, due=due, now=now))
        if channel is not None:
            rows.append(outbox.row("signal", signal.id, channel, None, due=now, now=now))
        return rows


class SignalService:
    def __init__(self, database: Database, *, tz: ZoneInfo, channel_map: dict[str, int | str] | None = None,
                 clock: Callable[[], datetime] = utcnow, free_delay: timedelta = FREE_DELAY) -> None:
        self.db, self.tz, self.channel_map = database, tz, dict(channel_map or {})
        self.clock, self.free_delay = clock, free_delay
        self._batches: GroupCommit[tuple[SignalIn, str], Ingested] = GroupCommit(
            self._ingest, limit=INGEST_BATCH, name="signals.ingest")

    def day_start(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    def _counted_today(self, now: datetime) -> tuple:
        """The outbox rows that count against a daily cap: the house's signals sent or on their way since
        midnight (a marketplace provider's signals, paid for separately, do not count)."""
        since = self.day_start(now)
        providers_today = select(Signal.id).where(Signal.received_at >= since, Signal.provider_id.is_not(None))
        return (Outbox.kind == "signal", Outbox.created_at >= since, Outbox.status.in_(ACTIVE),
                Outbox.item_id.not_in(providers_today))

    # -- ingest ------------------------------------------------------------------------------------

    async def ingest(self, data: SignalIn, *, source: str = "api", provider_id: int | None = None) -> Ingested:
        """Store the signal on the chain and queue its deliveries, in one transaction (group-committed with
        the signals that arrive meanwhile). A repeated sender id changes nothing. `provider_id`: a marketplace
        provider's signal, on that provider's own chain, for that provider's subscribers only."""
        for _attempt in range(5):
            try:
                return await self._batches.submit((data, source, provider_id))
            except IntegrityError:  # a concurrent duplicate (the next try finds it), or a concurrent append
                continue
        raise RuntimeError("could not append the signal to the chain")

    async def _ingest(self, items: list[tuple[SignalIn, str, int | None]]) -> list[Ingested]:
        now = self.clock()
        async with self.db.transaction() as session:
            ids = {stored_id(provider, data.id) for data, _, provider in items}
            known: dict[tuple[int | None, str], int] = {
                (provider, external): signal_id for external, provider, signal_id in (await session.execute(
                    select(Signal.external_id, Signal.provider_id, Signal.id)
                    .where(Signal.external_id.in_(ids)))).all()}
            heads: dict[int | None, str] = {}
            audience: _Audience | None = None
            hooks: dict[int, int] | None = None
            webhook_rows: list[dict] = []
            results = []
            for data, source, provider in items:
                external = stored_id(provider, data.id)
                if (provider, external) in known:  # stored before, or earlier in this batch
                    results.append(Ingested(False, known[(provider, external)]))
                    continue
                if provider not in heads:
                    heads[provider] = await session.scalar(
                        select(Signal.hash).where(_chain(Signal, provider)).order_by(Signal.id.desc()).limit(1)) \
                        or track_record.genesis(provider)
                row = Signal(external_id=external, source=source, ecosystem=data.ecosystem, symbol=data.symbol,
                             side=data.side, entry=data.entry, take_profits=[_p(tp) for tp in data.take_profits],
                             stop_loss=data.stop_loss, timeframe=data.timeframe, note=data.note, received_at=now,
                             prev_hash=heads[provider], provider_id=provider)
                row.hash = heads[provider] = track_record.hash_of_signal(row)
                session.add(row)
                await session.flush()  # one at a time: ids follow the chain's order
                known[(provider, external)] = row.id
                if provider is not None:  # a provider's subscribers only (no channel, no house caps)
                    await marketplace_rollups.record_signal(session, provider, now, row.ecosystem)
                    recipients = await self._subscribers(session, row, now)
                    await outbox.enqueue(session, recipients)
                    hooks = hooks if hooks is not None else await api_webhooks.enabled_hooks(session)
                    if any(r["user_id"] in hooks for r in recipients):  # their webhooks too (paid plans' feature)
                        paid = audience.paid if audience is not None else await best_plans(session, now)
                        webhook_rows += api_webhooks.signal_rows(hooks, recipients, paid, row.id, now)
                    results.append(Ingested(True, row.id, len(recipients)))
                    continue
                audience = audience or await self._audience(session, now)
                recipients = audience.recipients(row, now, free_delay=self.free_delay,
                                                 channel=self.channel_map.get(row.ecosystem))
                await outbox.enqueue(session, recipients)
                hooks = hooks if hooks is not None else await api_webhooks.enabled_hooks(session)
                webhook_rows += api_webhooks.signal_rows(hooks, recipients, audience.paid, row.id, now)
                results.append(Ingested(True, row.id, len(recipients)))
            await api_webhooks.enqueue(session, webhook_rows)
            return results

    @staticmethod
    async def _subscribers(session, signal: Signal, now: datetime) -> list[dict]:
        """Outbox rows for a provider's signal: every subscriber whose paid time covers now, who has not
        blocked the bot and whose filters match; at once (they paid for this provider)."""
        users = list(await session.scalars(
            select(ProviderSubscription.user_id).distinct()
            .join(User, User.id == ProviderSubscription.user_id)
            .where(ProviderSubscription.provider_id == signal.provider_id, ProviderSubscription.starts_at <= now,
                   ProviderSubscription.ends_at > now, User.is_blocked.is_(False))))
        if not users:
            return []
        filters: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for user_id, kind, value in (await session.execute(
                select(SignalFilter.user_id, SignalFilter.kind, SignalFilter.value)
                .where(SignalFilter.user_id.in_(users)))).all():
            filters[user_id][kind].add(value)
        return [outbox.row("signal", signal.id, user_id, user_id, due=now, now=now) for user_id in sorted(users)
                if matches(filters.get(user_id), signal.ecosystem, signal.symbol)]

    async def _audience(self, session, now: datetime) -> _Audience:
        """Everyone who may get a signal now, read once per batch."""
        filters: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for user_id, kind, value in (await session.execute(
                select(SignalFilter.user_id, SignalFilter.kind, SignalFilter.value))).all():
            filters[user_id][kind].add(value)
        today = Counter(dict((await session.execute(
            select(Outbox.user_id, func.count()).where(*self._counted_today(now), Outbox.user_id.is_not(None))
            .group_by(Outbox.user_id))).all()))
        return _Audience(users=list(await session.scalars(select(User.id).where(User.is_blocked.is_(False)))),
                         paid=await best_plans(session, now), filters=filters, today=today)

    # -- events ------------------------------------------------------------------------------------

    async def find(self, ref: str, provider_id: int | None = None) -> Signal | None:
        """By the sender's id; a number that is no sender's id is taken as our id. Only on the given chain
        (the house's, or one provider's): another chain's signal is not found."""
        async with self.db.session() as session:
            row = await session.scalar(select(Signal).where(Signal.external_id == stored_id(provider_id, ref),
                                                            _chain(Signal, provider_id)))
            if row is None and ref.isascii() and ref.isdigit() and len(ref) <= 18:  # "²".isdigit() too
                row = await session.get(Signal, int(ref))
            return row if row is not None and row.provider_id == provider_id else None

    async def add_event(self, ref: str, data: EventIn, *, provider_id: int | None = None) -> EventResult:
        for _attempt in range(5):
            try:
                return await self._add_event(ref, data, provider_id)
            except IntegrityError:
                continue
        raise RuntimeError("could not append the event to the chain")

    async def _add_event(self, ref: str, data: EventIn, provider_id: int | None = None) -> EventResult:
        now = self.clock()
        signal = await self.find(ref, provider_id)
        if signal is None:
            return EventResult(EventOutcome.NOT_FOUND)
        if data.type == "tp_hit" and data.level > len(signal.take_profits):
            raise InvalidInput("level", f"this signal has {len(signal.take_profits)} targets")
        if data.at is not None and data.at > now + CLAIM_SKEW:
            raise InvalidInput("at", f"is in the future: it is when the price was reached (at most "
                                     f"{int(CLAIM_SKEW.total_seconds())} s ahead of our clock, now {_iso(now)})")
        if data.at is not None and data.at < signal.received_at - CLAIM_SKEW:
            raise InvalidInput("at", f"is before the signal was received ({_iso(signal.received_at)})")
        async with self.db.transaction() as session:
            events = list(await session.scalars(select(SignalEvent).where(SignalEvent.signal_id == signal.id)))
            if any(e.type == data.type and e.level == data.level for e in events):
                return EventResult(EventOutcome.DUPLICATE)
            if track_record.outcome(signal, events) is not None:
                return EventResult(EventOutcome.CLOSED)
            head = await session.scalar(select(SignalEvent.hash).where(_chain(SignalEvent, provider_id))
                                        .order_by(SignalEvent.id.desc()).limit(1)) \
                or track_record.genesis(provider_id, events=True)
            event = SignalEvent(signal_id=signal.id, type=data.type, level=data.level, price=data.price,
                                received_at=now, claimed_at=data.at, prev_hash=head, provider_id=provider_id)
            event.hash = track_record.event_hash(head, signal_hash_=signal.hash, type_=event.type, level=event.level,
                                                 price=event.price, received_at=now, claimed_at=data.at)
            session.add(event)
            await session.flush()
            if provider_id is not None and (trade := track_record.outcome(signal, [*events, event])) is not None:
                await marketplace_rollups.record_close(session, signal, trade)  # the /market record, with the event
            parents = (await session.execute(select(Outbox.id, Outbox.chat, Outbox.user_id, Outbox.next_attempt_at)
                                             .where(Outbox.kind == "signal", Outbox.item_id == signal.id,
                                                    Outbox.status.in_(ACTIVE)))).all()
            await outbox.enqueue(session, [
                outbox.row("event", event.id, chat, user_id, parent_id=parent_id, due=max(now, due), now=now)
                for parent_id, chat, user_id, due in parents])
            users = [user_id for _, _, user_id, _ in parents if user_id is not None]
            if provider_id is not None and users:  # a provider's event: to those still subscribed
                users = list(await session.scalars(select(ProviderSubscription.user_id).distinct().where(
                    ProviderSubscription.provider_id == provider_id, ProviderSubscription.user_id.in_(users),
                    ProviderSubscription.starts_at <= now, ProviderSubscription.ends_at > now)))
            if users:
                await api_webhooks.enqueue(session, api_webhooks.event_rows(
                    await api_webhooks.enabled_hooks(session), users, event.id, now))
            return EventResult(EventOutcome.STORED, event.id, len(parents))

    # -- users -------------------------------------------------------------------------------------

    async def usage(self, user_id: int, plan: Plan, ends_at: datetime | None) -> Usage:
        now = self.clock()
        async with self.db.session() as session:
            today = await session.scalar(select(func.count()).select_from(Outbox).where(
                *self._counted_today(now), Outbox.user_id == user_id))
        return Usage(plan, ends_at, today or 0)

    async def latest(self, plan: Plan, filters: dict[str, set[str]], limit: int = 10) -> list[Signal]:
        """The newest signals within the plan's history window that match the user's filters (Free:
        only those older than the Free delay)."""
        now = self.clock()
        newest = now if plan.is_paid else now - self.free_delay
        query = select(Signal).where(Signal.received_at >= now - timedelta(days=plan.history_days),
                                     Signal.received_at <= newest, _chain(Signal, None)).order_by(Signal.id.desc())
        if filters["ecosystem"]:
            query = query.where(Signal.ecosystem.in_(filters["ecosystem"]))
        if filters["symbol"]:
            query = query.where(Signal.symbol.in_(filters["symbol"]))
        async with self.db.session() as session:
            return list(await session.scalars(query.limit(limit)))

    async def filters(self, user_id: int) -> dict[str, set[str]]:
        async with self.db.session() as session:
            rows = (await session.execute(select(SignalFilter.kind, SignalFilter.value)
                                          .where(SignalFilter.user_id == user_id))).all()
        result: dict[str, set[str]] = {kind: set() for kind in FILTER_KINDS}
        for kind, value in rows:
            result.setdefault(kind, set()).add(value)
        return result

    async def toggle_filter(self, user_id: int, kind: str, value: str) -> bool:
        """Add the filter, or remove it if set; returns whether it is now set."""
        if kind not in FILTER_KINDS:
            raise ValueError(f"unknown filter kind {kind!r}")
        async with self.db.transaction() as session:
            removed = await session.execute(delete(SignalFilter).where(
                SignalFilter.user_id == user_id, SignalFilter.kind == kind, SignalFilter.value == value))
            if removed.rowcount:
                return False
            session.add(SignalFilter(user_id=user_id, kind=kind, value=value))
            return True

    async def clear_filters(self, user_id: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(SignalFilter).where(SignalFilter.user_id == user_id))

    async def choices(self, limit: int = 12) -> dict[str, list[str]]:
        """Ecosystems and symbols a user may filter on: the mapped channels' ecosystems and what was
        received in the last 90 days."""
        since = self.clock() - timedelta(days=90)
        async with self.db.session() as session:
            ecosystems = set(await session.scalars(select(Signal.ecosystem).where(Signal.received_at >= since)
                                                   .distinct()))
            symbols = list(await session.scalars(
                select(Signal.symbol).where(Signal.received_at >= since).group_by(Signal.symbol)
                .order_by(func.max(Signal.id).desc()).limit(limit)))
        return {"ecosystem": sorted(ecosystems | set(self.channel_map))[:limit], "symbol": sorted(symbols)}

    # -- track record ------------------------------------------------------------------------------

    async def history(self, provider_id: int | None = None) -> tuple[list[Signal], list[SignalEvent]]:
        """One chain's signals and events (the house's by default), in chain order."""
        async with self.db.session() as session:
            signals = list(await session.scalars(select(Signal).where(_chain(Signal, provider_id))
                                                 .order_by(Signal.id)))
            events = list(await session.scalars(select(SignalEvent).where(_chain(SignalEvent, provider_id))
                                                .order_by(SignalEvent.id)))
        return signals, events

    async def trades(self, provider_id: int | None = None) -> list[track_record.Trade]:
        return closed_trades(*await self.history(provider_id))

    async def track_record(self, provider_id: int | None = None
                           ) -> tuple[list[track_record.Trade], track_record.ChainCheck]:
        """The closed trades and the recomputed chain, from one read of the history."""
        signals, events = await self.history(provider_id)
        return closed_trades(signals, events), track_record.verify_chain(
            signals, events, genesis=track_record.genesis(provider_id),
            events_genesis=track_record.genesis(provider_id, events=True))


def stored_id(provider_id: int | None, sender_id: str) -> str:
    """The signal's `external_id` as stored: a provider's ids are its own (two providers may both send "1")."""
    return sender_id if provider_id is None else f"p{provider_id}:{sender_id}"


def _chain(model, provider_id: int | None):
    """Rows of one chain: the house's (no provider) or one provider's."""
    return model.provider_id.is_(None) if provider_id is None else model.provider_id == provider_id


def closed_trades(signals: list[Signal], events: list[SignalEvent]) -> list[track_record.Trade]:
    by_signal: dict[int, list[SignalEvent]] = defaultdict(list)
    for event in events:
        by_signal[event.signal_id].append(event)
    outcomes = (track_record.outcome(signal, by_signal.get(signal.id, ())) for signal in signals)
    return [trade for trade in outcomes if trade is not None]


def matches(filters: dict[str, set[str]] | None, ecosystem: str, symbol: str) -> bool:
    if not filters:
        return True
    ecosystems, symbols = filters.get("ecosystem"), filters.get("symbol")
    return (not ecosystems or ecosystem in ecosystems) and (not symbols or symbol in symbols)
