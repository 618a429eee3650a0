"""/orders: the buyer's orders with their state and id."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import Menu, back_to_menu
from bot.screens import show
from bot.wiring import Services
from config.settings import Settings
from db.models import Order
from presentation.formatting import datetime_text, order_title, usd
from presentation.texts import status_label


def orders_text(orders: list[Order], settings: Settings, *, title: str | None = None,
                lines: dict[int, list[str]] | None = None, refunds: dict[int, str] | None = None) -> str:
    """`lines`: the products' live-state lines under each order (`Catalog.order_lines`)."""
    if not orders:
        return _("You have no orders yet. Start with /tokens or /plans.")
    text = [title or _("🧾 <b>Your orders</b>")]
    for order in orders:
        when = datetime_text(order.created_at, settings.tz)
        text.append(_("#{id} · {title} · {amount}\n{status} · {when}").format(
            id=order.id, title=html.escape(order_title(order)), amount=usd(order.amount_cents),
            status=_("⏳ refund pending: the money has not been sent back yet")
            if (refunds or {}).get(order.id) == "pending" else status_label(order.status), when=when))
        for line in (lines or {}).get(order.id, ()):
            text[-1] += "\n" + line
        if order.status == "refunded" and (order.delivery or {}).get("key_last4"):
            text[-1] += "\n" + _("🔑 Key …{last4}: switched off").format(last4=order.delivery["key_last4"])
        if (refunds or {}).get(order.id) == "sent":
            text[-1] += "\n" + _("💸 Refund sent")
    return "\n\n".join(text)


async def show_orders(event: Message | CallbackQuery, services: Services) -> None:
    """The buyer's orders, each with its products' live state and its refund's."""
    items = await services.orders.for_user(event.from_user.id)
    text = orders_text(items, services.settings, lines=await services.products.order_lines(items),
                       refunds=await services.refunds.states([o.id for o in items]))
    await show(event, text, back_to_menu())


def build_router() -> Router:
    router = Router(name="orders")
    router.message.register(show_orders, Command("orders"))
    router.callback_query.register(show_orders, Menu.filter(F.section == "orders"))
    return router
