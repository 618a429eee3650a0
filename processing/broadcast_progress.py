"""Keeps each running broadcast's progress message up to date (a scheduler job), and closes the
broadcast when nothing is left to send."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import RowId
from presentation.broadcasts import progress_text
from processing.notify import Notifier
from services.broadcasts import BroadcastService, Progress


class BroadcastCancel(CallbackData, prefix="bcx"):
    id: RowId


def cancel_keyboard(broadcast_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("⛔ Cancel broadcast"), callback_data=BroadcastCancel(id=broadcast_id))
    return builder.as_markup()


class BroadcastProgress:
    def __init__(self, broadcasts: BroadcastService, notifier: Notifier) -> None:
        self.broadcasts, self.notifier = broadcasts, notifier
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
        text = await self.notifier.render(b.progress_chat_id, lambda: progress_text(progress))
        if self._shown.get(b.id) == text:
            return
        markup = (lambda: cancel_keyboard(b.id)) if b.status == "sending" else None
        if await self.notifier.edit(b.progress_chat_id, b.progress_message_id, lambda: text, markup):
            self._shown[b.id] = text
        if b.status != "sending":
            self._shown.pop(b.id, None)
