"""Mixed load on one database: signed ingest, payment webhooks and chatting users at once (issue 13, item 4).

The whole sandbox and the real bot run as tests run them (sandbox.runner.running_sandbox, SQLite unless
DATABASE_URL names another database), with SIGNAL_WEBHOOK_SECRET set, for BENCH_MIXED_SECONDS (default 35):

* ingest workers (BENCH_MIXED_INGEST, default 20, in a process of their own as real senders are), each in a
  loop: a new signal to `POST /api/signals` (every tenth one re-sent: a duplicate), then a batch of three whale
  trades to `POST /api/whales/trades`, all signed;
* payers (BENCH_MIXED_PAYERS, default 2), each in a loop: a plan order with a Crypto Pay invoice, paid on the
  Crypto Pay stand-in, which posts its signed webhook to `/webhooks/cryptopay` (the bot then confirms, marks
  paid, fulfils: a subscription, an invite and a message);
* chatting users (BENCH_MIXED_USERS, default "20,60": one run per count), each in a loop: a command, wait
  for the bot's answer, think 1.5-3.5 s.

Printed per run: HTTP answers by endpoint and status; update handling p50/p95 (from the Telegram stand-in
receiving a user's message to the bot's answer reaching it), ingest p50/p95, users' answers that were
"something went wrong" or never came; lost rows (accepted by ingest or paid by webhook but not stored /
not paid); background-task exceptions nobody retrieved.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from db.models import Order
from db.models_signals import Signal
from db.models_whales import WhaleTrade
from processing.ingest_auth import signed_headers
from sandbox.runner import running_sandbox

SECRET = "bench-mixed-secret"
COMMANDS = ("/help", "/orders", "/plans", "/signals", "/whales", "/performance", "/settings", "/start")
FIRST_USER, FIRST_PAYER = 300_000, 400_000
ANSWER_TIMEOUT = 20.0
SETTLE_SECONDS = 15.0  # after the load: how long paid orders may take to show as paid
SIGNAL = {"ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}


@dataclass
class Figures:
    users: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)  # "POST /api/signals 202" -> n
    update_latency: list[float] = field(default_factory=list)
    ingest_latency: list[float] = field(default_factory=list)
    loop_lag: list[float] = field(default_factory=list)
    bot_requests: int = 0  # Bot API requests through the outgoing gate during the load
    rate_limit: float = 0.0
    unanswered: int = 0
    went_wrong: int = 0
    busy_answers: int = 0
    accepted_signals: set[str] = field(default_factory=set)
    accepted_trades: set[str] = field(default_factory=set)
    paid_orders: set[int] = field(default_factory=set)
    lost_signals: int = 0
    lost_trades: int = 0
    unpaid_orders: int = 0
    task_exceptions: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for key, n in self.statuses.items() if key.rsplit(" ", 1)[1].startswith("5"))

    @property
    def lost(self) -> int:
        return self.lost_signals + self.lost_trades + self.unpaid_orders

    def report(self) -> str:
        def pct(values: list[float], q: int) -> str:
            if len(values) < 2:
                return "n/a"
            value = max(values) if q == 100 else statistics.quantiles(values, n=100, method="inclusive")[q - 1]
            return f"{value * 1000:.0f} ms"

        lines = [f"-- {self.users} chatting users, {self.seconds:.0f} s"]
        lines += [f"   {key}: {n}" for key, n in sorted(self.statuses.items())]
        lines.append(f"   update handling: n={len(self.update_latency)} p50 {pct(self.update_latency, 50)}, "
                     f"p95 {pct(self.update_latency, 95)}, max {pct(self.update_latency, 100)}; "
                     f"unanswered {self.unanswered}, 'something went wrong' {self.went_wrong}, "
                     f"'busy' {self.busy_answers}")
        lines.append(f"   ingest: n={len(self.ingest_latency)} p50 {pct(self.ingest_latency, 50)}, "
                     f"p95 {pct(self.ingest_latency, 95)}, max {pct(self.ingest_latency, 100)}")
        lines.append(f"   outgoing Bot API requests: {self.bot_requests / self.seconds:.1f}/s "
                     f"(TELEGRAM_RATE_LIMIT {self.rate_limit:g}/s: above ~90 % answers queue in the gate)")
        lines.append(f"   bot's event-loop lag: p50 {pct(self.loop_lag, 50)}, p95 {pct(self.loop_lag, 95)}, "
                     f"max {pct(self.loop_lag, 100)}")
        lines.append(f"   lost rows: signals {self.lost_signals}/{len(self.accepted_signals)}, "
                     f"whale trades {self.lost_trades}/{len(self.accepted_trades)}, "
                     f"paid orders not paid {self.unpaid_orders}/{len(self.paid_orders)}")
        lines.append(f"   unretrieved task exceptions: {len(self.task_exceptions)}"
                     + "".join(f"\n     {e}" for e in self.task_exceptions[:5]))
        return "\n".join(lines)


class Chats:
    """Routes the Telegram stand-in's events to the users waiting for the bot's answer."""

    def __init__(self, telegram, figures: Figures) -> None:
        self.telegram, self.figures = telegram, figures
        self.waiting: dict[int, asyncio.Future[tuple[float, str]]] = {}
        self.queue = telegram.subscribe()

    async def pump(self) -> None:
        while True:
            event = await self.queue.get()
            if event.get("type") != "message":
                continue
            message = event["message"]
            if not message.get("from", {}).get("is_bot"):
                continue
            text = message.get("text") or message.get("caption") or ""
            if "something went wrong" in text:
                self.figures.went_wrong += 1
            future = self.waiting.pop(event["chat_id"], None)
            if future is not None and not future.done():
                future.set_result((time.perf_counter(), text))

    async def ask(self, user_id: int, text: str) -> tuple[float, str] | None:
        future = asyncio.get_running_loop().create_future()
        self.waiting[user_id] = future
        sent = time.perf_counter()
        self.telegram.send_text(user_id, text)
        try:
            answered, reply = await asyncio.wait_for(future, ANSWER_TIMEOUT)
        except TimeoutError:
            self.waiting.pop(user_id, None)
            return None
        return answered - sent, reply


async def chat(chats: Chats, user_id: int, figures: Figures, until: float) -> None:
    chats.telegram.add_user(user_id, f"User {user_id}", username=f"user{user_id}")
    rng = random.Random(user_id)
    await asyncio.sleep(rng.uniform(0, 1.5))
    while time.monotonic() < until:
        answer = await chats.ask(user_id, rng.choice(COMMANDS))
        if answer is None:
            figures.unanswered += 1
        else:
            figures.update_latency.append(answer[0])
            if "busy" in answer[1].lower():
                figures.busy_answers += 1
        await asyncio.sleep(rng.uniform(1.5, 3.5))


async def senders(base: str, workers: int, seconds: float) -> dict:
    """The ingest workers (run in a process of their own: senders are other machines, and their CPU is not
    the bot's); returns what they saw."""
    figures = Figures(0, seconds)
    until = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=workers + 5)) as client:
        await asyncio.gather(*(ingest(client, base, w, figures, until) for w in range(workers)))
    return {"statuses": figures.statuses, "latency": figures.ingest_latency,
            "signals": sorted(figures.accepted_signals), "trades": sorted(figures.accepted_trades)}


async def run_senders(base: str, workers: int, seconds: float, figures: Figures) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.mixed_load", "--senders", base, str(workers), str(seconds),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"the ingest senders failed (exit {process.returncode})")
    seen = json.loads(out.decode().strip().splitlines()[-1])
    figures.statuses.update(seen["statuses"])
    figures.ingest_latency += seen["latency"]
    figures.accepted_signals.update(seen["signals"])
    figures.accepted_trades.update(seen["trades"])


async def loop_lag(figures: Figures, until: float, tick: float = 0.05) -> None:
    """How late the bot's event loop wakes a sleeper: CPU saturation shows here first."""
    while time.monotonic() < until:
        started = time.perf_counter()
        await asyncio.sleep(tick)
        figures.loop_lag.append(time.perf_counter() - started - tick)


async def ingest(client: httpx.AsyncClient, base: str, worker: int, figures: Figures, until: float) -> None:
    n = 0
    while time.monotonic() < until:
        n += 1
        signal_id = f"w{worker}-s{n - 1 if n % 10 == 0 else n}"  # every tenth a re-sent duplicate
        body = json.dumps({"id": signal_id, **SIGNAL}).encode()
        if await post(client, base, "/api/signals", body, figures):
            figures.accepted_signals.add(signal_id)
        now = datetime.now(UTC).isoformat()
        trades = [{"id": f"w{worker}-t{n}-{i}", "wallet": f"wallet{worker % 5}", "chain": "solana",
                   "symbol": "SOL", "side": "buy", "usd_value": "125000", "pnl_usd": "3400", "ts": now}
                  for i in range(3)]
        body = json.dumps({"trades": trades}).encode()
        if await post(client, base, "/api/whales/trades", body, figures):
            figures.accepted_trades.update(t["id"] for t in trades)


async def post(client: httpx.AsyncClient, base: str, path: str, body: bytes, figures: Figures) -> bool:
    started = time.perf_counter()
    try:
        response = await client.post(base + path, content=body, headers=signed_headers(SECRET, body))
        status = str(response.status_code)
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    figures.ingest_latency.append(time.perf_counter() - started)
    figures.statuses[f"POST {path} {status}"] += 1
    return status in ("200", "202")


async def pay(sb, payer: int, figures: Figures, until: float) -> None:
    sb.telegram.add_user(payer, f"Payer {payer}")
    await sb.app.users.seen(payer, username=None, first_name="Payer", language_code="en")
    while time.monotonic() < until:
        placed = await sb.app.plan_shop.place(payer, "basic", "month")
        result = await sb.app.checkout.start(placed.order.id, payer, "cryptopay")
        if result.problem is None:
            sb.cryptopay.pay(result.invoice.external_id)  # the stand-in posts its signed webhook to the bot
            figures.paid_orders.add(placed.order.id)
        await asyncio.sleep(0.5)


async def count_lost(sb, figures: Figures) -> None:
    async with sb.app.db.session() as session:
        stored = set(await session.scalars(select(Signal.external_id).where(
            Signal.external_id.in_(figures.accepted_signals))))
        figures.lost_signals = len(figures.accepted_signals - stored)
        stored_trades = await session.scalar(select(func.count()).select_from(WhaleTrade).where(
            WhaleTrade.external_id.in_(figures.accepted_trades)))
        figures.lost_trades = len(figures.accepted_trades) - stored_trades
        paid = await session.scalar(select(func.count()).select_from(Order).where(
            Order.id.in_(figures.paid_orders), Order.status.in_(("paid", "fulfilled"))))
        figures.unpaid_orders = len(figures.paid_orders) - paid


async def measure(data_dir: Path | str, *, users: int, ingest_workers: int = 20, payers: int = 2,
                  seconds: float = 35.0, database_url: str | None = None) -> Figures:
    """One run; returns its figures (also used by tests/e2e/test_mixed_load.py)."""
    figures = Figures(users, seconds)
    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()

    def on_loop_error(_loop, context) -> None:
        figures.task_exceptions.append(f"{context.get('message')}: {context.get('exception')!r}")

    loop.set_exception_handler(on_loop_error)
    overrides = {"database_url": database_url} if database_url else {}
    try:
        async with running_sandbox(data_dir, signal_webhook_secret=SECRET, payment_poll_interval_seconds=5,
                                   **overrides) as sb:
            gc.freeze()  # as run.py does once the bot is up (undone below: tests run this too)
            chats = Chats(sb.telegram, figures)
            pump = asyncio.create_task(chats.pump())
            base = f"http://127.0.0.1:{sb.app.port}"
            until = time.monotonic() + seconds
            figures.rate_limit, dispatched = sb.settings.telegram_rate_limit, sb.app.gate.stats.dispatched
            await asyncio.gather(
                run_senders(base, ingest_workers, seconds, figures), loop_lag(figures, until),
                *(pay(sb, FIRST_PAYER + p, figures, until) for p in range(payers)),
                *(chat(chats, FIRST_USER + u, figures, until) for u in range(users)))
            figures.bot_requests = sb.app.gate.stats.dispatched - dispatched
            settled = time.monotonic() + SETTLE_SECONDS  # the last webhooks land
            await count_lost(sb, figures)
            while figures.unpaid_orders and time.monotonic() < settled:
                await asyncio.sleep(0.1)
                await count_lost(sb, figures)
            for delivery in sb.cryptopay.webhook_deliveries:
                figures.statuses[f"POST /webhooks/cryptopay {delivery.status or delivery.error}"] += 1
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        gc.unfreeze()
        gc.collect()  # a failed task that nobody awaited reports itself when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous_handler)
    return figures


async def run() -> None:
    seconds = float(os.environ.get("BENCH_MIXED_SECONDS", "35"))
    workers = int(os.environ.get("BENCH_MIXED_INGEST", "20"))
    payers = int(os.environ.get("BENCH_MIXED_PAYERS", "2"))
    logging.basicConfig(level=logging.CRITICAL)
    for users in (int(n) for n in os.environ.get("BENCH_MIXED_USERS", "20,60").split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-mixed-") as data_dir:
            figures = await measure(data_dir, users=users, ingest_workers=workers, payers=payers,
                                    seconds=seconds, database_url=os.environ.get("DATABASE_URL"))
        print(figures.report(), flush=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--senders"]:
    print(json.dumps(asyncio.run(senders(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))), flush=True)
