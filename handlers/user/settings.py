"""/settings: the user's language (the bot's messages and the chat's command menu)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.commands import all_commands, register_chat_commands
from bot.keyboards import Lang, Menu, languages
from bot.screens import show
from bot.wiring import Services
from services.users import SUPPORTED_LANGUAGES, UserInfo


def settings_text() -> str:
    return _("⚙️ <b>Settings</b>\n\nChoose your language:")


async def show_settings(event: Message | CallbackQuery, user_info: UserInfo) -> None:
    await show(event, settings_text(), languages(user_info.language))


async def set_language(query: CallbackQuery, callback_data: Lang, services: Services) -> None:
    user_id = query.from_user.id
    language = await services.users.set_language(user_id, callback_data.code)
    await register_chat_commands(query.bot, services.i18n, user_id, all_commands(services.products.commands),
                                 language, admin=services.settings.is_admin(user_id))
    with services.i18n.use_locale(language):
        await show(query, settings_text(), languages(language), note=_("Language saved."))


def build_router() -> Router:
    router = Router(name="settings")
    router.message.register(show_settings, Command("settings"))
    router.callback_query.register(show_settings, Menu.filter(F.section == "settings"))
    router.callback_query.register(set_language, Lang.filter(F.code.in_(SUPPORTED_LANGUAGES)))
    return router
