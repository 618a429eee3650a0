"""/help and the Help menu item."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.commands import all_commands
from bot.keyboards import Menu, back_to_menu
from bot.screens import show
from bot.wiring import Services
from services.products import Command as CommandSpec
from services.products import text


def help_text(commands: list[CommandSpec]) -> str:
    """One line per command that has one, in the order of the command list."""
    lines = [text(c.help) for c in commands if c.help is not None]
    return _("<b>How it works</b>") + "\n\n" + "\n".join(lines)


async def show_help(event: Message | CallbackQuery, services: Services) -> None:
    await show(event, help_text(all_commands(services.products.commands)), back_to_menu())


def build_router() -> Router:
    router = Router(name="help")
    router.message.register(show_help, Command("help"))
    router.callback_query.register(show_help, Menu.filter(F.section == "help"))
    return router
