"""The per-update middlewares: what every update gets (language, log line, metrics), checked directly."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.types import Chat, Message, Update, User
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from prometheus_client import REGISTRY

from bot.i18n import UserLocaleMiddleware, build_i18n
from bot.middlewares import ObserveMiddleware
from services.users import UserInfo
from transport.logs import update_context

CANCELLED = "Cancelled."


def info(language: str) -> UserInfo:
    return UserInfo(7, None, language, False, False, datetime.now(UTC))


def update(update_id: int = 41) -> Update:
    user = User(id=7, is_bot=False, first_name="Ann")
    return Update(update_id=update_id, message=Message(message_id=1, date=datetime.now(UTC), text="/help",
                                                       chat=Chat(id=7, type="private"), from_user=user))


@pytest.mark.parametrize(("stored", "expected"), [("ru", "Отменено."), ("en", CANCELLED), ("xx", CANCELLED)])
async def test_replies_speak_the_stored_language(stored: str, expected: str) -> None:
    i18n = build_i18n()
    middleware = UserLocaleMiddleware(i18n)
    seen: dict[str, Any] = {}

    async def handler(event: Any, data: dict[str, Any]) -> str:
        seen.update(data)
        return _(CANCELLED)

    assert await middleware(handler, object(), {"user_info": info(stored)}) == expected
    assert seen["i18n"] is i18n and seen["i18n_middleware"] is middleware
    assert I18n.get_current(no_error=True) is None  # nothing leaks past the update


async def test_without_a_recorded_user_replies_are_in_the_default_language() -> None:
    async def handler(event: Any, data: dict[str, Any]) -> str:
        return _(CANCELLED)

    assert await UserLocaleMiddleware(build_i18n())(handler, object(), {}) == CANCELLED


async def test_each_update_is_counted_timed_and_logged_with_its_ids(caplog: pytest.LogCaptureFixture) -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("bot_updates_total", {"type": "message"}) or 0.0

    def timed() -> float:
        return REGISTRY.get_sample_value("bot_handler_seconds_count") or 0.0

    tags: list[str] = []

    async def handler(event: Any, data: dict[str, Any]) -> str:
        tags.append(update_context.get())
        return "done"

    counted, timings = count(), timed()
    with caplog.at_level(logging.INFO, logger="bot.middlewares"):
        for update_id in (41, 42):
            assert await ObserveMiddleware()(handler, update(update_id),
                                             {"event_from_user": User(id=7, is_bot=False, first_name="A")}) == "done"
    assert tags == ["update=41 user=7", "update=42 user=7"]
    assert update_context.get() == "-"
    assert count() - counted == 2 and timed() - timings == 2
    assert [r.getMessage().split(" handled in ")[0] for r in caplog.records] == ["message", "message"]


async def test_a_failing_update_is_still_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(event: Any, data: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    before = REGISTRY.get_sample_value("bot_updates_total", {"type": "message"}) or 0.0
    with caplog.at_level(logging.INFO, logger="bot.middlewares"), pytest.raises(RuntimeError):
        await ObserveMiddleware()(handler, update(), {})
    assert REGISTRY.get_sample_value("bot_updates_total", {"type": "message"}) == before + 1
    assert "message handled in" in caplog.text
    assert update_context.get() == "-"
