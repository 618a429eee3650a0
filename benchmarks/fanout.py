"""Signal fan-out: one signal to N subscribers through the Telegram stand-in over real HTTP.

The stand-in runs in a process of its own (benchmarks/telegram_process.py), as Telegram does: the CPU
figures are the bot's alone.

Runs (N = BENCH_SUBSCRIBERS, default 10,000 paid subscribers plus the crypto channel; 5 % of users
have blocked the bot):

1. limit 500 msg/s, 2 % of sends answered 429 (retry after 1 s): delivered / ideal rate, duplicates, losses;
2. limit 500 msg/s without 429s;
3. no limit (TELEGRAM_RATE_LIMIT at its maximum): the bot's own ceiling in messages per second;
4. limit 500 msg/s, the process's worker killed mid-fan-out (task cancelled, the app torn down), a new App
   started on the same database: duplicates and losses;
5. the same with a graceful stop (what SIGTERM does: sends in flight finish and are recorded).

Duplicates: messages beyond one per chat; losses: deliverable chats (not blocked) without the signal.

Ideal: the best any sender can do under the same rules, timed from the moment the signal is posted.
Spacing requests at the limit (architecture rule 6), it spends one slot on every user who blocked the bot
(nobody knows who did until Telegram answers 403) and on every request answered 429, and it waits out
every pause Telegram orders (counted from the answer, as the gate sees it). So the ideal delivery rate is
limit x delivered / requests in the time not paused, and delivered / ideal = requests / (limit x unpaused
time). A sender that wasted no slot and no moment would score 1.000.

The bot is started as run.py starts it, gc.freeze() included.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from sqlalchemy import func, insert, select

from bot.app import App
from config.settings import Settings
from db import migrate
from db.engine import Database
from db.models import User
from db.models_signals import Outbox
from db.models_subscriptions import Subscription
from processing.ingest_auth import signed_headers
from sandbox.runner import SANDBOX_SIGNALS_CHANNEL_ID, SANDBOX_TOKEN

SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "10000"))
LIMIT = 500
CHANNEL = SANDBOX_SIGNALS_CHANNEL_ID
SECRET = "bench-secret"
FIRST_USER = 1_000_000
SIGNAL = {"ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}


async def seed(database_url: str) -> tuple[list[int], set[int]]:
    db = Database(database_url)
    await migrate.upgrade(db)
    now = datetime.now(UTC)
    users = list(range(FIRST_USER, FIRST_USER + SUBSCRIBERS))
    async with db.transaction() as session:
        await session.execute(insert(User), [dict(id=u, language="en", first_seen=now, last_seen=now, is_blocked=False)
                                             for u in users])
        await session.execute(insert(Subscription), [
            dict(user_id=u, plan="pro", starts_at=now, ends_at=now + timedelta(days=30), source="grant", created_at=now)
            for u in users])
    await db.close()
    blocked = set(users[::20])  # 5 %
    return users, blocked


class RemoteTelegram:
    """The stand-in running in its own process (benchmarks/telegram_process.py)."""

    def __init__(self, limit: float | None, flood_every: int) -> None:
        self.limit, self.flood_every = limit, flood_every
        self.base_url = ""
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> RemoteTelegram:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.telegram_process", "--limit", str(self.limit or 0),
            "--flood-every", str(self.flood_every), "--first-user", str(FIRST_USER), "--users", str(SUBSCRIBERS),
            "--block-every", "20", "--channel", str(CHANNEL), stdout=asyncio.subprocess.PIPE)
        line = (await asyncio.wait_for(self._proc.stdout.readline(), 120)).decode()
        if not line.startswith("ready "):
            raise RuntimeError(f"the stand-in did not start: {line!r}")
        self.base_url = line.split()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._proc.kill()
        await self._proc.wait()

    async def sends(self) -> tuple[list[list], list[float]]:
        async with httpx.AsyncClient(timeout=60) as client:
            data = (await client.get(f"{self.base_url}/ctl/sends")).json()
        return data["sends"], data["floods"]

    async def delivered(self) -> int:
        """Successful sends so far (a count, cheap to poll while the bot's CPU is measured)."""
        async with httpx.AsyncClient(timeout=60) as client:
            return (await client.get(f"{self.base_url}/ctl/delivered")).json()["delivered"]


async def until(predicate, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the fan-out did not finish in time")
        await asyncio.sleep(0.2)


def settings_for(telegram: RemoteTelegram, database_url: str, rate: float) -> Settings:
    return Settings(_env_file=None, telegram_bot_token=SANDBOX_TOKEN, telegram_api_url=telegram.base_url,
                    web_port=0, telegram_rate_limit=rate, database_url=database_url, stars_enabled=False,
                    signal_webhook_secret=SECRET, telegram_channel_map={"crypto": str(CHANNEL)}, log_level="ERROR")


async def started_app(telegram: RemoteTelegram, database_url: str, rate: float) -> App:
    app = App(settings_for(telegram, database_url, rate))
    await app.start()
    gc.freeze()  # as run.py does
    return app


async def post_signal(app: App, signal_id: str) -> None:
    body = json.dumps({"id": signal_id, **SIGNAL}).encode()
    async with httpx.AsyncClient() as client:
        response = await client.post(f"http://127.0.0.1:{app.port}/api/signals", content=body,
                                     headers=signed_headers(SECRET, body))
    assert response.status_code == 202, response.text


async def drained(database_url: str) -> None:
    db = Database(database_url)

    async def nothing_waiting() -> bool:
        async with db.session() as session:
            return not await session.scalar(select(func.count()).select_from(Outbox).where(
                Outbox.status.in_(("queued", "sending"))))
    try:
        await until(nothing_waiting, 1800)
    finally:
        await db.close()


def tally(sends: list[list], users: list[int], blocked: set[int]) -> tuple[int, int, list[float]]:
    counts: dict[int, int] = {}
    times = []
    for chat, ok, _code, at in sends:
        if ok:
            counts[chat] = counts.get(chat, 0) + 1
            times.append(at)
    deliverable = [u for u in users if u not in blocked] + [CHANNEL]
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    losses = sum(1 for chat in deliverable if counts.get(chat, 0) == 0)
    return duplicates, losses, times


async def fan_out(label: str, *, limit: float | None, rate: float, faults: bool = False,
                  restart: Literal["kill", "stop"] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        users, blocked = await seed(database_url)
        async with RemoteTelegram(limit, 50 if faults else 0) as telegram:
            app = await started_app(telegram, database_url, rate)
            deliverable = len(users) - len(blocked) + 1
            try:
                started, cpu = time.time(), time.process_time()
                await post_signal(app, f"bench-{label}")
                if restart:
                    async def half_delivered() -> bool:
                        return await telegram.delivered() >= deliverable // 2
                    await until(half_delivered, 600)
                    if restart == "kill":  # dies mid-batch: claimed rows stay "sending", answers in flight are lost
                        next(t for t in app._tasks if t.get_name() == "signal_delivery").cancel()
                    await app.stop()
                    at_restart = await telegram.delivered()
                    app = await started_app(telegram, database_url, rate)
                await drained(database_url)
            finally:
                await app.stop()
            cpu = time.process_time() - cpu
            sends, flood_times = await telegram.sends()
            duplicates, losses, times = tally(sends, users, blocked)
            delivered = len(times)
            elapsed = max(times) - started
            rate_seen = delivered / elapsed
            line = (f"{label:34} {delivered:6} delivered in {elapsed:6.2f} s = {rate_seen:7.1f} msg/s "
                    f"(first send {min(times) - started:.2f} s after the signal was posted); "
                    f"duplicates {duplicates}, losses {losses}")
            if limit:
                requests = len(sends)  # every sendMessage: 403s and 429s included
                unpaused = elapsed - app.gate.stats.paused_total
                line += (f"; delivered/ideal {requests / (limit * unpaused):.3f} "
                         f"(ideal {limit * delivered / requests:.0f} msg/s: {limit} less the slots spent on 403s"
                         f"{' and 429s' if faults else ''})")
            if faults:
                line += (f"; 429s {len(flood_times)} ({len(flood_times) / len(sends):.1%} of requests), "
                         f"pauses ordered {app.gate.stats.paused_total:.1f} s")
            if restart:
                line += f"; {'killed' if restart == 'kill' else 'stopped'} after {at_restart} sends"
            blocked_calls = sum(1 for s in sends if s[2] == 403)
            print(line + f"; 403 answers {blocked_calls}; bot CPU {cpu / delivered * 1000:.2f} ms per message")


async def run() -> None:
    print(f"{SUBSCRIBERS} subscribers (5 % blocked) + 1 channel")
    await fan_out("limit 500/s, 2 % 429", limit=LIMIT, rate=LIMIT, faults=True)
    await fan_out("limit 500/s", limit=LIMIT, rate=LIMIT)
    await fan_out("no limit (gate at 10,000/s)", limit=None, rate=10_000)
    await fan_out("limit 500/s, killed and restarted", limit=LIMIT, rate=LIMIT, restart="kill")
    await fan_out("limit 500/s, stopped and restarted", limit=LIMIT, rate=LIMIT, restart="stop")
