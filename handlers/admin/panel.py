"""/admin: the panel, one button per admin area; a button for a command that takes arguments asks for them
(its module's prompt state) and then runs what the typed command runs."""

from __future__ import annotations

from collections.abc import Iterable

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.commands import all_commands
from bot.screens import show
from bot.wiring import Services
from services.products import Command as Declared
from services.products import text


class AdminMenu(CallbackData, prefix="adm"):
    action: str


def panel_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for action, label in (("stats", _("📊 Stats")), ("export", _("⬇️ Orders CSV")), ("content", _("📝 Content")),
                          ("audit", _("📜 Audit log")), ("broadcast", _("📣 Broadcast")),
                          ("user", _("👤 Find a user")), ("grant", _("🎁 Grant a plan")),
                          ("signal", _("📈 Post a signal")), ("sales", _("🔔 Sale notices on/off")),
                          ("howto", _("🧭 Everything else"))):
        builder.button(text=label, callback_data=AdminMenu(action=action))
    builder.adjust(2)
    return builder.as_markup()


def howto_text(product_commands: Iterable[Declared] = ()) -> str:
    """The commands that take arguments (the products' too), so every admin action is one tap or one line away."""
    lines = [text(c.howto) for c in all_commands(product_commands) if c.howto is not None]
    return _("🧭 <b>Admin commands</b>") + "\n\n" + "\n".join(lines)


async def admin_panel(message: Message) -> None:
    await message.answer(_("🛠 <b>Admin panel</b>"), reply_markup=panel_keyboard())


async def howto(query: CallbackQuery, services: Services) -> None:
    await show(query, howto_text(services.products.commands), panel_keyboard())


def build_router() -> Router:
    router = Router(name="admin_panel")
    router.message.register(admin_panel, Command("admin"))
    router.callback_query.register(howto, AdminMenu.filter(F.action == "howto"))
    return router
