"""Marketplace page (/market's board) with 1,000 providers and 500,000 signals: p95 as served and cold.

Seeds a SQLite file (as the whale benchmark does) with approved providers, their signals over 180 days and
the events that closed about 90 % of them, plus some subscribers. The rows are bulk-inserted around the
services, so the providers' records (services.marketplace_rollups) are then recomputed from the signals, as
after the upgrade that added them: the backfill, timed. Then times, in one process:
* baseline: one indexed row by primary key (`Provider` by id), the unit the other figures are given in;
* served: a page of the board as the app serves it (`MarketBoard` with the app's MARKET_BOARD_TTL: the
  ranking computed once, then kept; random sorts, filters and pages), text rendered;
* cold: the same page with nothing kept in memory (a new board each time, as the first view after a start):
  the board the leader computed last is read from the database (MarketBoardSnapshot);
* after a line-up change: a provider repriced (committed through the ORM, as /provider does), then a page as
  served: that provider's entry is redone, the rest of the board kept;
* cold, nothing kept anywhere: a new board with no kept board to read (the first ranking after an upgrade, or
  no leader for the board's keeping time), so the ranking is computed from the providers' records, a row per
  provider and one per subscriber (what each subscriber got kept by the ranking before);
* refresh: the scheduler's recompute (from the records), which also keeps the board for starting processes;
* card: a provider's card figures (its own signals read and computed each time).
The process's heap is frozen before timing (gc.freeze(), as run.py does after start-up), else a full
collection walking the app's 400,000 startup objects (~200 ms) lands in the tail. Target: served and cold
p95 < 100 ms. Sizes: BENCH_MARKET_PROVIDERS, BENCH_MARKET_SIGNALS.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from aiogram.utils.i18n import I18n
from sqlalchemy import insert, select

from bot.wiring import MARKET_BOARD_TTL
from db import migrate
from db.engine import Database
from db.models import User
from db.models_marketplace import Provider, ProviderSubscription
from db.models_signals import Signal, SignalEvent
from presentation import market_board as words
from services import marketplace_rollups
from services.marketplace_board import DRAWDOWN_CAPS, PRICE_CAPS, SORTS, WIN_FLOORS, MarketBoard, View

PROVIDERS = int(os.environ.get("BENCH_MARKET_PROVIDERS", "1000"))
SIGNALS = int(os.environ.get("BENCH_MARKET_SIGNALS", "500000"))
PAGES = int(os.environ.get("BENCH_MARKET_PAGES", "300"))
COLD_RUNS = int(os.environ.get("BENCH_MARKET_COLD_RUNS", "50"))
ECOSYSTEMS = ("crypto", "forex", "stocks", "commodities")
CHUNK = 20_000
LOCALES = Path(__file__).resolve().parent.parent / "bot" / "locales"


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def _seed(db: Database, now: datetime) -> None:
    rng = random.Random(19)
    async with db.transaction() as session:
        await session.execute(insert(User), [dict(id=10_000 + i, first_name=f"P{i}", language="en")
                                             for i in range(PROVIDERS + 500)])
        await session.execute(insert(Provider), [
            dict(id=i + 1, user_id=10_000 + i, name=f"Provider {i + 1}", description="Swing trades",
                 ecosystems=[rng.choice(ECOSYSTEMS)], price_cents=rng.choice((500, 1500, 2500, 4900, 9900)),
                 payout_method="telegram", status="approved", approved_at=now - timedelta(days=200),
                 created_at=now - timedelta(days=200)) for i in range(PROVIDERS)])
        subs = [dict(user_id=10_000 + PROVIDERS + rng.randrange(500), provider_id=rng.randrange(PROVIDERS) + 1,
                     starts_at=now - timedelta(days=rng.randint(1, 60)), ends_at=now + timedelta(days=10))
                for _ in range(3_000)]
        await session.execute(insert(ProviderSubscription), subs)
    skill = [rng.uniform(0.35, 0.7) for _ in range(PROVIDERS)]
    weights = [rng.paretovariate(1.5) for _ in range(PROVIDERS)]  # a few busy providers, a long tail
    owners = rng.choices(range(PROVIDERS), weights, k=SIGNALS)
    event_id = 0
    for start in range(0, SIGNALS, CHUNK):
        signals, events = [], []
        for i in range(start, min(start + CHUNK, SIGNALS)):
            provider = owners[i]
            at = now - timedelta(seconds=rng.randint(0, 180 * 86400))
            entry = Decimal(rng.randint(1_000, 100_000)) / 100
            signals.append(dict(id=i + 1, external_id=f"p{provider + 1}:s{i}", source="api",
                                ecosystem=ECOSYSTEMS[provider % len(ECOSYSTEMS)], symbol="SOL/USDT", side="long",
                                entry=entry, take_profits=[str(entry * Decimal("1.05")), str(entry * Decimal("1.1"))],
                                stop_loss=entry * Decimal("0.95"), received_at=at, prev_hash=f"{2 * i:064x}",
                                hash=f"{2 * i + 1:064x}", provider_id=provider + 1))
            closed_at = at + timedelta(seconds=rng.randint(3600, 3 * 86400))
            if closed_at > now or rng.random() < 0.1:
                continue
            won = rng.random() < skill[provider]
            event_id += 1
            events.append(dict(id=event_id, signal_id=i + 1, type="tp_hit" if won else "sl_hit",
                               level=2 if won else 0, price=entry * (Decimal("1.1") if won else Decimal("0.95")),
                               received_at=closed_at, prev_hash=f"e{2 * event_id:063x}",
                               hash=f"e{2 * event_id + 1:063x}", provider_id=provider + 1))
        async with db.transaction() as session:
            await session.execute(insert(Signal), signals)
            if events:
                await session.execute(insert(SignalEvent), events)


def _views(rng: random.Random) -> tuple[View, int]:
    view = View(sort=rng.randrange(len(SORTS)), ecosystem=rng.choice(("", "", *ECOSYSTEMS)),
                price=rng.randrange(len(PRICE_CAPS)), win=rng.choice((0, 0, rng.randrange(len(WIN_FLOORS)))),
                drawdown=rng.choice((0, 0, rng.randrange(len(DRAWDOWN_CAPS)))))
    return view, rng.choice((0, 0, 1, 2, 5))


async def _page(board: MarketBoard, view: View, page: int) -> str:
    found = await board.page(view, offset=page * 10)
    return words.board(found, view, bool(found.ecosystems))


async def _time_pages(rng: random.Random, runs: int, board: Callable[[], MarketBoard], *,
                      before: Callable[[], Awaitable[None]] | None = None) -> list[float]:
    """Each run: `before()` (not timed), then a random page of `board()` (the same board, or a new one)."""
    found = []
    for _ in range(runs):
        if before is not None:
            await before()
        view, page = _views(rng)
        t0 = time.perf_counter()
        await _page(board(), view, page)
        found.append(time.perf_counter() - t0)
    return found


async def run() -> None:
    now = datetime.now(UTC)
    i18n = I18n(path=LOCALES, default_locale="en", domain="messages")
    with tempfile.TemporaryDirectory() as tmp, i18n.context():
        db = Database(f"sqlite+aiosqlite:///{tmp}/market.db")
        await migrate.upgrade(db)
        t0 = time.perf_counter()
        await _seed(db, now)
        async with db.session() as session:
            events = await session.scalar(select(SignalEvent.id).order_by(SignalEvent.id.desc()).limit(1))
        print(f"seeded {PROVIDERS:,} providers, {SIGNALS:,} signals, {events:,} closing events "
              f"in {time.perf_counter() - t0:.1f} s (SQLite file)")
        async with db.transaction() as session:
            await marketplace_rollups.mark_stale(session, range(1, PROVIDERS + 1))
        t0 = time.perf_counter()
        rebuilt = await marketplace_rollups.rebuild_stale(db)
        print(f"backfill: {rebuilt:,} provider records recomputed from the signals in "
              f"{time.perf_counter() - t0:.1f} s (once, after the upgrade)")
        gc.collect()
        gc.freeze()  # as run.py does once the app has started: full collections no longer walk that heap
        rng = random.Random(5)

        baseline = []
        for _ in range(PAGES):
            t0 = time.perf_counter()
            async with db.session() as session:
                await session.get(Provider, rng.randrange(PROVIDERS) + 1)
            baseline.append(time.perf_counter() - t0)
        base = _p(baseline, 95)

        served = MarketBoard(db, ttl=MARKET_BOARD_TTL)
        t0 = time.perf_counter()
        first = await served.page(View())
        first_view = time.perf_counter() - t0
        ranked = sum(1 for e in (await served._entries()) if e.score.score is not None)
        async def reprice() -> None:
            async with db.transaction() as session:
                provider = await session.get(Provider, rng.randrange(PROVIDERS) + 1)
                provider.price_cents = rng.choice((500, 1500, 2500, 4900, 9900))

        timings = await _time_pages(rng, PAGES, lambda: served)
        repriced = await _time_pages(rng, COLD_RUNS, lambda: served, before=reprice)
        # nothing in memory, as after a start: the kept board read
        cold = await _time_pages(rng, COLD_RUNS, lambda: MarketBoard(db, ttl=MARKET_BOARD_TTL))
        # no kept board to read: ranked from the records
        bare = await _time_pages(rng, COLD_RUNS, lambda: MarketBoard(db, ttl=0))
        refreshes = []
        for _ in range(COLD_RUNS):
            t0 = time.perf_counter()
            await served.refresh()
            refreshes.append(time.perf_counter() - t0)

        cards = []
        for _ in range(50):
            t0 = time.perf_counter()
            await served.card(rng.randrange(PROVIDERS) + 1)
            cards.append(time.perf_counter() - t0)
        await db.close()

    def line(name: str, values: list[float]) -> str:
        p95 = _p(values, 95)
        return (f"{name:<28} p50 {_p(values, 50) * 1000:8.2f} ms  p95 {p95 * 1000:8.2f} ms  "
                f"= {p95 / base:8.1f} × baseline  ({len(values)} runs)")

    print(f"{ranked:,} of {first.total:,} providers ranked; first view (computes the board) "
          f"{first_view * 1000:.0f} ms")
    print(line("baseline (row by id)", baseline))
    print(line(f"page as served ({MARKET_BOARD_TTL} s kept)", timings))
    print(line("page after a repricing", repriced))
    print(line("page cold (kept board read)", cold))
    print(line("page cold (from the records)", bare))
    print(line("scheduled refresh", refreshes))
    print(line("provider card figures", cards))
    for name, values in (("served", timings), ("after a line-up change", repriced), ("cold", cold),
                         ("first ranking, nothing kept", bare)):
        verdict = "met" if _p(values, 95) < 0.1 else "NOT met"
        print(f"target: {name} p95 < 100 ms: {verdict} ({_p(values, 95) * 1000:.1f} ms)")
