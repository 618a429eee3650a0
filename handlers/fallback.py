"""Whatever no other router took: unknown text, unknown commands, stale or forged buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _


def build_router() -> Router:
    router = Router(name="fallback")

    @router.message(F.chat.type == "private")
    async def unknown_message(message: Message):
        await message.answer(_("I didn't understand that. Send /start for the menu or /help for the list "
                               "of commands."))

    @router.callback_query()
    async def unknown_button(query: CallbackQuery):
        await query.answer(_("This button is no longer active. Send /start for a fresh menu."),
                           show_alert=True)

    return router
