"""/admin panel and /stats."""

from __future__ import annotations

from datetime import datetime, time

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.settings import Settings
from services.users import UserService


class AdminMenu(CallbackData, prefix="adm"):
    action: str


def panel_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("📊 Stats"), callback_data=AdminMenu(action="stats"))
    builder.button(text=_("📝 Content"), callback_data=AdminMenu(action="content"))
    builder.adjust(2)
    return builder.as_markup()


async def stats_text(users: UserService, settings: Settings) -> str:
    midnight = datetime.combine(datetime.now(settings.tz).date(), time(), settings.tz)
    counts = await users.counts(since=midnight)
    return _(
        "📊 <b>Stats</b>\n\nUsers: {total}\nNew today: {new}\nBlocked the bot: {blocked}"
    ).format(**counts)


def build_router() -> Router:
    router = Router(name="admin_panel")

    @router.message(Command("admin"))
    async def admin_panel(message: Message):
        await message.answer(_("🛠 <b>Admin panel</b>"), reply_markup=panel_keyboard())

    @router.message(Command("stats"))
    async def stats(message: Message, users: UserService, settings: Settings):
        await message.answer(await stats_text(users, settings))

    @router.callback_query(AdminMenu.filter(F.action == "stats"))
    async def stats_button(query: CallbackQuery, users: UserService, settings: Settings):
        await query.message.edit_text(await stats_text(users, settings), reply_markup=panel_keyboard())
        await query.answer()

    return router
