"""End-to-end fixtures: the real App (as run.py builds it) against the stand-ins over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import App
from sandbox.runner import SANDBOX_TOKEN
from sandbox.telegram import TelegramStandIn
from tests.conftest import ADMIN_ID, make_settings


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn(rate_limit=None) as stand_in:
        yield stand_in


@pytest.fixture
async def app(telegram, database_url) -> AsyncIterator[App]:
    settings = make_settings(
        telegram_bot_token=SANDBOX_TOKEN, telegram_api_url=telegram.base_url,
        database_url=database_url, web_port=0, admin_ids=[ADMIN_ID],
    )
    application = App(settings)
    await application.start()
    yield application
    await application.stop()
