"""Checkout: which payment methods are offered, and turning a pending order into an invoice.

Every product sells through this: create an order (services.orders), then `start()` an invoice
with the method the buyer picked. Only configured providers are offered.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import segno
from aiogram.exceptions import TelegramAPIError

from db.models import Invoice, Order
from services.orders import OrderService, Status, TransitionRefused
from services.payments.base import InvoiceRequest, PaymentProvider, ProviderError

log = logging.getLogger(__name__)

#: KryptoExpress assets offered as separate methods ("kx-<asset>").
KRYPTO_EXPRESS_ASSETS = ("USDT_TRC20", "BTC")
#: Smallest order a provider accepts, USD cents (KryptoExpress refuses payments under $1).
MINIMUM_CENTS = {"kryptoexpress": 100}


@dataclass(frozen=True, slots=True)
class Method:
    id: str  # "stars", "cryptopay", "kx-USDT_TRC20" (no ":", the callback-data separator)
    provider: str
    asset: str | None = None


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """`problem` is None on success, else not_found, not_yours, not_pending, expired, unknown_method
    or unavailable."""

    problem: str | None
    order: Order | None = None
    invoice: Invoice | None = None
    method: Method | None = None


class CheckoutService:
    def __init__(self, orders: OrderService, providers: Mapping[str, PaymentProvider]) -> None:
        self.orders, self.providers = orders, providers

    def methods(self, amount_cents: int | None = None) -> list[Method]:
        """Configured methods, leaving out those whose minimum the amount does not reach."""
        methods = []
        for name in ("stars", "cryptopay"):
            if name in self.providers:
                methods.append(Method(name, name))
        if "kryptoexpress" in self.providers:
            methods += [Method(f"kx-{asset}", "kryptoexpress", asset) for asset in KRYPTO_EXPRESS_ASSETS]
        if amount_cents is not None:
            methods = [m for m in methods if amount_cents >= MINIMUM_CENTS.get(m.provider, 1)]
        return methods

    def method(self, method_id: str, amount_cents: int) -> Method | None:
        return next((m for m in self.methods(amount_cents) if m.id == method_id), None)

    async def owned_order(self, order_id: int, user_id: int) -> tuple[Order | None, str | None]:
        """The caller's order, or why not (a forged button names someone else's order)."""
        order = await self.orders.get(order_id)
        if order is None:
            return None, "not_found"
        if order.user_id != user_id:
            log.warning("user %s pressed a button for order %s of user %s", user_id, order_id, order.user_id)
            return None, "not_yours"
        return order, None

    async def start(self, order_id: int, user_id: int, method_id: str) -> CheckoutResult:
        order, problem = await self.owned_order(order_id, user_id)
        if problem:
            return CheckoutResult(problem)
        method = self.method(method_id, order.amount_cents)
        if method is None:
            return CheckoutResult("unknown_method", order)
        if order.status != Status.PENDING:
            return CheckoutResult("not_pending", order)
        now = self.orders.clock()
        if now >= order.expires_at:
            return CheckoutResult("expired", order)
        provider = self.providers[method.provider]
        request = InvoiceRequest(order.id, user_id, order.amount_cents, order.title, order.title,
                                 int((order.expires_at - now).total_seconds()), asset=method.asset)
        try:  # the network call happens outside any transaction
            draft = await provider.create_invoice(request)
        except (ProviderError, TelegramAPIError) as exc:
            log.warning("could not create a %s invoice for order %s: %s", method.provider, order.id, exc)
            return CheckoutResult("unavailable", order, method=method)
        try:
            invoice = await self.orders.add_invoice(
                order.id, provider=method.provider, external_id=draft.external_id, amount=draft.amount,
                asset=draft.asset, expires_at=min(draft.expires_at, order.expires_at), pay_url=draft.pay_url,
                address=draft.address, raw=draft.raw)
        except TransitionRefused:
            return CheckoutResult("not_pending", order)
        try:
            shown = await provider.present(invoice.external_id, request, invoice.amount)
        except (ProviderError, TelegramAPIError) as exc:
            log.warning("could not show the %s invoice for order %s: %s", method.provider, order.id, exc)
            await self.orders.close_invoice(method.provider, invoice.external_id)
            return CheckoutResult("unavailable", order, method=method)
        if shown is not None:
            await self.orders.set_invoice_message(invoice.id, *shown)
            invoice.chat_id, invoice.message_id = shown
        return CheckoutResult(None, order, invoice, method)

    async def cancel(self, order_id: int, user_id: int) -> str | None:
        order, problem = await self.owned_order(order_id, user_id)
        if problem:
            return problem
        try:
            await self.orders.transition(order.id, Status.CANCELLED, cause="user_cancelled")
        except TransitionRefused:
            return "not_pending"
        return None


def qr_png(data: str) -> bytes:
    """A QR code for a payment address, as PNG bytes."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=8, border=3)
    return buffer.getvalue()
