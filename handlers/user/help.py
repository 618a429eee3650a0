"""/help and the Help menu item."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _

from bot.commands import all_commands
from bot.keyboards import Menu, back_to_menu
from bot.screens import show
from bot.wiring import Services
from services.products import Catalog, text
from services.products import Command as CommandSpec

#: The finished /help per catalog and language: the command list is fixed once the app is built.
_TEXTS: WeakKeyDictionary[Catalog, dict[str, str]] = WeakKeyDictionary()


def help_text(commands: list[CommandSpec]) -> str:
    """One line per command that has one, in the order of the command list."""
    lines = [text(c.help) for c in commands if c.help is not None]
    return _("<b>How it works</b>") + "\n\n" + "\n".join(lines)


async def show_help(event: Message | CallbackQuery, services: Services) -> None:
    texts = _TEXTS.setdefault(services.products, {})
    locale = get_i18n().current_locale
    if locale not in texts:
        texts[locale] = help_text(all_commands(services.products.commands))
    await show(event, texts[locale], back_to_menu())


def build_router() -> Router:
    router = Router(name="help")
    router.message.register(show_help, Command("help"))
    router.callback_query.register(show_help, Menu.filter(F.section == "help"))
    return router
