"""What the developer API answers, read with the plan's rules exactly as the bot applies them: the signal
history window and the Free delay, the Free whale board's top rows. Returns the wire models of
services.api_schema; refusals are `NotEntitled` (the feature the plan lacks) or None (no such thing).

Marketplace providers' signals are their subscribers': a caller sees the signals of the providers they are
subscribed to now (paid time covering this moment), within the plan's history window like the house's, and at
once (a provider's subscribers get its signals at once in the bot, on any plan); anyone else gets None (404)
for one of them. A provider's track record (`performance(provider=)`) is public like its /market card, for
approved providers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, or_, select

from db.base import utcnow
from db.engine import Database
from db.models_marketplace import Provider, ProviderSubscription
from db.models_signals import Signal, SignalEvent
from db.models_whales import WhaleWallet
from services import track_record
from services.api_schema import (
    ChainHead,
    Performance,
    PeriodFigures,
    ProviderRef,
    SignalList,
    SignalOut,
    WalletCard,
    WalletFigures,
    WhaleBoard,
    WhaleRow,
    WhaleTradeOut,
    signal_out,
)
from services.marketplace import State
from services.memo import Memo
from services.plans import Plan
from services.signals import SignalService, closed_trades
from services.whale_rankings import FREE_TOP, Board
from services.whales import WhaleService

#: How long a signal list is served from memory (services.memo): many clients polling the same list cost one
#: query a second, and a list is at most two of these old (a signal stored meanwhile shows up within 2 s).
LIST_TTL_SECONDS = 1.0
#: The track record reads and re-verifies the whole history: once per period and ecosystem every 5 s at most.
PERFORMANCE_TTL_SECONDS = 5.0
#: API metric names → the rankings' own (the API spells win rate with an underscore).
METRICS = {"score": "score", "pnl": "pnl", "roi": "roi", "win_rate": "winrate", "volume": "volume"}


def features(plan: Plan) -> list[str]:
    """What a plan includes, as `whoami` lists it (licensed add-ons check these names)."""
    names = ["signals", "performance", "whales.rankings", "whales.wallets", "datasets", "credit"]
    if plan.is_paid:
        names += ["signals.realtime", "whales.full_board", "webhooks"]
    if plan.whale_follows > 0:
        names.append("whales.follow")
    return sorted(names)


class NotEntitled(Exception):
    """The plan lacks `feature`; `detail` says what it allows instead."""

    def __init__(self, feature: str, detail: str) -> None:
        super().__init__(detail)
        self.feature, self.detail = feature, detail


def _q(value: Decimal | None) -> Decimal | None:
    """A ratio to six decimals (half-up): exact enough to read, short enough to print."""
    return None if value is None else value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _usd(cents: int) -> Decimal:
    return Decimal(cents) / 100


class ApiData:
    def __init__(self, database: Database, signals: SignalService, whales: WhaleService, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.signals, self.whales, self.clock = database, signals, whales, clock
        self._lists: Memo[SignalList] = Memo(LIST_TTL_SECONDS)
        self._performance: Memo[Performance] = Memo(PERFORMANCE_TTL_SECONDS)

    # signals -------------------------------------------------------------------------------------

    def _window(self, plan: Plan) -> tuple[datetime, datetime]:
        """The oldest and newest receive times the plan may see now."""
        now = self.clock()
        newest = now if plan.is_paid else now - self.signals.free_delay
        return now - timedelta(days=plan.history_days), newest

    async def subscribed(self, user_id: int) -> frozenset[int]:
        """The marketplace providers whose signals the user may read now: paid time covering this moment."""
        now = self.clock()
        async with self.db.session() as session:
            return frozenset(await session.scalars(
                select(ProviderSubscription.provider_id).distinct().where(
                    ProviderSubscription.user_id == user_id, ProviderSubscription.starts_at <= now,
                    ProviderSubscription.ends_at > now)))

    async def signal_list(self, plan: Plan, *, ecosystem: str | None = None, symbol: str | None = None,
                          since: datetime | None = None, limit: int = 20,
                          providers: frozenset[int] = frozenset()) -> SignalList:
        """The house's signals and those of `providers` (the caller's subscriptions), newest first."""
        key = (plan.is_paid, plan.history_days, ecosystem and ecosystem.lower(), symbol and symbol.upper(), since,
               limit, tuple(sorted(providers)))
        return await self._lists.get(key, lambda: self._signal_list(plan, ecosystem=ecosystem, symbol=symbol,
                                                                      since=since, limit=limit, providers=providers))

    async def _signal_list(self, plan: Plan, *, ecosystem: str | None, symbol: str | None, since: datetime | None,
                           limit: int, providers: frozenset[int]) -> SignalList:
        oldest, newest = self._window(plan)
        visible = and_(Signal.provider_id.is_(None), Signal.received_at <= newest)  # the house's, after any delay
        if providers:  # a subscribed provider's, at once
            visible = or_(visible, and_(Signal.provider_id.in_(sorted(providers)), Signal.received_at <= self.clock()))
        query = select(Signal).where(Signal.received_at >= max(oldest, since or oldest), visible)
        if ecosystem:
            query = query.where(Signal.ecosystem == ecosystem.lower())
        if symbol:
            query = query.where(Signal.symbol == symbol.upper())
        async with self.db.session() as session:
            rows = list(await session.scalars(query.order_by(Signal.id.desc()).limit(limit)))
            events: dict[int, list[SignalEvent]] = defaultdict(list)
            if rows:
                for event in await session.scalars(select(SignalEvent).where(
                        SignalEvent.signal_id.in_([row.id for row in rows]))):
                    events[event.signal_id].append(event)
        delay = 0 if plan.is_paid else int(self.signals.free_delay.total_seconds() // 60)
        return SignalList(signals=[signal_out(row, events[row.id]) for row in rows], delayed_by_minutes=delay,
                          history_days=plan.history_days)

    async def signal(self, plan: Plan, signal_id: int, providers: frozenset[int] = frozenset()) -> SignalOut | None:
        """One signal: the house's, or a provider's in `providers` (the caller's subscriptions); else None."""
        async with self.db.session() as session:
            row = await session.get(Signal, signal_id)
            if row is None or (row.provider_id is not None and row.provider_id not in providers):
                return None  # a provider's signals are its subscribers'
            events = list(await session.scalars(select(SignalEvent).where(SignalEvent.signal_id == signal_id)))
        oldest, newest = self._window(plan)
        if row.provider_id is None and row.received_at > newest:
            minutes = int(self.signals.free_delay.total_seconds() // 60)
            raise NotEntitled("signals.realtime", f"the {plan.name} plan sees signals {minutes} minutes after they "
                                                  "are sent; paid plans see them at once")
        if row.received_at < oldest:
            raise NotEntitled("signals.history", f"the {plan.name} plan's history reaches back "
                                                 f"{plan.history_days} days")
        return signal_out(row, events)

    async def performance(self, period: str, ecosystem: str | None, provider_id: int | None = None
                          ) -> Performance | None:
        """The house's track record, or an approved provider's (None for any other provider id)."""
        ecosystem = ecosystem.lower() if ecosystem else None
        provider = None
        if provider_id is not None:
            async with self.db.session() as session:
                provider = await session.get(Provider, provider_id)
            if provider is None or provider.status != State.APPROVED.value:
                return None
            provider = ProviderRef(id=provider.id, name=provider.name)
        return await self._performance.get((period, ecosystem, provider),
                                           lambda: self._track_record(period, ecosystem, provider))

    async def _track_record(self, period: str, ecosystem: str | None, provider: ProviderRef | None) -> Performance:
        provider_id = provider.id if provider is not None else None
        signals, events = await self.signals.history(provider_id)
        return await asyncio.to_thread(self._figures, signals, events, period, ecosystem, provider)  # CPU: off the loop

    def _figures(self, signals: list[Signal], events: list[SignalEvent], period: str,
                 ecosystem: str | None, provider: ProviderRef | None = None) -> Performance:
        provider_id = provider.id if provider is not None else None
        check = track_record.verify_chain(signals, events, genesis=track_record.genesis(provider_id),
                                          events_genesis=track_record.genesis(provider_id, events=True))
        figures = track_record.by_period(closed_trades(signals, events), self.clock(), ecosystem)[period]
        return Performance(
            provider=provider, ecosystem=ecosystem, period=period,
            figures=PeriodFigures(trades=figures.trades, wins=figures.wins, win_rate=_q(figures.win_rate),
                                  avg_r=_q(figures.avg_r), cumulative_return=_q(figures.cumulative_return),
                                  max_drawdown=_q(figures.max_drawdown), sharpe=_q(figures.sharpe)),
            chain=ChainHead(signals=len(signals), events=len(events), head=check.head,
                            events_head=events[-1].hash if events else track_record.genesis(provider_id, events=True),
                            valid=check.ok))

    # whales --------------------------------------------------------------------------------------

    async def board(self, plan: Plan, period: str, metric: str, *, offset: int, limit: int) -> WhaleBoard:
        """Free sees the board's top `FREE_TOP` rows only (as in the bot)."""
        if not plan.is_paid:
            limit = max(0, min(limit, FREE_TOP - offset))
        board: Board = await self.whales.board(period, METRICS[metric], offset=offset, limit=limit)
        total = board.total if plan.is_paid else min(board.total, FREE_TOP)
        return WhaleBoard(period=period, metric=metric, total=total, offset=offset, wallets=[
            WhaleRow(rank=row.rank, chain=row.chain, address=row.address, label=row.label, verified=row.verified,
                     trades=row.trades, pnl_usd=_usd(row.pnl_cents), volume_usd=_usd(row.volume_cents),
                     win_rate=row.win_rate, roi=row.roi, score=round(row.score, 2))
            for row in board.rows])

    async def wallet(self, plan: Plan, chain: str, address: str) -> WalletCard | None:
        async with self.db.session() as session:
            wallet_id = await session.scalar(select(WhaleWallet.id).where(
                WhaleWallet.chain == chain.lower(), WhaleWallet.address == address))
        if wallet_id is None:
            return None
        if not plan.is_paid and await self.whales.rank_of("7d", "score", wallet_id, within=FREE_TOP) is None:
            raise NotEntitled("whales.full_board", f"the {plan.name} plan sees the cards of the week's top "
                                                   f"{FREE_TOP} wallets; paid plans see every wallet")
        card = await self.whales.card(wallet_id)
        if card is None:
            return None
        return WalletCard(
            chain=card.wallet.chain, address=card.wallet.address, label=card.wallet.label,
            verified=card.wallet.verified,
            figures={period: WalletFigures(trades=f.trades, pnl_usd=_usd(f.pnl_cents), volume_usd=_usd(f.volume_cents),
                                           win_rate=f.win_rate, roi=f.roi) for period, f in card.figures.items()},
            recent_trades=[WhaleTradeOut(symbol=t.symbol, side=t.side, usd_value=t.usd_value, pnl_usd=t.pnl_usd,
                                         at=t.ts) for t in card.recent])

