"""/admin: the panel, one button per admin area."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder


class AdminMenu(CallbackData, prefix="adm"):
    action: str


def panel_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for action, label in (("stats", _("📊 Stats")), ("export", _("⬇️ Orders CSV")), ("content", _("📝 Content")),
                          ("audit", _("📜 Audit log")), ("sales", _("🔔 Sale notices on/off")),
                          ("howto", _("🧭 Everything else"))):
        builder.button(text=label, callback_data=AdminMenu(action=action))
    builder.adjust(2)
    return builder.as_markup()


def howto_text() -> str:
    """The commands that take arguments, so every admin action is one tap or one line away."""
    return _(
        "🧭 <b>Admin commands</b>\n\n"
        "/user ID or @username — a user's card: plan, orders, ban, refund\n"
        "/grant USER_ID PLAN DAYS — give a plan, e.g. /grant 12345 pro 30\n"
        "/refund ORDER_ID — refund an order\n"
        "/orders USER_ID — a user's orders\n"
        "/signal ecosystem PAIR side entry targets stop [timeframe] [note] — post a signal\n"
        "/broadcast — message everyone, paying users, a plan or lapsed users\n"
        "/post_now [kind], /preview [kind], /schedule — channel posts\n"
        "/import_whales — send a CSV with this caption; /whale_set — edit a wallet\n"
        "/export DAYS — orders as CSV\n"
        "/audit — who did what"
    )


def build_router() -> Router:
    router = Router(name="admin_panel")

    @router.message(Command("admin"))
    async def admin_panel(message: Message):
        await message.answer(_("🛠 <b>Admin panel</b>"), reply_markup=panel_keyboard())

    @router.callback_query(AdminMenu.filter(F.action == "howto"))
    async def howto(query: CallbackQuery):
        await query.message.edit_text(howto_text(), reply_markup=panel_keyboard())
        await query.answer()

    return router
