"""Editing a message in place. A repeated tap asks Telegram to show what the message already shows,
and Telegram answers "message is not modified": that is success, not an error."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, Message

NOT_MODIFIED = "message is not modified"


def not_modified(error: BaseException) -> bool:
    return isinstance(error, TelegramBadRequest) and NOT_MODIFIED in error.message


async def edit_or_keep(message: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Show `text` (and `markup`) in `message`; already showing it counts as done."""
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        if not not_modified(exc):
            raise
