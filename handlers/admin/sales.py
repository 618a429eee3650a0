"""The admin panel's "Sale notices" switch: each admin decides whether they get a notice per sale."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import gettext as _

from bot.screens import alert
from bot.wiring import Services
from handlers.admin.panel import AdminMenu


async def toggle_sale_notices(query: CallbackQuery, services: Services) -> None:
    on = await services.admin_prefs.toggle_sale_notices(query.from_user.id)
    await alert(query, _("🔔 You'll get a notice for every sale.") if on else
                _("🔕 Sale notices are off for you. Tap again to turn them back on."))


def build_router() -> Router:
    router = Router(name="admin_sales")
    router.callback_query.register(toggle_sale_notices, AdminMenu.filter(F.action == "sales"))
    return router
