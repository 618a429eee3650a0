"""/start handling rate: updates per second through the Telegram stand-in over real HTTP.

N distinct users each send /start (first contact: a user row is written) and then /help;
the clock stops when every reply has reached the stand-in. The outgoing gate is set to its
maximum (1,000 req/s) so the figure is the bot's own ceiling, not Telegram's limit.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time

from bot.app import App
from sandbox.runner import SANDBOX_TOKEN
from sandbox.telegram import TelegramStandIn
from services.settings import Settings

USERS = int(os.environ.get("BENCH_USERS", "1000"))


async def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with TelegramStandIn(rate_limit=None) as telegram:
            settings = Settings(_env_file=None, telegram_bot_token=SANDBOX_TOKEN,
                                telegram_api_url=telegram.base_url, web_port=0,
                                telegram_rate_limit=1000,
                                database_url=f"sqlite+aiosqlite:///{tmp}/bench.db")
            app = App(settings)
            await app.start()
            gc.freeze()  # as run.py does
            try:
                for label, command in (("new users, /start", "/start"), ("known users, /help", "/help")):
                    before = len(telegram.calls_of("sendMessage"))
                    started = time.perf_counter()
                    for uid in range(1, USERS + 1):
                        telegram.send_text(10_000 + uid, command)
                    await telegram.wait_for(
                        lambda b=before: len(telegram.calls_of("sendMessage")) - b >= USERS, timeout=600)
                    elapsed = time.perf_counter() - started
                    print(f"{label:22} {USERS} updates in {elapsed:6.2f} s = {USERS / elapsed:7.1f} updates/s")
            finally:
                await app.stop()
