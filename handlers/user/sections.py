"""Menu sections whose products are still being built: an honest 'opens soon' screen."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import Menu, back_to_menu

PENDING_SECTIONS: tuple[str, ...] = ()
PENDING_COMMANDS: tuple[str, ...] = ()


def opens_soon() -> str:
    return _("🚧 This section opens soon. We'll let you know when it's ready.")


def build_router() -> Router:
    router = Router(name="sections")

    if PENDING_COMMANDS:  # every section is open now; kept for the next one still being built
        @router.message(Command(*PENDING_COMMANDS))
        async def pending_command(message: Message):
            await message.answer(opens_soon(), reply_markup=back_to_menu())

    @router.callback_query(Menu.filter(F.section.in_(PENDING_SECTIONS)))
    async def pending_menu(query: CallbackQuery):
        await query.message.edit_text(opens_soon(), reply_markup=back_to_menu())
        await query.answer()

    return router
