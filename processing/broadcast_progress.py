"""Keeps each open broadcast's progress message true (a scheduler job), and closes the broadcast once that
message shows its final state.

A broadcast stays open (`finished_at` unset) after its last row is sent and after a cancel alike, until
nothing is in flight any more (a cancel lets the copies already on their way come back, and counts them) and
the final counts have been shown. An edit Telegram did not take because of flood control outlasting the
gate's retries, a server error or the network is made again at the next tick; a message that cannot be
edited at all (deleted, too old) is given up on."""

from __future__ import annotations

import logging

from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import RowId
from bot.edits import not_modified
from presentation.broadcasts import progress_text
from processing.notify import Notifier
from services.broadcasts import BroadcastService, Progress

log = logging.getLogger(__name__)
#: Errors after which the same edit may well succeed a little later.
PASSING = (TelegramRetryAfter, TelegramServerError, TelegramNetworkError)


class BroadcastCancel(CallbackData, prefix="bcx"):
    id: RowId


def cancel_keyboard(broadcast_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("⛔ Cancel broadcast"), callback_data=BroadcastCancel(id=broadcast_id))
    return builder.as_markup()


class BroadcastProgress:
    def __init__(self, broadcasts: BroadcastService, notifier: Notifier) -> None:
        self.broadcasts, self.notifier = broadcasts, notifier
        self._shown: dict[int, tuple[str, bool]] = {}  # broadcast id -> (text, with the cancel button)

    async def tick(self) -> None:
        for broadcast_id in await self.broadcasts.running():
            progress = await self.broadcasts.progress(broadcast_id)
            if progress is None:
                continue
            if await self.show(progress) and progress.finished:
                await self.broadcasts.finish(broadcast_id)
                self._shown.pop(broadcast_id, None)

    async def show(self, progress: Progress) -> bool:
        """Make the progress message show `progress` (the cancel button only while sending); False when the
        edit has to be made again."""
        b = progress.broadcast
        if b.progress_chat_id is None or b.progress_message_id is None:
            return True
        live = b.status == "sending" and not progress.finished
        i18n = self.notifier.i18n
        with i18n.context(), i18n.use_locale(await self.notifier.language(b.progress_chat_id)):
            text, markup = progress_text(progress), cancel_keyboard(b.id) if live else None
        if self._shown.get(b.id) == (text, live):
            return True
        try:
            await self.notifier.bot.edit_message_text(text=text, chat_id=b.progress_chat_id,
                                                      message_id=b.progress_message_id, reply_markup=markup)
        except PASSING as exc:
            log.warning("progress of broadcast %s not shown (%s); trying again at the next tick",
                        b.id, type(exc).__name__)
            return False
        except TelegramAPIError as exc:
            if not not_modified(exc):  # "not modified": it shows this already (e.g. after a restart)
                log.info("progress of broadcast %s can't be shown: %s", b.id, exc.message)
        self._shown[b.id] = (text, live)
        return True
