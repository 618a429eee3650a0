"""/market's ranking from the kept provider records equals a full recomputation from the stored signals, on random
histories written through the real signal service: awkward prices, a provider closing many signals in one day
(some at the very same instant), a retried event, a clock that steps back (another replica's), subscribers from
any moment; and the records kept event by event equal the records recomputed from scratch. A process that starts
serves the board another computed while it is fresh and the providers are as they were."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select

from db.models import User
from db.models_marketplace import Provider, ProviderSubscription
from db.models_provider_records import (
    ProviderRecord,
    ProviderRecordDay,
    ProviderRecordWeek,
    ProviderSubscriberGains,
)
from services import marketplace_ranking, marketplace_rollups
from services.marketplace_board import MarketBoard, View, closed_of
from services.signals import EventIn, EventOutcome, SignalIn, SignalService

T0 = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
PROVIDERS = (1, 2, 3, 4)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def price(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(10_000, 9_999_999)) / Decimal(10) ** rng.randint(2, 6)


def signal_in(rng: random.Random, n: int) -> SignalIn:
    entry, side = price(rng), rng.choice(("long", "short"))
    sign = 1 if side == "long" else -1
    step = entry * Decimal(rng.randint(1, 90)) / 1000
    targets = [format(entry + sign * step * k, "f") for k in range(1, rng.randint(1, 3) + 1)]
    stop = entry - sign * entry * Decimal(rng.randint(5, 120)) / 1000
    return SignalIn.model_validate(dict(id=f"s{n}", ecosystem=rng.choice(("crypto", "forex", "stocks")),
                                        symbol="SOL/USDT", side=side, entry=format(entry, "f"), take_profits=targets,
                                        stop_loss=format(stop, "f")))


def event_in(rng: random.Random, signal: SignalIn) -> EventIn:
    kind = rng.choice(("tp_hit", "tp_hit", "sl_hit", "closed"))
    exit_price = signal.entry * (1 + Decimal(rng.randint(-150, 150)) / 1000)
    level = rng.randint(1, len(signal.take_profits)) if kind == "tp_hit" else None
    return EventIn.model_validate(dict(type=kind, level=level, price=format(exit_price, "f")))


async def write_history(database, rng: random.Random, clock: Clock) -> SignalService:
    signals = SignalService(database, tz=ZoneInfo("UTC"), clock=clock)
    async with database.transaction() as session:
        session.add_all([User(id=900 + pid, first_name=f"P{pid}", language="en") for pid in PROVIDERS])
        session.add_all([User(id=950 + i, first_name=f"S{i}", language="en") for i in range(12)])
        await session.flush()
        session.add_all([Provider(id=pid, user_id=900 + pid, name=f"P{pid}", description="d", ecosystems=["crypto"],
                                  price_cents=2500, payout_method="telegram", status="approved")
                         for pid in PROVIDERS])
    sent: dict[int, list[SignalIn]] = {pid: [] for pid in PROVIDERS}
    retried = False
    for n in range(160):
        clock.at += timedelta(minutes=rng.randint(1, 60 * 30))
        if n % 40 == 20:  # another replica's clock, a little behind
            clock.at -= timedelta(minutes=rng.randint(1, 30))
        pid = rng.choice(PROVIDERS)
        if rng.random() < 0.55 or not sent[pid]:
            data = signal_in(rng, n)
            assert (await signals.ingest(data, provider_id=pid)).created
            sent[pid].append(data)
            continue
        data = rng.choice(sent[pid])
        event = event_in(rng, data)
        result = await signals.add_event(data.id, event, provider_id=pid)
        if result.status is EventOutcome.STORED and not retried:  # the sender retries: nothing changes
            assert (await signals.add_event(data.id, event, provider_id=pid)).status in (
                EventOutcome.DUPLICATE, EventOutcome.CLOSED)
            retried = True
    busy = PROVIDERS[0]  # one provider opens and closes a day's worth at once, some at the very same instant
    clock.at += timedelta(days=1)
    burst = [signal_in(rng, 1000 + i) for i in range(25)]
    for data in burst:
        clock.at += timedelta(seconds=rng.randint(0, 1))
        await signals.ingest(data, provider_id=busy)
    for data in rng.sample(burst, len(burst)):
        clock.at += timedelta(seconds=rng.choice((0, 0, 7)))
        await signals.add_event(data.id, EventIn.model_validate(
            dict(type="closed", price=format(data.entry * Decimal("1.0123"), "f"))),
                                provider_id=busy)
    return signals


async def subscribe(database, rng: random.Random, clock: Clock) -> None:
    """Subscribers from random moments: before any signal, mid-day, at a signal's own arrival, after the last."""
    async with database.session() as session:
        arrivals = list(await session.scalars(select(ProviderRecord.first_signal_at)))
    moments = [T0 - timedelta(days=3), clock.at + timedelta(hours=1), *arrivals,
               *(T0 + timedelta(seconds=rng.randint(0, int((clock.at - T0).total_seconds()))) for _ in range(12))]
    async with database.transaction() as session:
        for i in range(24):
            start = rng.choice(moments)
            session.add(ProviderSubscription(user_id=950 + i % 12, provider_id=rng.choice(PROVIDERS),
                                             starts_at=start, ends_at=start + timedelta(days=400)))


async def expected(database, signals: SignalService, now: datetime) -> dict[int, marketplace_ranking.Score]:
    """The full recomputation: each provider's signals and events read and scored (the card's way)."""
    async with database.session() as session:
        starts = (await session.execute(
            select(ProviderSubscription.provider_id, ProviderSubscription.user_id, ProviderSubscription.starts_at)
            .where(ProviderSubscription.starts_at <= now))).all()
    result = {}
    for pid in PROVIDERS:
        first_of: dict[int, datetime] = {}
        for provider_id, user_id, start in starts:
            if provider_id == pid:
                first_of[user_id] = min(first_of.get(user_id, start), start)
        rows, events = await signals.history(pid)
        times = [s.received_at for s in rows]
        result[pid] = marketplace_ranking.score(
            closed_of(rows, events), first_signal_at=min(times, default=None), last_signal_at=max(times, default=None),
            subscriber_starts=list(first_of.values()), now=now)
    return result


def same(got: marketplace_ranking.Score, want: marketplace_ranking.Score) -> None:
    assert (got.score, got.unranked, got.parts, got.monthly_return, got.subscribers_return) == (
        want.score, want.unranked, want.parts, want.monthly_return, want.subscribers_return)
    g, w = got.figures, want.figures
    assert (g.trades, g.wins, g.win_rate, g.avg_r, g.cumulative_return, g.max_drawdown) == (
        w.trades, w.wins, w.win_rate, w.avg_r, w.cumulative_return, w.max_drawdown)


async def kept(database) -> dict[int, tuple]:
    async with database.session() as session:
        records = {r.provider_id: r for r in await session.scalars(select(ProviderRecord))}
        weeks = (await session.execute(select(ProviderRecordWeek.provider_id, ProviderRecordWeek.week,
                                              ProviderRecordWeek.total))).all()
        days = (await session.execute(select(ProviderRecordDay.provider_id, ProviderRecordDay.slot,
                                             ProviderRecordDay.before, ProviderRecordDay.total,
                                             ProviderRecordDay.trades))).all()
    result = {}
    for pid, record in records.items():
        columns = {c.key: getattr(record, c.key) for c in ProviderRecord.__table__.columns}
        result[pid] = (columns, sorted((w, t) for p, w, t in weeks if p == pid),
                       sorted((d, b, t, sorted(map(tuple, trades))) for p, d, b, t, trades in days if p == pid))
    return result


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_kept_records_rank_exactly_as_the_signals_do(database, seed):
    rng, clock = random.Random(seed), Clock(T0)
    signals = await write_history(database, rng, clock)
    await subscribe(database, rng, clock)
    async with database.session() as session:
        stale = set(await session.scalars(select(ProviderRecord.provider_id).where(ProviderRecord.stale)))
    assert stale  # the step back and the same-instant closes left some record to recompute
    now = clock.at + timedelta(hours=2)
    board = MarketBoard(database, clock=lambda: now)
    entries = {e.provider_id: e for e in await board._entries()}
    want = await expected(database, signals, now)
    assert any(e.score.score is not None for e in entries.values())  # some are ranked, with every part
    for pid in PROVIDERS:
        same(entries[pid].score, want[pid])
        same((await board.card(pid)).score, want[pid])  # the card, from its signals read as plain rows
        history, _events = await signals.history(pid)
        assert entries[pid].ecosystems == tuple(sorted({"crypto", *(s.ecosystem for s in history)}))

    # what was kept event by event is what a recomputation from scratch writes
    before = await kept(database)
    assert await marketplace_rollups.rebuild(database, list(PROVIDERS), only_stale=False) == len(PROVIDERS)
    assert await kept(database) == before

    # a board asked for a moment before the last closes (a replica whose clock is behind) ranks from the signals
    earlier = clock.at - timedelta(seconds=3)
    behind = MarketBoard(database, clock=lambda: earlier)
    want = await expected(database, signals, earlier)
    for entry in await behind._entries():
        same(entry.score, want[entry.provider_id])


async def test_the_next_ranking_reads_what_subscribers_got_as_kept_until_a_close_changes_it(database):
    rng, clock = random.Random(11), Clock(T0)
    signals = await write_history(database, rng, clock)
    await subscribe(database, rng, clock)
    now = clock.at + timedelta(hours=2)
    first = {e.provider_id: e for e in await MarketBoard(database, clock=lambda: now)._entries()}
    async with database.session() as session:
        kept_for = set(await session.scalars(select(ProviderSubscriberGains.provider_id)))
    assert kept_for  # the subscribed providers' sums were kept
    async with database.transaction() as session:  # without its day rows, only the kept sums can give them
        await session.execute(delete(ProviderRecordDay))
    again = {e.provider_id: e for e in await MarketBoard(database, clock=lambda: now)._entries()}  # another process
    for pid in PROVIDERS:
        same(again[pid].score, first[pid].score)

    await marketplace_rollups.rebuild(database, list(PROVIDERS), only_stale=False)  # the day rows back
    pid = next(iter(sorted(kept_for)))
    data = signal_in(rng, 5000)
    clock.at = now + timedelta(minutes=1)
    await signals.ingest(data, provider_id=pid)
    clock.at += timedelta(minutes=1)
    await signals.add_event(data.id, EventIn.model_validate(
        dict(type="closed", price=format(data.entry * Decimal("1.05"), "f"))), provider_id=pid)
    later = clock.at + timedelta(minutes=1)
    moved = {e.provider_id: e for e in await MarketBoard(database, clock=lambda: later)._entries()}
    want = await expected(database, signals, later)
    for provider_id in PROVIDERS:  # the closed signal counts for the subscribers who started before it
        same(moved[provider_id].score, want[provider_id])
    assert moved[pid].score.subscribers_return != first[pid].score.subscribers_return


async def test_a_close_is_counted_once_and_the_board_follows_it(database):
    clock = Clock(T0)
    signals = SignalService(database, tz=ZoneInfo("UTC"), clock=clock)
    async with database.transaction() as session:
        session.add(User(id=901, first_name="P", language="en"))
        await session.flush()
        session.add(Provider(id=1, user_id=901, name="P", description="d", ecosystems=["crypto"], price_cents=2500,
                             payout_method="telegram", status="approved"))
    data = SignalIn.model_validate(dict(id="a", ecosystem="forex", symbol="EUR/USD", side="long", entry="100",
                                        take_profits=["110"], stop_loss="95"))
    await signals.ingest(data, provider_id=1)
    clock.at += timedelta(hours=5)
    win = EventIn.model_validate(dict(type="tp_hit", level=1, price="110"))
    assert (await signals.add_event("a", win, provider_id=1)).status is EventOutcome.STORED
    assert (await signals.add_event("a", win, provider_id=1)).status is EventOutcome.DUPLICATE
    stop = EventIn.model_validate(dict(type="closed", price="90"))
    assert (await signals.add_event("a", stop, provider_id=1)).status is EventOutcome.CLOSED
    async with database.session() as session:
        record = await session.get(ProviderRecord, 1)
    assert (record.closed, record.wins, record.ret_sum, record.markets, record.stale) == (
        1, 1, Decimal("0.1"), ["forex"], False)
    board = MarketBoard(database, clock=lambda: clock.at)
    [entry] = await board._entries()
    assert (entry.closed, entry.win_rate, entry.cumulative_return, entry.ecosystems) == (
        1, Decimal(1), Decimal("0.1"), ("crypto", "forex"))


async def test_a_process_that_starts_serves_the_kept_board_until_it_expires_with_changed_providers_redone(database):
    rng, clock = random.Random(7), Clock(T0)
    await write_history(database, rng, clock)
    await subscribe(database, rng, clock)
    now = clock.at + timedelta(hours=1)
    leader = MarketBoard(database, clock=lambda: now, ttl=300)
    assert await leader.refresh()  # the leader's job computes the board and keeps it
    computed = await leader._entries()
    started = MarketBoard(database, clock=lambda: now + timedelta(seconds=299), ttl=300)  # another process
    assert await started._entries() == [replace(e, score=replace(e.score, figures=replace(e.score.figures, equity=())))
                                        for e in computed]
    assert started._board[0] == now  # the leader's board, expiring when the leader's does

    async with database.transaction() as session:  # a signal closes after the leader computed
        await marketplace_rollups.mark_stale(session, [PROVIDERS[0]])
        (await session.get(Provider, PROVIDERS[1])).price_cents = 900  # and a provider changes its price
    restarted = MarketBoard(database, clock=lambda: now + timedelta(seconds=10), ttl=300)
    page = await restarted.page(View(sort=1))
    assert restarted._board[0] == now  # the leader's board, with the repriced provider's entry redone
    assert page.entries[0].provider_id == PROVIDERS[1] and page.entries[0].price_cents == 900
    assert {e.provider_id: e for e in restarted._board[1]}[PROVIDERS[0]] == {
        e.provider_id: e for e in (await started._entries())}[PROVIDERS[0]]  # the others as the leader ranked them
    late = MarketBoard(database, clock=lambda: now + timedelta(seconds=400), ttl=300)
    await late.page(View())
    assert late._board[0] == now + timedelta(seconds=400)  # older than the keeping time: computed afresh


async def test_a_process_whose_board_expired_takes_the_newer_one_the_leader_kept(database):
    rng, clock = random.Random(5), Clock(T0)
    await write_history(database, rng, clock)
    await subscribe(database, rng, clock)
    at = Clock(clock.at + timedelta(hours=1))
    leader, replica = MarketBoard(database, clock=at, ttl=300), MarketBoard(database, clock=at, ttl=300)
    assert await leader.refresh()
    first = at.at
    await replica._entries()
    assert replica._board[0] == first  # the leader's board
    at.at += timedelta(seconds=200)
    assert await leader.refresh()  # the leader's job, before its board expires
    at.at += timedelta(seconds=150)  # the replica's board is 350 s old: expired
    assert await replica._entries() == await leader._entries()
    assert replica._board[0] == first + timedelta(seconds=200)  # the leader's newer board, not ranked here
