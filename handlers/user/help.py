"""/help and the Help menu item."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.commands import all_commands
from bot.keyboards import Menu, back_to_menu
from services.products import Catalog, text
from services.products import Command as CommandSpec


def help_text(commands: list[CommandSpec]) -> str:
    """One line per command that has one, in the order of the command list."""
    lines = [text(c.help) for c in commands if c.help is not None]
    return _("<b>How it works</b>") + "\n\n" + "\n".join(lines)


def build_router() -> Router:
    router = Router(name="help")

    @router.message(Command("help"))
    async def help_command(message: Message, products: Catalog):
        await message.answer(help_text(all_commands(products.commands)), reply_markup=back_to_menu())

    @router.callback_query(Menu.filter(F.section == "help"))
    async def help_menu(query: CallbackQuery, products: Catalog):
        await query.message.edit_text(help_text(all_commands(products.commands)), reply_markup=back_to_menu())
        await query.answer()

    return router
