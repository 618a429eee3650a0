"""Sends what fulfilment produced: the product message with a receipt, or an honest failure notice."""

from __future__ import annotations

import html

from aiogram.utils.i18n import gettext as _

from bot.texts import provider_name
from db.models import Order
from processing.notify import Notifier
from services.money import usd
from services.products import Delivery


def receipt(order: Order) -> str:
    return _("🧾 Receipt: order #{id} · {title} · {amount} · paid with {provider}").format(
        id=order.id, title=html.escape(order.title), amount=usd(order.amount_cents),
        provider=provider_name(order.provider))


class BotDeliverer:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def deliver(self, order: Order, delivery: Delivery) -> None:
        # strict: if the message cannot be delivered the job is retried, never silently "done"
        await self.notifier.send(order.user_id, lambda: f"{delivery.text()}\n\n{receipt(order)}", strict=True)

    async def fulfilment_failed(self, order: Order, error: str) -> None:
        await self.notifier.send(order.user_id, lambda: _(
            "😔 We took your payment for order #{id} but could not deliver it. Our team has been alerted "
            "and will fix it or refund you in full.").format(id=order.id))
        await self.notifier.alert_admins(lambda: _(
            "🚨 Fulfilment failed for order #{id} ({title}, user <code>{user}</code>): {error}\n"
            "Refund with /refund {id}").format(id=order.id, title=html.escape(order.title), user=order.user_id,
                                                error=html.escape(error[:300])))
