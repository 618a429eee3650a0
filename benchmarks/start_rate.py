"""/start handling rate, as a ratio to a bare aiogram bot on the same Telegram stand-in in the same run.

N distinct users each send /start (first contact: a user row is written) and then /help; the clock
stops when every reply has reached the stand-in. The same N updates then go, in the same process,
to a bare aiogram bot (a Dispatcher with two handlers that answer a fixed text, no database, no
middleware) polling its own stand-in. The ratio app/bare is what to compare across machines. The
outgoing gate is set to its maximum (1,000 req/s) so the figure is the bot's own ceiling, not
Telegram's limit. `BENCH_USERS` (default 1,000) sets N, `BENCH_ROUNDS` (default 1) repeats the pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import tempfile
import time

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.filters import Command, CommandStart
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.app import App
from config.settings import Settings
from sandbox.runner import SANDBOX_TOKEN
from sandbox.telegram import TelegramStandIn

USERS = int(os.environ.get("BENCH_USERS", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
PHASES = (("new users, /start", "/start"), ("known users, /help", "/help"))
#: first user id (each round starts a fresh database and stand-in, so /start always comes from new users)
ID_BASE = 10_000


async def _drive(telegram: TelegramStandIn, command: str, first_id: int) -> float:
    """Send `command` from USERS users and return updates/s until every reply has arrived."""
    before = len(telegram.calls_of("sendMessage"))
    started = time.perf_counter()
    for uid in range(first_id, first_id + USERS):
        telegram.send_text(uid, command)
    await telegram.wait_for(lambda: len(telegram.calls_of("sendMessage")) - before >= USERS, timeout=600)
    return USERS / (time.perf_counter() - started)


def bare_dispatcher() -> Dispatcher:
    """What aiogram's own examples start with: two command handlers answering fixed text."""
    dp = Dispatcher()
    menu = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Menu", callback_data="m")]])

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"👋 Hi, {message.from_user.first_name}!", reply_markup=menu)

    @dp.message(Command("help"))
    async def help_(message: Message) -> None:
        await message.answer("Help text")

    return dp


async def _bare_rates(first_id: int) -> list[float]:
    async with TelegramStandIn(rate_limit=None) as telegram:
        bot = Bot(SANDBOX_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)),
                  default=DefaultBotProperties(parse_mode=ParseMode.HTML))
        dp = bare_dispatcher()
        polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=True))
        try:
            return [await _drive(telegram, command, first_id) for _, command in PHASES]
        finally:
            await dp.stop_polling()
            with contextlib.suppress(asyncio.CancelledError):
                await polling


async def _app_rates(first_id: int) -> list[float]:
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
                return [await _drive(telegram, command, first_id) for _, command in PHASES]
            finally:
                await app.stop()
                gc.unfreeze()


async def measure() -> list[tuple[str, float, float]]:
    """One pair of runs, bare aiogram first: [(phase, app updates/s, bare aiogram updates/s)]."""
    bare = await _bare_rates(ID_BASE)
    app = await _app_rates(ID_BASE)
    return [(label, a, b) for (label, _), a, b in zip(PHASES, app, bare, strict=True)]


async def run() -> None:
    for round_ in range(1, ROUNDS + 1):
        for label, app, bare in await measure():
            print(f"{label:20} app {app:7.1f}/s  bare aiogram {bare:7.1f}/s  ratio {app / bare:5.2f}x"
                  f"  ({USERS} updates{f', round {round_}' if ROUNDS > 1 else ''})")
