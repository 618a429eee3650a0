"""Keeps each running broadcast's progress message up to date (a scheduler job), and closes the
broadcast when nothing is left to send."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.broadcasts import BroadcastService, Progress
from services.users import UserService

log = logging.getLogger(__name__)


class BroadcastCancel(CallbackData, prefix="bcx"):
    id: int


def progress_text(p: Progress) -> str:
    if p.broadcast.status == "cancelled":
        head = _("⛔ Broadcast #{id} cancelled.").format(id=p.broadcast.id)
    elif p.finished:
        head = _("✅ Broadcast #{id} finished.").format(id=p.broadcast.id)
    else:
        head = _("📣 Broadcast #{id} is sending…").format(id=p.broadcast.id)
    return head + "\n\n" + _(
        "Sent: {sent} of {total}\nBlocked the bot: {blocked}\nFailed: {failed}\nWaiting: {waiting}"
        "\nNot sent (cancelled): {cancelled}").format(
        sent=p.sent, total=p.total, blocked=p.blocked, failed=p.failed, waiting=p.waiting, cancelled=p.cancelled)


def cancel_keyboard(broadcast_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("⛔ Cancel broadcast"), callback_data=BroadcastCancel(id=broadcast_id))
    return builder.as_markup()


class BroadcastProgress:
    def __init__(self, broadcasts: BroadcastService, bot: Bot, users: UserService, i18n: I18n) -> None:
        self.broadcasts, self.bot, self.users, self.i18n = broadcasts, bot, users, i18n
        self._shown: dict[int, str] = {}

    async def tick(self) -> None:
        for broadcast_id in await self.broadcasts.running():
            progress = await self.broadcasts.progress(broadcast_id)
            if progress is None:
                continue
            if progress.finished and await self.broadcasts.finish(broadcast_id):
                progress = await self.broadcasts.progress(broadcast_id)
            await self.show(progress)

    async def show(self, progress: Progress) -> None:
        b = progress.broadcast
        if b.progress_chat_id is None or b.progress_message_id is None:
            return
        user = await self.users.get(b.progress_chat_id)
        with self.i18n.context(), self.i18n.use_locale(user.language if user else self.i18n.default_locale):
            text = progress_text(progress)
            markup = cancel_keyboard(b.id) if b.status == "sending" else None
        if self._shown.get(b.id) == text:
            return
        try:
            await self.bot.edit_message_text(text=text, chat_id=b.progress_chat_id, message_id=b.progress_message_id,
                                             reply_markup=markup)
            self._shown[b.id] = text
        except TelegramAPIError as exc:
            log.debug("broadcast %s progress not shown: %s", b.id, exc.message)
        if b.status != "sending":
            self._shown.pop(b.id, None)
