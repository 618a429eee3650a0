"""Developer API: authenticated, metered `GET /api/v1/signals` beside a bare aiohttp handler, and credit charging.

Both servers run in this process on local TCP ports, on an SQLite file with 200 signals. The same 50
concurrent keep-alive clients, in another process (benchmarks.http_load), call the app's real route (key
check, the plan, the limits counted in memory, the answer) and a bare handler that returns the same JSON
bytes, in alternating rounds, so the ratio is measured in the same moment. Then 20 concurrent callers
over the day's quota spend a credit that covers 13 of them: exactly 13 must be charged.
Targets: app rate ≥ 0.5 × bare rate; app p95 < 20 ms on a quiet machine; no lost or double charge.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
from decimal import Decimal

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.app import App
from config.settings import Settings
from db import migrate
from services.ledger import Cause
from services.signals import SignalIn

CLIENTS = 50
REQUESTS = int(os.environ.get("BENCH_API_REQUESTS", "3000"))  # per round
ROUNDS = 3
USER = 501


async def _load(url: str, headers: dict[str, str]) -> dict:
    """REQUESTS GETs from CLIENTS concurrent clients in another process (benchmarks.http_load)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.http_load", url, str(REQUESTS), str(CLIENTS),
        *(f"{name}:{value}" for name, value in headers.items()), stdout=asyncio.subprocess.PIPE)
    out, _err = await process.communicate()
    result = json.loads(out)
    assert result["statuses"] == {"200": REQUESTS}, result["statuses"]
    return result


async def run() -> None:
    directory = tempfile.mkdtemp(prefix="bench-api-")
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{directory}/bench.db",
                        telegram_bot_token="42:BENCH-TOKEN-abcdefghijklmnopqrstu", telegram_api_url="http://127.0.0.1:9",
                        api_limits={"pro": {"per_minute": 1_000_000, "per_day": 10_000_000}})
    app = App(settings)
    await migrate.upgrade(app.db)
    await app.users.seen(USER, username=None, first_name="Bench", language_code="en")
    await app.subscriptions.add_time(USER, "pro", 30, source="grant")
    for i in range(200):
        await app.signals.ingest(SignalIn(id=f"s{i}", ecosystem="crypto", symbol="BTC/USDT", side="long",
                                          entry="100", take_profits=["110", "120"], stop_loss="95"))
    _key, raw = await app.api_keys.create(USER, "bench")
    headers = {"Authorization": f"Bearer {raw}"}

    async with TestServer(app.web) as server, ClientSession() as probe:
        url = str(server.make_url("/api/v1/signals"))
        async with probe.get(url, headers=headers) as response:
            body = await response.read()
        assert response.status == 200

        async def bare_handler(_request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        bare = web.Application()
        bare.router.add_get("/api/v1/signals", bare_handler)
        async with TestServer(bare) as bare_server:
            bare_url = str(bare_server.make_url("/api/v1/signals"))
            await _load(url, headers)  # warm-up: caches filled, first writes done
            ours, theirs = [], []
            for _round in range(ROUNDS):
                theirs.append(await _load(bare_url, headers))
                ours.append(await _load(url, headers))

    def median(results: list[dict], name: str) -> float:
        return statistics.median(r[name] for r in results)

    rate, bare_rate = median(ours, "rate"), median(theirs, "rate")
    print(f"  GET /api/v1/signals ({len(body):,} bytes, 20 signals), {CLIENTS} clients in another process, "
          f"{ROUNDS} rounds of {REQUESTS:,} (medians):")
    print(f"    bare aiohttp: {bare_rate:,.0f} req/s, p50 {median(theirs, 'p50'):.1f} ms, "
          f"p95 {median(theirs, 'p95'):.1f} ms")
    print(f"    metered API:  {rate:,.0f} req/s, p50 {median(ours, 'p50'):.1f} ms, p95 {median(ours, 'p95'):.1f} ms "
          "(target < 20 ms)")
    print(f"    ratio {rate / bare_rate:.2f}× (target ≥ 0.5×), per-round ratios "
          + ", ".join(f"{o['rate'] / t['rate']:.2f}" for o, t in zip(ours, theirs, strict=True)))

    # Credit charging: 20 concurrent callers over the quota, credit for 13 calls at $0.01.
    meter = app.services.api_meter
    meter.limits["pro"] = type(meter.limits["pro"])(1_000_000, 1)
    await app.ledger.top_up(USER, Decimal("0.13"), Cause("order", "bench"))
    async with TestServer(app.web) as server, ClientSession() as session:
        url = str(server.make_url("/api/v1/signals"))

        async def one() -> int:
            async with session.get(url, headers=headers) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(one() for _ in range(20)))
    left = await app.ledger.credit(USER)
    charged = statuses.count(200)
    print(f"  20 concurrent calls over the quota with $0.13 of credit: {charged} answered, "
          f"{statuses.count(429)} refused, credit left ${left} "
          f"({'exact' if charged == 13 and left == 0 else 'WRONG'})")
    await app.close_resources()
