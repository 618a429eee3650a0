"""/start handling rate, as a ratio to a bare aiogram bot on the same Telegram stand-in in the same run.

N distinct users each send /start (first contact: a user row is written) and then /help; the clock
stops when every reply has reached the stand-in. The same N updates then go, in the same process,
to a bare aiogram bot (a Dispatcher with two handlers, no database, no middleware) polling its own
stand-in. The bare bot sends the very replies the app sent (the same text and keyboard, taken from the
app's run): the stand-in parses and echoes every message in this process, so a longer reply costs CPU here
whoever sends it, and the ratio must compare the bots, not the length of their texts. The ratio app/bare is
what to compare across machines. The
outgoing gate is set to its maximum (1,000 req/s) so the figure is the bot's own ceiling, not
Telegram's limit. Both bots run as run.py runs ours: `gc.freeze()` once started, so neither pays for
garbage collections that walk everything imported (the bare bot shares this process with the whole app's
modules; without it, its full collections walked ~380,000 objects each and its rate was understated).
`BENCH_USERS` (default 1,000) sets N, `BENCH_ROUNDS` (default 1) repeats the pair and then prints each
phase's median ratio (the machine may be shared: compare ratios, and several rounds rather than one).
Each line also gives the process's CPU time per update and bare/app of it: time spent descheduled by other
work on the machine does not count there, so on a busy machine it moves less than the wall-time ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.filters import Command, CommandStart
from aiogram.types import InlineKeyboardMarkup, Message

from bot.app import App
from config.settings import Settings
from sandbox.runner import SANDBOX_TOKEN
from sandbox.telegram import TelegramStandIn

USERS = int(os.environ.get("BENCH_USERS", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
PHASES = (("new users, /start", "/start"), ("known users, /help", "/help"))
#: first user id (each round starts a fresh database and stand-in, so /start always comes from new users)
ID_BASE = 10_000


@dataclass(frozen=True)
class Rate:
    per_second: float  # updates per second of wall time
    cpu_ms: float  # this process's CPU time per update (bot and stand-in), in ms


async def _drive(telegram: TelegramStandIn, command: str, first_id: int) -> Rate:
    """Send `command` from USERS users and measure until every reply has arrived."""
    before = len(telegram.calls_of("sendMessage"))
    started, cpu = time.perf_counter(), time.process_time()
    for uid in range(first_id, first_id + USERS):
        telegram.send_text(uid, command)
    await telegram.wait_for(lambda: len(telegram.calls_of("sendMessage")) - before >= USERS, timeout=600)
    return Rate(USERS / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / USERS)


Reply = tuple[str, InlineKeyboardMarkup | None]


def bare_dispatcher(replies: dict[str, Reply]) -> Dispatcher:
    """What aiogram's own examples start with: two command handlers answering fixed replies."""
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        text, markup = replies["/start"]
        await message.answer(text, reply_markup=markup)

    @dp.message(Command("help"))
    async def help_(message: Message) -> None:
        text, markup = replies["/help"]
        await message.answer(text, reply_markup=markup)

    return dp


def last_reply(telegram: TelegramStandIn) -> Reply:
    """The last message the bot sent, as aiogram would send it again."""
    sent = telegram.calls_of("sendMessage")[-1].params
    markup = sent.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup)
    return sent["text"], InlineKeyboardMarkup.model_validate(markup) if markup else None


async def _bare_rates(first_id: int, replies: dict[str, Reply]) -> list[Rate]:
    async with TelegramStandIn(rate_limit=None) as telegram:
        bot = Bot(SANDBOX_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)),
                  default=DefaultBotProperties(parse_mode=ParseMode.HTML))
        dp = bare_dispatcher(replies)
        polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=True))
        gc.freeze()  # as for the app below
        try:
            return [await _drive(telegram, command, first_id) for _, command in PHASES]
        finally:
            await dp.stop_polling()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            gc.unfreeze()


async def _app_rates(first_id: int) -> tuple[list[Rate], dict[str, Reply]]:
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
                rates, replies = [], {}
                for _, command in PHASES:
                    rates.append(await _drive(telegram, command, first_id))
                    replies[command] = last_reply(telegram)
                return rates, replies
            finally:
                await app.stop()
                gc.unfreeze()


async def measure() -> list[tuple[str, Rate, Rate]]:
    """One pair of runs, the app first (the bare bot sends the replies it sent): [(phase, app, bare aiogram)]."""
    app, replies = await _app_rates(ID_BASE)
    bare = await _bare_rates(ID_BASE, replies)
    return [(label, a, b) for (label, _), a, b in zip(PHASES, app, bare, strict=True)]


async def run() -> None:
    ratios: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in PHASES}
    for round_ in range(1, ROUNDS + 1):
        for label, app, bare in await measure():
            ratio, cpu_ratio = app.per_second / bare.per_second, bare.cpu_ms / app.cpu_ms
            ratios[label].append((ratio, cpu_ratio))
            print(f"{label:20} app {app.per_second:7.1f}/s  bare aiogram {bare.per_second:7.1f}/s  "
                  f"ratio {ratio:5.2f}x  (CPU per update: app {app.cpu_ms:.2f} ms, bare {bare.cpu_ms:.2f} ms, "
                  f"{cpu_ratio:.2f}x; {USERS} updates{f', round {round_}' if ROUNDS > 1 else ''})")
    if ROUNDS > 1:
        for label, values in ratios.items():
            print(f"{label:20} median ratio {statistics.median(r for r, _ in values):5.2f}x, "
                  f"by CPU time {statistics.median(c for _, c in values):5.2f}x over {ROUNDS} rounds")
