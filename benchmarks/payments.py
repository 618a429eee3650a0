"""Payment confirmation: provider "paid" → the buyer's delivery message, by webhook and by polling;
and provider requests per poll tick with 1,000 pending invoices.

Everything runs through the sandbox over real HTTP: Crypto Pay's stand-in marks the invoice paid
(and, in webhook mode, posts the signed webhook); the bot fetches the invoice, records the payment,
fulfils the AI-token order with the OpenRouter stand-in and sends the key.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from sandbox.runner import running_sandbox

WEBHOOK_ORDERS = 40
POLL_ORDERS = 12
POLL_INTERVAL = 2
PENDING = 1000


async def new_invoice(sb, user_id: int):
    sb.telegram.add_user(user_id)
    await sb.app.users.seen(user_id, username=None, first_name="Bench", language_code="en")
    placed = await sb.app.ai_tokens.place(user_id, 0, 5000)
    result = await sb.app.checkout.start(placed.order.id, user_id, "cryptopay")
    return result.invoice


async def latency(sb, user_id: int) -> float:
    invoice = await new_invoice(sb, user_id)
    events = sb.telegram.subscribe()
    try:
        started = time.perf_counter()
        sb.cryptopay.pay(invoice.external_id)
        while True:
            event = await asyncio.wait_for(events.get(), 30)
            message = event.get("message") or {}
            if event.get("chat_id") == user_id and "Your AI tokens are ready" in message.get("text", ""):
                return time.perf_counter() - started
    finally:
        sb.telegram.unsubscribe(events)


def summary(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[max(0, round(0.95 * len(samples)) - 1)]
    return (f"n={len(samples)} p50={statistics.median(samples) * 1000:.0f} ms "
            f"p95={p95 * 1000:.0f} ms max={samples[-1] * 1000:.0f} ms")


async def run() -> None:
    async with running_sandbox(payment_poll_interval_seconds=POLL_INTERVAL, stars_enabled=False) as sb:
        sb.openrouter.credits *= 1000
        webhook = [await latency(sb, 20_000 + i) for i in range(WEBHOOK_ORDERS)]
        print(f"paid → delivered, by webhook:  {summary(webhook)}  (target p95 < 1000 ms)")

        sb.cryptopay.webhook_url = None  # webhooks lost: only polling can notice
        polled = [await latency(sb, 30_000 + i) for i in range(POLL_ORDERS)]
        print(f"paid → delivered, by polling:  {summary(polled)}  "
              f"(target < poll interval {POLL_INTERVAL} s + 1 s)")

        sb.app.scheduler.pause()
        for i in range(PENDING):
            await new_invoice(sb, 40_000 + i)
        before = len(sb.cryptopay.calls_of("getInvoices"))
        started = time.perf_counter()
        await sb.app.payments.poll()
        elapsed = time.perf_counter() - started
        requests = len(sb.cryptopay.calls_of("getInvoices")) - before
        print(f"one poll tick over {PENDING} pending invoices: {requests} provider requests in "
              f"{elapsed * 1000:.0f} ms  (target ≤ 10 requests)")
