"""Sends what fulfilment produced: the product message with a receipt, or an honest failure notice."""

from __future__ import annotations

import html
from decimal import Decimal

from aiogram.utils.i18n import gettext as _

from bot.keyboards import link_button
from db.models import Order, Payment
from presentation.formatting import amount_text, order_title, usd
from presentation.texts import asset_name, provider_name
from processing.notify import Notifier
from services.orders import OrderService
from services.products import Delivery


def paid_text(payments: list[Payment]) -> str | None:
    """What the buyer actually paid, per asset ("2307 ⭐", "$29.99", "12.5 USDT (TRC20)")."""
    totals: dict[str, Decimal] = {}
    for payment in payments:
        totals[payment.asset] = totals.get(payment.asset, Decimal(0)) + payment.amount
    return " + ".join(amount_text(amount, asset_name(asset)) for asset, amount in totals.items()) or None


def receipt(order: Order, payments: list[Payment] | None = None) -> str:
    return _("🧾 Receipt: order #{id} · {title} · {amount} · paid with {provider}").format(
        id=order.id, title=html.escape(order_title(order)), amount=paid_text(payments or []) or usd(order.amount_cents),
        provider=provider_name(order.provider))


class BotDeliverer:
    def __init__(self, notifier: Notifier, orders: OrderService | None = None) -> None:
        self.notifier, self.orders = notifier, orders

    async def deliver(self, order: Order, delivery: Delivery) -> None:
        payments = await self.orders.payments(order.id) if self.orders else []
        # strict: if the message cannot be delivered the job is retried, never silently "done"
        await self.notifier.send(order.user_id, lambda: f"{delivery.text()}\n\n{receipt(order, payments)}",
                                 (lambda: link_button(*delivery.link())) if delivery.link else None, strict=True)

    async def fulfilment_failed(self, order: Order, error: str) -> None:
        await self.notifier.send(order.user_id, lambda: _(
            "😔 We took your payment for order #{id} but could not deliver it. Our team has been alerted "
            "and will fix it or refund you in full.").format(id=order.id))
        await self.notifier.alert_admins(lambda: _(
            "🚨 Fulfilment failed for order #{id} ({title}, user <code>{user}</code>): {error}\n"
            "Refund with /refund {id}").format(id=order.id, title=html.escape(order_title(order)), user=order.user_id,
                                                error=html.escape(error[:300])))
