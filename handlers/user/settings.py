"""/settings: the user's language (the bot's messages and the chat's command menu), and "Invite friends" (the
referral link and what it earned)."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.commands import all_commands, register_chat_commands
from bot.keyboards import Lang, Menu, languages
from bot.screens import show
from bot.wiring import Services
from presentation.referrals import invite_link, referrals_text
from services.users import SUPPORTED_LANGUAGES, UserInfo


def settings_text() -> str:
    return _("⚙️ <b>Settings</b>\n\nChoose your language:")


def settings_markup(language: str) -> InlineKeyboardMarkup:
    """The language choice, then "Invite friends" above "Back to menu"."""
    rows = languages(language).inline_keyboard
    invite = [InlineKeyboardButton(text=_("👥 Invite friends"), callback_data=Menu(section="referrals").pack())]
    return InlineKeyboardMarkup(inline_keyboard=[*rows[:-1], invite, *rows[-1:]])


async def show_settings(event: Message | CallbackQuery, user_info: UserInfo) -> None:
    await show(event, settings_text(), settings_markup(user_info.language))


async def set_language(query: CallbackQuery, callback_data: Lang, services: Services) -> None:
    user_id = query.from_user.id
    language = await services.users.set_language(user_id, callback_data.code)
    await register_chat_commands(query.bot, services.i18n, user_id, all_commands(services.products.commands),
                                 language, admin=services.settings.is_admin(user_id))
    with services.i18n.use_locale(language):
        await show(query, settings_text(), settings_markup(language), note=_("Language saved."))


async def show_referrals(query: CallbackQuery, services: Services, bot: Bot) -> None:
    """The user's invite link, how many joined through it and the rewards it earned."""
    me = await bot.me()
    summary = await services.referrals.summary(query.from_user.id)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("⬅️ Back"), callback_data=Menu(section="settings"))
    await show(query, referrals_text(invite_link(me.username or "", query.from_user.id), summary,
                                     services.referrals.reward_days), builder.as_markup())


def build_router() -> Router:
    router = Router(name="settings")
    router.message.register(show_settings, Command("settings"))
    router.callback_query.register(show_settings, Menu.filter(F.section == "settings"))
    router.callback_query.register(show_referrals, Menu.filter(F.section == "referrals"))
    router.callback_query.register(set_language, Lang.filter(F.code.in_(SUPPORTED_LANGUAGES)))
    return router
