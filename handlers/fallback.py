"""Whatever no other router took: unknown text, unknown commands, stale or forged buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.screens import refuse


async def unknown_message(message: Message) -> None:
    await message.answer(_("I didn't understand that. Send /start for the menu or /help for the list "
                           "of commands."))


async def unknown_button(query: CallbackQuery) -> None:
    await refuse(query, _("This button is no longer active. Send /start for a fresh menu."))


def build_router() -> Router:
    router = Router(name="fallback")
    router.message.register(unknown_message, F.chat.type == "private")
    router.callback_query.register(unknown_button)
    return router
