"""/admin: the panel, one button per admin area."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder


class AdminMenu(CallbackData, prefix="adm"):
    action: str


def panel_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("📊 Stats"), callback_data=AdminMenu(action="stats"))
    builder.button(text=_("📝 Content"), callback_data=AdminMenu(action="content"))
    builder.adjust(2)
    return builder.as_markup()


def build_router() -> Router:
    router = Router(name="admin_panel")

    @router.message(Command("admin"))
    async def admin_panel(message: Message):
        await message.answer(_("🛠 <b>Admin panel</b>"), reply_markup=panel_keyboard())

    return router
