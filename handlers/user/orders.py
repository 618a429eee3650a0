"""/orders: the buyer's orders with their state and id."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import Menu, back_to_menu
from bot.texts import status_label
from db.models import Order
from services.money import usd
from services.orders import OrderService
from services.settings import Settings


def orders_text(orders: list[Order], settings: Settings, *, title: str | None = None) -> str:
    if not orders:
        return _("You have no orders yet. Start with /tokens or /plans.")
    lines = [title or _("🧾 <b>Your orders</b>"), ""]
    for order in orders:
        when = order.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        lines.append(_("#{id} · {title} · {amount}\n{status} · {when}").format(
            id=order.id, title=html.escape(order.title), amount=usd(order.amount_cents),
            status=status_label(order.status), when=when))
    return "\n\n".join([lines[0], *lines[2:]])


def build_router() -> Router:
    router = Router(name="orders")

    @router.message(Command("orders"))
    async def my_orders(message: Message, orders: OrderService, settings: Settings):
        items = await orders.for_user(message.from_user.id)
        await message.answer(orders_text(items, settings), reply_markup=back_to_menu())

    @router.callback_query(Menu.filter(F.section == "orders"))
    async def orders_menu(query: CallbackQuery, orders: OrderService, settings: Settings):
        items = await orders.for_user(query.from_user.id)
        await query.message.edit_text(orders_text(items, settings), reply_markup=back_to_menu())
        await query.answer()

    return router
