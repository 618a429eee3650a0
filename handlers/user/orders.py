"""/orders: the buyer's orders with their state and id."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.edits import edit_or_keep
from bot.keyboards import Menu, back_to_menu
from config.settings import Settings
from db.models import Order
from presentation.texts import status_label
from processing.refunds import RefundService
from services.money import usd
from services.orders import OrderService
from services.products import Catalog


def orders_text(orders: list[Order], settings: Settings, *, title: str | None = None,
                lines: dict[int, list[str]] | None = None, refunds: dict[int, str] | None = None) -> str:
    """`lines`: the products' live-state lines under each order (`Catalog.order_lines`)."""
    if not orders:
        return _("You have no orders yet. Start with /tokens or /plans.")
    text = [title or _("🧾 <b>Your orders</b>")]
    for order in orders:
        when = order.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        text.append(_("#{id} · {title} · {amount}\n{status} · {when}").format(
            id=order.id, title=html.escape(order.title), amount=usd(order.amount_cents),
            status=_("⏳ refund pending: the money has not been sent back yet")
            if (refunds or {}).get(order.id) == "pending" else status_label(order.status), when=when))
        for line in (lines or {}).get(order.id, ()):
            text[-1] += "\n" + line
        if order.status == "refunded" and (order.delivery or {}).get("key_last4"):
            text[-1] += "\n" + _("🔑 Key …{last4}: switched off").format(last4=order.delivery["key_last4"])
        if (refunds or {}).get(order.id) == "sent":
            text[-1] += "\n" + _("💸 Refund sent")
    return "\n\n".join(text)


def build_router() -> Router:
    router = Router(name="orders")

    async def render(user_id: int, orders: OrderService, settings: Settings, products: Catalog,
                     refunds: RefundService) -> str:
        items = await orders.for_user(user_id)
        return orders_text(items, settings, lines=await products.order_lines(items),
                           refunds=await refunds.states([o.id for o in items]))

    @router.message(Command("orders"))
    async def my_orders(message: Message, orders: OrderService, settings: Settings, products: Catalog,
                        refunds: RefundService):
        text = await render(message.from_user.id, orders, settings, products, refunds)
        await message.answer(text, reply_markup=back_to_menu())

    @router.callback_query(Menu.filter(F.section == "orders"))
    async def orders_menu(query: CallbackQuery, orders: OrderService, settings: Settings, products: Catalog,
                          refunds: RefundService):
        text = await render(query.from_user.id, orders, settings, products, refunds)
        await edit_or_keep(query.message, text, back_to_menu())
        await query.answer()

    return router
