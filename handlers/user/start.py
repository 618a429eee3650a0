"""/start (with an optional deep-link payload) and the main menu."""

from __future__ import annotations

import html
import re

from aiogram import Bot, F, Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.commands import all_commands, register_admin_commands
from bot.keyboards import Menu, main_menu
from bot.screens import show
from bot.wiring import Services
from presentation.referrals import joined_text
from services.text import strip_invisible_or_none
from services.users import UserInfo

REFERRAL = re.compile(r"ref_(\d{1,15})")


def welcome_text(first_name: str | None) -> str:
    return _(
        "👋 Hi, {name}!\n\n"
        "Here you can buy <b>AI tokens</b> for top models, subscribe to <b>trading signals</b> "
        "and follow the <b>whale wallets</b> that are winning right now.\n\n"
        "Choose what you need:"
    ).format(name=html.escape(strip_invisible_or_none(first_name) or _("trader")))


async def show_home(event: Message | CallbackQuery, services: Services) -> None:
    """The main menu: /start's answer and the "Back to menu" buttons."""
    await show(event, welcome_text(event.from_user.first_name), main_menu(services.products.menu))


async def start(message: Message, command: CommandObject, user_info: UserInfo, services: Services,
                bot: Bot) -> None:
    match = REFERRAL.fullmatch(command.args or "")
    if match and user_info.is_new:
        referrer_id = int(match.group(1))
        if await services.users.set_referrer(user_info.id, referrer_id):
            name = strip_invisible_or_none(message.from_user.first_name)
            await services.notifier.send(referrer_id, lambda: joined_text(name, services.referrals.reward_days))
    if user_info.is_new and services.settings.is_admin(user_info.id):
        await register_admin_commands(bot, services.i18n, user_info.id, all_commands(services.products.commands))
    await show_home(message, services)


def build_router() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandStart())
    router.callback_query.register(show_home, Menu.filter(F.section == "home"))
    return router
