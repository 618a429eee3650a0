"""Whale leaderboards: ingest rate (batches of 500) and leaderboard page latency, 5,000 wallets × 200,000 trades.

Ingest goes through the real signed HTTP route (`POST /api/whales/trades`: HMAC check, JSON parse,
per-item validation, one transaction per batch) on a local aiohttp server and SQLite file. Then
leaderboard pages (every period × metric, random pages of 10) are timed through
`WhaleService.board` twice: "cold" recomputes the ranking in SQL on every call (no cache, the worst
case); "app" uses the app's setting (a computed ranking is served for WHALE_RANKING_TTL seconds), the
first page of each period paying the SQL aggregate.
Targets: ingest ≥ 5,000 trades/s, page p95 < 100 ms.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient, TestServer

from bot.app import WHALE_RANKING_TTL
from db import migrate
from db.engine import Database
from processing.ingest_auth import IngestAuth, signed_headers
from routes.app import build_web_app
from routes.whales import add_routes
from services.whale_rankings import METRICS, PERIODS
from services.whales import WhaleService

WALLETS = int(os.environ.get("BENCH_WHALE_WALLETS", "5000"))
TRADES = int(os.environ.get("BENCH_WHALE_TRADES", "200000"))
BATCH = 500
PAGES = int(os.environ.get("BENCH_WHALE_PAGES", "300"))
SECRET = "bench-secret"


def _trades(now: datetime) -> list[dict]:
    rng = random.Random(7)
    wallets = [f"W{rng.getrandbits(120):030x}" for _ in range(WALLETS)]
    weights = [rng.paretovariate(1.2) for _ in wallets]  # a few very active wallets, a long tail
    chosen = rng.choices(wallets, weights, k=TRADES)
    out = []
    for i, wallet in enumerate(chosen):
        usd = rng.randint(1_000, 2_000_000)
        sell = rng.random() < 0.5
        pnl = f"{rng.randint(-usd // 5, usd // 4)}.{rng.randint(0, 99):02d}" if sell else None
        ts = now - timedelta(seconds=rng.randint(0, 120 * 86400))
        out.append({"id": f"t{i}", "wallet": wallet, "chain": "solana", "symbol": "SOL",
                    "side": "sell" if sell else "buy", "usd_value": str(usd), "pnl_usd": pnl,
                    "ts": ts.isoformat().replace("+00:00", "Z")})
    return out


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def run() -> None:
    now = datetime.now(UTC)
    trades = _trades(now)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/whales.db")
        await migrate.upgrade(db)
        whales = WhaleService(db)
        app = build_web_app(db)
        add_routes(app, whales, IngestAuth.build(SECRET))
        async with TestClient(TestServer(app)) as client:
            started = time.perf_counter()
            batch_times = []
            for start in range(0, len(trades), BATCH):
                body = json.dumps({"trades": trades[start:start + BATCH]}).encode()
                t0 = time.perf_counter()
                response = await client.post("/api/whales/trades", data=body, headers=signed_headers(SECRET, body))
                assert response.status == 200, await response.text()
                batch_times.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - started
        print(f"ingest (HTTP, signed)   {len(trades):,} trades, {WALLETS:,} wallets in {elapsed:6.2f} s "
              f"= {len(trades) / elapsed:8.0f} trades/s; batch of {BATCH}: median "
              f"{statistics.median(batch_times) * 1000:.0f} ms, p95 {_p(batch_times, 95) * 1000:.0f} ms")
        rng = random.Random(11)
        for period in PERIODS:
            total = (await whales.board(period, "score", limit=1)).total
            timings = []
            for _ in range(PAGES // len(PERIODS)):
                metric = rng.choice(METRICS)
                page = rng.randrange(max(1, (total + 9) // 10))
                t0 = time.perf_counter()
                board = await whales.board(period, metric, offset=page * 10)
                timings.append(time.perf_counter() - t0)
                assert board.rows or total == 0
            print(f"cold page {period:>4}  {total:5,} ranked wallets: p50 {_p(timings, 50) * 1000:6.1f} ms, "
                  f"p95 {_p(timings, 95) * 1000:6.1f} ms, max {max(timings) * 1000:6.1f} ms ({len(timings)} pages)")
        cached = WhaleService(db, ranking_ttl=WHALE_RANKING_TTL)
        timings = []
        for _ in range(PAGES):
            period, metric = rng.choice(list(PERIODS)), rng.choice(METRICS)
            t0 = time.perf_counter()
            await cached.board(period, metric, offset=rng.randrange(20) * 10)
            timings.append(time.perf_counter() - t0)
        print(f"app page (ranking kept {WHALE_RANKING_TTL} s)  p50 {_p(timings, 50) * 1000:6.2f} ms, "
              f"p95 {_p(timings, 95) * 1000:6.2f} ms, max {max(timings) * 1000:6.1f} ms ({len(timings)} pages, "
              f"all periods and metrics)")
        t0 = time.perf_counter()
        for wallet_id in range(1, 51):
            await whales.card(wallet_id)
        print(f"wallet card             {(time.perf_counter() - t0) / 50 * 1000:6.1f} ms each (50 cards)")
        await db.close()
