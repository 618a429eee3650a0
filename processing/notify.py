"""Messages the bot sends on its own (payment news, deliveries, alerts), each in the
recipient's language."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n

from db.models import User
from services.users import UserService

log = logging.getLogger(__name__)
Render = Callable[[], str]
RenderMarkup = Callable[[], InlineKeyboardMarkup | None]
T = TypeVar("T")


class Notifier:
    def __init__(self, bot: Bot, users: UserService, i18n: I18n, admin_ids: list[int]) -> None:
        self.bot, self.users, self.i18n, self.admin_ids = bot, users, i18n, admin_ids

    async def language(self, user_id: int) -> str:
        return self._language_of(await self.users.get(user_id))

    def _language_of(self, user: User | None) -> str:
        return user.language if user else self.i18n.default_locale

    async def render(self, user_id: int, render: Callable[[], T]) -> T:
        with self.i18n.context(), self.i18n.use_locale(await self.language(user_id)):
            return render()

    async def send(self, user_id: int, render: Render, markup: RenderMarkup | None = None,
                   *, strict: bool = False, skip_blocked: bool = False,
                   reply_to: int | None = None) -> Message | None:
        """Send in the user's language (as a reply to message `reply_to` of their chat, if given). With
        `strict`, delivery errors are raised to the caller. With `skip_blocked`, nothing is sent (None) to a
        user who blocked the bot or never used it."""
        user = await self.users.get(user_id)
        if skip_blocked and (user is None or user.is_blocked):
            return None
        with self.i18n.context(), self.i18n.use_locale(self._language_of(user)):
            text, keyboard = render(), markup() if markup else None
        try:
            return await self.bot.send_message(user_id, text, reply_markup=keyboard, reply_to_message_id=reply_to)
        except TelegramForbiddenError:
            if strict:
                raise
            log.info("user %s has blocked the bot; message not delivered", user_id)
        except TelegramAPIError as exc:
            if strict:
                raise
            log.warning("message to %s not delivered: %s", user_id, exc.message)
        return None

    async def edit(self, chat_id: int, message_id: int, render: Render, markup: RenderMarkup | None = None) -> bool:
        """Edit in the chat's language; False when Telegram refused (the error is only logged)."""
        with self.i18n.context(), self.i18n.use_locale(await self.language(chat_id)):
            text, keyboard = render(), markup() if markup else None
        try:
            await self.bot.edit_message_text(text=text, chat_id=chat_id, message_id=message_id,
                                             reply_markup=keyboard)
        except TelegramAPIError as exc:  # deleted, too old, or an invoice (not editable): fine
            log.debug("could not edit %s/%s: %s", chat_id, message_id, exc.message)
            return False
        return True

    async def delete(self, chat_id: int, message_id: int) -> None:
        try:
            await self.bot.delete_message(chat_id, message_id)
        except TelegramAPIError as exc:
            log.debug("could not delete %s/%s: %s", chat_id, message_id, exc.message)

    async def alert_admins(self, render: Render) -> None:
        for admin_id in self.admin_ids:
            await self.send(admin_id, render)
