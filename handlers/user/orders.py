"""/orders: the buyer's orders with their state and id."""

from __future__ import annotations

import html
from decimal import Decimal

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import Menu, back_to_menu
from db.models import Order
from handlers.user.checkout import edit_or_keep
from presentation.texts import status_label
from processing.refunds import RefundService
from services.ai_tokens import AiTokenShop
from services.money import money_text, usd
from services.orders import OrderService
from services.settings import Settings


def orders_text(orders: list[Order], settings: Settings, *, title: str | None = None,
                credit: dict[int, tuple[Decimal, Decimal]] | None = None,
                refunds: dict[int, str] | None = None) -> str:
    if not orders:
        return _("You have no orders yet. Start with /tokens or /plans.")
    lines = [title or _("🧾 <b>Your orders</b>")]
    for order in orders:
        when = order.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        lines.append(_("#{id} · {title} · {amount}\n{status} · {when}").format(
            id=order.id, title=html.escape(order.title), amount=usd(order.amount_cents),
            status=_("⏳ refund pending: the money has not been sent back yet")
            if (refunds or {}).get(order.id) == "pending" else status_label(order.status), when=when))
        if credit and order.id in credit:
            left, limit = credit[order.id]
            lines[-1] += "\n" + _("🔑 Key …{last4}: {left} of {limit} credit left").format(
                last4=order.delivery.get("key_last4", ""), left=money_text(left), limit=money_text(limit))
        if order.status == "refunded" and (order.delivery or {}).get("key_last4"):
            lines[-1] += "\n" + _("🔑 Key …{last4}: switched off").format(last4=order.delivery["key_last4"])
        if (refunds or {}).get(order.id) == "sent":
            lines[-1] += "\n" + _("💸 Refund sent")
    return "\n\n".join(lines)


def build_router() -> Router:
    router = Router(name="orders")

    async def render(user_id: int, orders: OrderService, settings: Settings, ai_tokens: AiTokenShop,
                     refunds: RefundService) -> str:
        items = await orders.for_user(user_id)
        return orders_text(items, settings, credit=await ai_tokens.credit_left(items),
                           refunds=await refunds.states([o.id for o in items]))

    @router.message(Command("orders"))
    async def my_orders(message: Message, orders: OrderService, settings: Settings, ai_tokens: AiTokenShop,
                        refunds: RefundService):
        text = await render(message.from_user.id, orders, settings, ai_tokens, refunds)
        await message.answer(text, reply_markup=back_to_menu())

    @router.callback_query(Menu.filter(F.section == "orders"))
    async def orders_menu(query: CallbackQuery, orders: OrderService, settings: Settings, ai_tokens: AiTokenShop,
                          refunds: RefundService):
        text = await render(query.from_user.id, orders, settings, ai_tokens, refunds)
        await edit_or_keep(query.message, text, back_to_menu())
        await query.answer()

    return router
