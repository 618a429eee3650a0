"""/help and the Help menu item."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import Menu, back_to_menu


def help_text() -> str:
    return _(
        "<b>How it works</b>\n\n"
        "/tokens — buy AI tokens: pick a model and a package, pay, get your API key\n"
        "/plans — signal subscription plans\n"
        "/signals — your subscription, latest signals and filters\n"
        "/whales — whale leaderboards\n"
        "/performance — the signals' verifiable track record\n"
        "/orders — your orders and their status\n"
        "/settings — language\n"
        "/terms — terms of service\n"
        "/paysupport — a problem with a payment? Write to us\n"
        "/cancel — stop what you are doing"
    )


def build_router() -> Router:
    router = Router(name="help")

    @router.message(Command("help"))
    async def help_command(message: Message):
        await message.answer(help_text(), reply_markup=back_to_menu())

    @router.callback_query(Menu.filter(F.section == "help"))
    async def help_menu(query: CallbackQuery):
        await query.message.edit_text(help_text(), reply_markup=back_to_menu())
        await query.answer()

    return router
