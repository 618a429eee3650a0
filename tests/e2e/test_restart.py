"""Kill -9 between payment and fulfilment: a fresh process delivers the order exactly once.

The bot runs as a real `python run.py` process against the sandbox stand-ins (started here), so
the kill is a real SIGKILL, not a polite shutdown."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from config.settings import Settings
from db.engine import Database
from sandbox.runner import Sandbox
from services.orders import OrderService, Status

ROOT = Path(__file__).resolve().parents[2]
BUYER = 801


def bot_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_", "ADMIN_"))}
    for name in ("telegram_bot_token", "telegram_api_url", "crypto_pay_token", "crypto_pay_api_url",
                 "openrouter_api_url", "openrouter_management_key", "database_url", "web_port",
                 "payment_poll_interval_seconds"):
        value = getattr(settings, name)
        env[name.upper()] = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    env["ADMIN_IDS"] = ",".join(map(str, settings.admin_ids))
    env["LOG_LEVEL"] = "WARNING"
    return env


async def start_bot(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(sys.executable, "run.py", cwd=ROOT, env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    async with httpx.AsyncClient() as client:
        for _ in range(600):  # 60 s: a loaded machine can take long to import the bot
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError(f"bot did not start: {(await proc.stderr.read()).decode()[-2000:]}")


def texts(sb, fragment):
    return [m for m in sb.telegram.chat_messages(BUYER, bot_only=True) if fragment in m.get("text", "")]


async def test_killed_between_paid_and_fulfilled_delivers_once_after_restart(tmp_path, unused_tcp_port):
    sb = Sandbox(rate_limit=None)
    base = Settings(_env_file=None, web_port=unused_tcp_port, stars_enabled=False,
                    payment_poll_interval_seconds=1)
    settings = await sb.start(base, database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    env, db = bot_env(settings), Database(settings.database_url)
    orders = OrderService(db)
    first = await start_bot(env, unused_tcp_port)
    second = None
    try:
        sb.telegram.add_user(BUYER, "Buyer")
        sb.telegram.send_text(BUYER, "/tokens")
        await sb.telegram.wait_for(lambda: texts(sb, "Pick a model"))
        sb.telegram.press_button(BUYER, "OpenAI: GPT-4o-mini")
        await sb.telegram.wait_for(lambda: texts(sb, "Choose a package"))
        sb.telegram.press_button(BUYER, "Starter · 10,000")
        await sb.telegram.wait_for(lambda: texts(sb, "Choose how to pay"))
        sb.telegram.press_button(BUYER, "Crypto Pay")
        await sb.telegram.wait_for(lambda: texts(sb, "accept our terms"))
        sb.telegram.press_button(BUYER, "I accept")
        await sb.telegram.wait_for(lambda: texts(sb, "Pay $0.01"))
        [order] = await orders.for_user(BUYER)
        [invoice] = await orders.invoices(order.id)

        sb.openrouter.down = True  # fulfilment cannot finish...
        sb.cryptopay.pay(invoice.external_id)

        async def paid_and_tried():
            status = (await orders.get(order.id)).status
            return status == Status.PAID and any(c.status == 503 for c in sb.openrouter.calls)
        await sb.telegram.wait_for(paid_and_tried, timeout=60)
        first.send_signal(signal.SIGKILL)  # ...and the process dies
        await first.wait()

        sb.openrouter.down = False
        second = await start_bot(env, unused_tcp_port)

        async def fulfilled():
            return (await orders.get(order.id)).status == Status.FULFILLED
        await sb.telegram.wait_for(fulfilled, timeout=60)
        await sb.telegram.wait_for(lambda: texts(sb, "Your AI tokens are ready"), timeout=10)
        await asyncio.sleep(1)  # anything duplicated would arrive now
        assert len(texts(sb, "Your AI tokens are ready")) == 1
        assert len([k for k in sb.openrouter.keys.values() if k.name == f"order-{order.id}"]) == 1
        assert len(await orders.payments(order.id)) == 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 20)
        await db.close()
        await sb.stop()
