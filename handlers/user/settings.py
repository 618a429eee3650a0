"""/settings: the user's language."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.edits import edit_or_keep
from bot.keyboards import Lang, Menu, languages
from services.users import SUPPORTED_LANGUAGES, UserInfo, UserService


def settings_text() -> str:
    return _("⚙️ <b>Settings</b>\n\nChoose your language:")


def build_router() -> Router:
    router = Router(name="settings")

    @router.message(Command("settings"))
    async def settings_command(message: Message, user_info: UserInfo):
        await message.answer(settings_text(), reply_markup=languages(user_info.language))

    @router.callback_query(Menu.filter(F.section == "settings"))
    async def settings_menu(query: CallbackQuery, user_info: UserInfo):
        await edit_or_keep(query.message, settings_text(), languages(user_info.language))
        await query.answer()

    @router.callback_query(Lang.filter(F.code.in_(SUPPORTED_LANGUAGES)))
    async def set_language(query: CallbackQuery, callback_data: Lang, users: UserService, i18n: I18n):
        language = await users.set_language(query.from_user.id, callback_data.code)
        with i18n.use_locale(language):
            await edit_or_keep(query.message, settings_text(), languages(language))
            await query.answer(_("Language saved."))

    return router
