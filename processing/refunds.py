"""Refunds: Stars go back through Telegram; crypto is marked refunded and the admin is told
what to send, since Crypto Pay and KryptoExpress have no refund call."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import gettext as _

from processing.notify import Notifier
from services.audit import AuditService
from services.orders import MONEY_IN, OrderService, Status, TransitionRefused
from services.payments.stars import StarsProvider

log = logging.getLogger(__name__)


@dataclass
class RefundResult:
    ok: bool
    reason: str = ""
    stars_refunded: int = 0
    manual: list[str] = field(default_factory=list)  # "12.5 USDT via kryptoexpress" to send back by hand


class RefundService:
    def __init__(self, orders: OrderService, notifier: Notifier, stars: StarsProvider | None,
                 audit: AuditService | None = None) -> None:
        self.orders, self.notifier, self.stars, self.audit = orders, notifier, stars, audit

    async def refund(self, order_id: int, *, admin_id: int) -> RefundResult:
        order = await self.orders.get(order_id)
        if order is None:
            return RefundResult(False, "not_found")
        if Status(order.status) not in MONEY_IN:
            return RefundResult(False, f"status:{order.status}")
        payments = [p for p in await self.orders.payments(order_id) if p.refunded_at is None]
        result = RefundResult(True)
        for payment in payments:
            if payment.provider == "stars":
                if self.stars is None:
                    return RefundResult(False, "stars_unavailable")
                try:
                    await self.stars.refund(order.user_id, payment.external_id)
                except TelegramAPIError as exc:
                    if "ALREADY_REFUNDED" not in exc.message:
                        log.warning("Stars refund for order %s refused: %s", order_id, exc.message)
                        return RefundResult(False, f"telegram:{exc.message}")
                result.stars_refunded += int(payment.amount)
            else:
                result.manual.append(f"{payment.amount.normalize():f} {payment.asset} via {payment.provider}")
        try:
            await self.orders.refund(order_id, cause="admin_refund",
                                     detail={"admin_id": admin_id, "manual": result.manual})
        except TransitionRefused as exc:
            return RefundResult(False, str(exc))
        if self.audit is not None:
            await self.audit.record(admin_id, "refund", f"order:{order_id}", before={"status": order.status},
                                    after={"status": Status.REFUNDED, "stars": result.stars_refunded,
                                           "manual": result.manual})
        await self.notifier.send(order.user_id, lambda: _(
            "↩️ Order #{id} has been refunded.").format(id=order_id))
        return result

    async def telegram_refunded(self, charge_id: str) -> None:
        """Telegram reports a Stars refund (e.g. made outside the bot): record it once."""
        payment = await self.orders.payment_by_external_id("stars", charge_id)
        if payment is None or payment.refunded_at is not None:
            return
        try:
            await self.orders.refund(payment.order_id, cause="telegram_refund", detail={"charge_id": charge_id})
        except TransitionRefused:
            log.info("refunded_payment for order %s in a state that cannot be refunded", payment.order_id)
