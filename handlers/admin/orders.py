"""Admins: /refund <order_id> and /orders <user_id>."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.texts import status_label
from handlers.user.orders import orders_text
from processing.refunds import RefundService
from services.orders import OrderService
from services.settings import Settings


def refund_problem(order_id: int | str, reason: str) -> str:
    """Why a refund did not happen, in words (RefundResult.reason is a code)."""
    if reason == "not_found":
        return _("Order #{id} doesn't exist.").format(id=order_id)
    if reason.startswith("status:"):
        return _("Order #{id} is {status}: nothing to refund.").format(id=order_id, status=status_label(reason[7:]))
    if reason == "stars_unavailable":
        reason = _("Telegram Stars are switched off, so the Stars payment can't be returned")
    return _("Refund of order #{id} failed: {reason}. Nothing was changed.").format(
        id=order_id, reason=html.escape(reason.removeprefix("telegram:")))


def build_router() -> Router:
    router = Router(name="admin_orders")

    @router.message(Command("refund"))
    async def refund(message: Message, command: CommandObject, refunds: RefundService):
        arg = (command.args or "").strip().lstrip("#")
        if not arg.isdigit() or len(arg) > 12:
            await message.answer(_("Usage: /refund ORDER_ID, e.g. /refund 42"))
            return
        result = await refunds.refund(int(arg), admin_id=message.from_user.id)
        if not result.ok:
            await message.answer(refund_problem(arg, result.reason))
            return
        lines = [_("↩️ Order #{id} refunded; the user has been told.").format(id=arg)]
        if result.stars_refunded:
            lines.append(_("{stars} ⭐ returned through Telegram.").format(stars=result.stars_refunded))
        for item in result.manual:
            lines.append(_("Send back by hand: {item}.").format(item=item))
        await message.answer("\n".join(lines))

    @router.message(Command("orders", magic=F.args.regexp(r"^\d{1,15}$")))
    async def user_orders(message: Message, command: CommandObject, orders: OrderService, settings: Settings):
        user_id = int(command.args)
        items = await orders.for_user(user_id, limit=20)
        title = _("🧾 <b>Orders of user {id}</b>").format(id=user_id)
        await message.answer(orders_text(items, settings, title=title) if items else
                             _("User {id} has no orders.").format(id=user_id))

    return router
