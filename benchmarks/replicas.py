"""Replicas: /start from new users through 1, 2 and 3 replicas, the gate's added latency with Redis, and a
fan-out through 3 replicas at 500 msg/s (issue #18).

Needs PostgreSQL and Redis: ``make bench`` runs every benchmark under scripts/with-postgres and
scripts/with-redis (TEST_DATABASE_URL, TEST_REDIS_URL). The replicas are ``python run.py`` processes
(sandbox/cluster.py) behind the round-robin balancer; the stand-ins run in this process.

1. ``/start`` from BENCH_REPLICA_USERS new users (default 600), all queued at once and delivered by the
   stand-in's webhook (40 connections, as Telegram's default): updates answered per second, for 1, 2 and 3
   replicas, and the ratios to one replica. This machine's cores are shared with the stand-ins.
2. The gate's added latency per send: sendMessage through aiogram and the gate against the stand-in,
   without a shared budget and with the Redis one, interleaved rounds; the difference of the medians.
3. One signal to BENCH_REPLICA_SUBSCRIBERS (default 5,000) subscribers through 3 replicas at
   TELEGRAM_RATE_LIMIT 500: delivered / ideal (ideal: the limit for the whole time from the first send).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from aiogram.exceptions import TelegramAPIError

from bot.wiring import create_bot
from config.settings import Settings
from sandbox.cluster import Cluster, busiest_second, limited_calls
from sandbox.runner import SANDBOX_TOKEN
from sandbox.telegram import TelegramStandIn
from services.redis import connect
from transport.gate import OutgoingGate
from transport.redis_budget import RedisBudget

USERS = int(os.environ.get("BENCH_REPLICA_USERS", "600"))
SUBSCRIBERS = int(os.environ.get("BENCH_REPLICA_SUBSCRIBERS", "5000"))
SIGNAL = {"ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}


def _servers() -> tuple[str, str] | None:
    pg, redis_url = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    return (pg, redis_url) if pg and redis_url else None


async def _fresh(pg: str, redis_url: str, n: int):
    from redis.asyncio import Redis

    from tests.support.pg import fresh_database

    client = Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    return fresh_database(pg, f"bench{n}")


async def start_rate(pg: str, redis_url: str, replicas: int, logs: Path) -> float:
    """Updates answered per second for USERS new users' /start through ``replicas`` replicas."""
    async with await _fresh(pg, redis_url, replicas) as database_url:
        settings = Settings(_env_file=None, database_url=database_url, redis_url=redis_url,
                            telegram_rate_limit=10_000, log_level="WARNING")
        async with Cluster(settings, replicas=replicas, logs=logs / f"start-{replicas}", rate_limit=None) as cluster:
            tg = cluster.sandbox.telegram
            users = range(5_000_000, 5_000_000 + USERS)
            for user in users:
                tg.add_user(user, f"User {user}")
            started = time.perf_counter()
            for user in users:
                tg.send_text(user, "/start")
            await tg.wait_for(lambda: all(tg.chat_messages(u, bot_only=True) for u in users), timeout=600)
            return USERS / (time.perf_counter() - started)


async def gate_latency(redis_url: str, rounds: int = 5, sends: int = 200) -> tuple[float, float]:
    """Median sendMessage time (ms) through the gate without and with the Redis budget."""
    plain_times: list[float] = []
    shared_times: list[float] = []
    redis = connect(redis_url)
    async with TelegramStandIn(rate_limit=None) as tg:
        tg.add_user(42)
        bots = {
            "plain": create_bot(SANDBOX_TOKEN, tg.base_url, OutgoingGate(100_000)),
            "shared": create_bot(SANDBOX_TOKEN, tg.base_url,
                                 OutgoingGate(100_000, budget=RedisBudget(redis, 100_000, prefix="bench:{gate}:"))),
        }
        try:
            for bot in bots.values():
                await bot.send_message(42, "warm up")
            for _ in range(rounds):
                for name, bot in bots.items():
                    times = plain_times if name == "plain" else shared_times
                    for _ in range(sends):
                        began = time.perf_counter()
                        try:
                            await bot.send_message(42, "x")
                        except TelegramAPIError:
                            continue
                        times.append(time.perf_counter() - began)
        finally:
            for bot in bots.values():
                await bot.session.close()
            await redis.aclose()
    return statistics.median(plain_times) * 1000, statistics.median(shared_times) * 1000


async def fan_out(pg: str, redis_url: str, logs: Path) -> str:
    limit = 500
    async with await _fresh(pg, redis_url, 9) as database_url:
        settings = Settings(_env_file=None, database_url=database_url, redis_url=redis_url,
                            telegram_rate_limit=limit, log_level="WARNING")
        async with Cluster(settings, replicas=3, logs=logs / "fanout", rate_limit=None) as cluster:
            tg = cluster.sandbox.telegram
            users = range(6_000_000, 6_000_000 + SUBSCRIBERS)
            await cluster.subscribe(users)
            before = len(tg.calls)
            await cluster.post_signal({"id": "bench-replicas", **SIGNAL})

            def done() -> bool:
                return sum(1 for c in tg.calls[before:] if c.method == "sendMessage" and c.ok) >= SUBSCRIBERS + 1
            await tg.wait_for(done, timeout=600)
            calls = [c for c in tg.calls[before:] if c.method.lower() != "getupdates"]
            first, last = calls[0].time, calls[-1].time
            elapsed = last - first
            delivered = sum(1 for c in calls if c.method == "sendMessage" and c.ok)
            ratio = len(calls) / (limit * elapsed) if elapsed else 0.0
            return (f"{delivered} delivered in {elapsed:.2f} s = {delivered / elapsed:.0f} msg/s at limit {limit}; "
                    f"delivered/ideal {ratio:.3f}; busiest second {busiest_second(limited_calls(tg, before))} requests")


async def run() -> None:
    servers = _servers()
    if servers is None:
        print("needs TEST_DATABASE_URL and TEST_REDIS_URL: bash scripts/with-postgres bash scripts/with-redis "
              ".venv/bin/python -m benchmarks replicas")
        return
    pg, redis_url = servers
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        logs = Path(tmp)
        rates = {}
        for n in (1, 2, 3):
            rates[n] = await start_rate(pg, redis_url, n, logs)
        print(f"/start from {USERS} new users: " + "; ".join(
            f"{n} replica{'s' if n > 1 else ''} {rate:.0f} updates/s ({rate / rates[1]:.2f}x one)"
            for n, rate in rates.items()) + f" ({os.cpu_count()} CPUs)")
        plain, shared = await gate_latency(redis_url)
        print(f"gate per send: {plain:.2f} ms without a shared budget, {shared:.2f} ms with Redis "
              f"(+{shared - plain:.2f} ms, {shared / plain:.2f}x)")
        print("fan-out through 3 replicas: " + await fan_out(pg, redis_url, logs))
