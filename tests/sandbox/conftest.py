"""A real aiogram Bot pointed at the Telegram stand-in (each test module provides its own `tg`)."""

import pytest_asyncio
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer


@pytest_asyncio.fixture
async def bot(tg):
    bot = Bot("123:ABC", session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    yield bot
    # AiohttpSession.close() sleeps 250 ms for TLS shutdown; plain HTTP needs none.
    if bot.session._session is not None:
        await bot.session._session.close()
