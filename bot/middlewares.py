"""Update middlewares: logging and metrics, user recording, throttling."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import cache
from time import perf_counter
from typing import Any

from aiogram import BaseMiddleware
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User
from aiogram.utils.i18n import gettext as _
from prometheus_client import Counter

from bot.screens import acknowledge
from db.engine import is_busy
from services.users import UserInfo, UserService
from transport import metrics
from transport.logs import update_context

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


@cache
def _updates_counter(update_type: str) -> Counter:
    """The `UPDATES` child for one update type (`labels()` costs a lock and a lookup per call)."""
    return metrics.UPDATES.labels(type=update_type)


class ObserveMiddleware(BaseMiddleware):
    """Outermost: tags log lines with update/user ids, logs one line, records metrics."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        token = update_context.set(f"update={event.update_id} user={user.id if user else '-'}")
        started = perf_counter()
        try:
            return await handler(event, data)
        finally:
            elapsed = perf_counter() - started
            update_type = event.event_type
            _updates_counter(update_type).inc()
            metrics.HANDLER_LATENCY.observe(elapsed)
            log.info("%s handled in %.1f ms", update_type, elapsed * 1000)
            update_context.reset(token)


#: Pauses between tries of the sender's bookkeeping write when the database is busy; after the last one
#: the error goes to bot.errors, which tells the user to try again in a moment.
BUSY_RETRY_DELAYS = (0.1, 0.3, 0.6)


class UserMiddleware(BaseMiddleware):
    """Records the sender (see UserService.seen) and puts `user_info` in the handler data. Updates
    from users an admin banned from the bot go no further (admins cannot be banned out): the first one
    after the ban is answered "access is closed" in the user's language, the rest get silence.

    The write is short and idempotent, so a busy database gets it retried a few times."""

    def __init__(self, users: UserService, admin_ids: list[int] | None = None) -> None:
        self.users, self.admin_ids = users, set(admin_ids or ())
        self._told_banned: set[int] = set()  # banned users already told (saves a write per ignored update)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            data["user_info"] = info = await self._seen(user)
            if info.is_banned and user.id not in self.admin_ids:
                await self._tell_banned(info, data)
                return None
            self._told_banned.discard(user.id)  # unbanned: a later ban is told again
        return await handler(event, data)

    async def _tell_banned(self, info: UserInfo, data: dict[str, Any]) -> None:
        if info.id in self._told_banned:
            return
        first = await self.users.take_ban_notice(info.id)
        self._told_banned.add(info.id)  # from now on no database write per ignored update
        if not first:
            return
        i18n = data["services"].i18n  # the locale middleware runs after this one
        with i18n.context(), i18n.use_locale(info.language):
            text = _("⛔ Access to this bot is closed for your account.")
        try:
            await data["bot"].send_message(info.id, text)
        except TelegramAPIError as exc:
            log.info("could not tell banned user %s: %s", info.id, exc.message)

    async def _seen(self, user: User) -> UserInfo:
        for delay in (*BUSY_RETRY_DELAYS, None):
            try:
                return await self.users.seen(user.id, username=user.username, first_name=user.first_name,
                                             language_code=user.language_code)
            except Exception as exc:
                if delay is None or not is_busy(exc):
                    raise
                log.info("database busy recording user %s; retrying in %g s", user.id, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


class ThrottleMiddleware(BaseMiddleware):
    """At most `limit` messages/taps per user per `window` seconds.

    The first one over the limit gets a polite notice; the rest are dropped quietly
    until the window has room again.
    """

    def __init__(
        self, limit: int = 8, window: float = 5.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[int, list[float]] = {}
        self._warned: set[int] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or not self._allow(user.id):
            if user is not None and user.id not in self._warned:
                self._warned.add(user.id)
                await self._notify(event)
            return None
        self._warned.discard(user.id)
        return await handler(event, data)

    def _allow(self, user_id: int) -> bool:
        now = self.clock()
        hits = [t for t in self._hits.get(user_id, ()) if now - t < self.window]
        allowed = len(hits) < self.limit
        if allowed:
            hits.append(now)
        self._hits[user_id] = hits
        if len(self._hits) > 10_000:  # forget idle users
            self._hits = {k: v for k, v in self._hits.items() if v and now - v[-1] < self.window}
        return allowed

    @staticmethod
    async def _notify(event: TelegramObject) -> None:
        text = _("You're going a bit fast — please wait a few seconds and try again.")
        if isinstance(event, Message):
            await event.answer(text)
        elif isinstance(event, CallbackQuery):
            await acknowledge(event, text)
