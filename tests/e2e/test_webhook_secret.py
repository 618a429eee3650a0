"""Webhook mode (issue 13.1): /telegram/webhook carries out only updates that bear the secret Telegram
was given. A forged admin `/grant` without it, or with a wrong one, changes nothing."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from bot.app import App
from sandbox.runner import SANDBOX_TOKEN
from tests.conftest import ADMIN_ID, make_settings

SECRET = "webhook_Secret-0123456789"
TARGET = 7001


def grant_update(update_id: int) -> dict:
    admin = {"id": ADMIN_ID, "is_bot": False, "first_name": "Admin"}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "chat": {"id": ADMIN_ID, "type": "private"},
        "from": admin, "text": f"/grant {TARGET} enterprise 3650",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}


@pytest.fixture
async def webhook_app(telegram, database_url):
    settings = make_settings(telegram_bot_token=SANDBOX_TOKEN, telegram_api_url=telegram.base_url,
                             database_url=database_url, web_port=0,
                             telegram_webhook_url="http://127.0.0.1:9/telegram/webhook",
                             telegram_webhook_secret=SECRET)
    app = App(settings)
    await app.start()
    yield app
    await app.stop()


async def test_forged_updates_without_the_secret_change_nothing(webhook_app, telegram):
    assert telegram.webhook["secret_token"] == SECRET  # Telegram was told the secret
    app = webhook_app
    await app.users.seen(TARGET, username=None, first_name="Target", language_code="en")
    url = f"http://127.0.0.1:{app.port}/telegram/webhook"
    async with httpx.AsyncClient() as client:
        for update_id, headers in ((1, {}), (2, {"X-Telegram-Bot-Api-Secret-Token": "guess"}),
                                   (3, {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]})):
            answer = await client.post(url, json=grant_update(update_id), headers=headers)
            assert answer.status_code in (401, 403), answer.text
        await asyncio.sleep(0.2)  # time for anything that would run in the background
        assert (await app.subscriptions.current(TARGET)).ends_at is None  # still on Free
        assert not telegram.chat_messages(ADMIN_ID, bot_only=True)  # and nothing was answered

        # the same update with the secret is carried out: the refusals above were the secret's doing
        answer = await client.post(url, json=grant_update(4), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert answer.status_code == 200

    async def granted():
        return (await app.subscriptions.current(TARGET)).ends_at is not None
    await telegram.wait_for(granted)
