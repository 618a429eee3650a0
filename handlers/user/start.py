"""/start (with an optional deep-link payload) and the main menu."""

from __future__ import annotations

import html
import re

from aiogram import Bot, F, Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.commands import all_commands, register_admin_commands
from bot.keyboards import Menu, main_menu
from config.settings import Settings
from services.products import Catalog
from services.text import strip_invisible_or_none
from services.users import UserInfo, UserService

REFERRAL = re.compile(r"ref_(\d{1,15})")


def welcome_text(first_name: str | None) -> str:
    return _(
        "👋 Hi, {name}!\n\n"
        "Here you can buy <b>AI tokens</b> for top models, subscribe to <b>trading signals</b> "
        "and follow the <b>whale wallets</b> that are winning right now.\n\n"
        "Choose what you need:"
    ).format(name=html.escape(strip_invisible_or_none(first_name) or _("trader")))


def build_router() -> Router:
    router = Router(name="start")

    @router.message(CommandStart())
    async def start(message: Message, command: CommandObject, user_info: UserInfo, users: UserService,
                    settings: Settings, bot: Bot, i18n: I18n, products: Catalog):
        match = REFERRAL.fullmatch(command.args or "")
        if match and user_info.is_new:
            await users.set_referrer(user_info.id, int(match.group(1)))
        if user_info.is_new and settings.is_admin(user_info.id):
            await register_admin_commands(bot, i18n, user_info.id, all_commands(products.commands))
        await message.answer(welcome_text(message.from_user.first_name), reply_markup=main_menu(products.menu))

    @router.callback_query(Menu.filter(F.section == "home"))
    async def home(query: CallbackQuery, products: Catalog):
        await query.message.edit_text(welcome_text(query.from_user.first_name),
                                      reply_markup=main_menu(products.menu))
        await query.answer()

    return router
