"""Checkout: which payment methods are offered, and turning a pending order into an invoice.

Every product sells through this: create an order (services.orders), then `start()` an invoice
with the method the buyer picked. Only configured providers are offered.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

import segno
from aiogram.exceptions import TelegramAPIError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from db.models import Invoice, Order
from services.orders import OrderService, Status, TransitionRefused
from services.payments.base import InvoiceDraft, InvoiceRequest, Method, PaymentProvider, ProviderError

log = logging.getLogger(__name__)

#: A claim to create an invoice that was not completed in this time (the process died) is taken over.
CLAIM_TIMEOUT = timedelta(minutes=1)


class CheckoutProblem(StrEnum):
    """Why an order cannot be paid (or cancelled) now; the values are the codes compared before."""

    NOT_FOUND = "not_found"
    NOT_YOURS = "not_yours"  # a forged button naming someone else's order
    NOT_PENDING = "not_pending"
    EXPIRED = "expired"
    UNKNOWN_METHOD = "unknown_method"
    BUSY = "busy"  # another tap is making this invoice
    UNAVAILABLE = "unavailable"  # the provider did not answer


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """`problem` is None on success."""

    problem: CheckoutProblem | None
    order: Order | None = None
    invoice: Invoice | None = None
    method: Method | None = None
    reused: bool = False  # the live invoice made by an earlier tap


class CheckoutService:
    def __init__(self, orders: OrderService, providers: Mapping[str, PaymentProvider], *,
                 describe: Callable[[Order], str] = lambda order: order.title) -> None:
        """`describe`: the invoice's title and description for an order, in the buyer's language (called
        while the buyer's tap is handled; the app passes presentation's `order_title`)."""
        self.orders, self.providers, self.describe = orders, providers, describe

    def methods(self, amount_cents: int | None = None) -> list[Method]:
        """Configured methods, leaving out those whose minimum the amount does not reach."""
        return [method for provider in self.providers.values()
                if amount_cents is None or amount_cents >= provider.minimum_cents
                for method in provider.methods()]

    def method_label(self, method: Method, amount_cents: int) -> str:
        """The button text for this method at this price (translated)."""
        return self.providers[method.provider].method_label(method, amount_cents)

    def method(self, method_id: str, amount_cents: int) -> Method | None:
        return next((m for m in self.methods(amount_cents) if m.id == method_id), None)

    async def owned_order(self, order_id: int, user_id: int) -> tuple[Order | None, CheckoutProblem | None]:
        """The caller's order, or why not (a forged button names someone else's order)."""
        order = await self.orders.get(order_id)
        if order is None:
            return None, CheckoutProblem.NOT_FOUND
        if order.user_id != user_id:
            log.warning("user %s pressed a button for order %s of user %s", user_id, order_id, order.user_id)
            return None, CheckoutProblem.NOT_YOURS
        return order, None

    async def start(self, order_id: int, user_id: int, method_id: str) -> CheckoutResult:
        """Make (or reuse) the invoice for this order and method. One live invoice per order and
        method, even for two taps processed at once: the first claims the (order, method) slot in
        the database before calling the provider; a tap meanwhile gets `busy`, a later one the live
        invoice back (`reused`)."""
        order, problem = await self.owned_order(order_id, user_id)
        if problem:
            return CheckoutResult(problem)
        method = self.method(method_id, order.amount_cents)
        if method is None:
            return CheckoutResult(CheckoutProblem.UNKNOWN_METHOD, order)
        if order.status != Status.PENDING:
            return CheckoutResult(CheckoutProblem.NOT_PENDING, order)
        now = self.orders.clock()
        if now >= order.expires_at:
            return CheckoutResult(CheckoutProblem.EXPIRED, order)
        claim = await self._claim(order.id, method)
        if isinstance(claim, Invoice):
            return CheckoutResult(None, order, claim, method, reused=True)
        if claim is None:
            return CheckoutResult(CheckoutProblem.BUSY, order, method=method)
        provider = self.providers[method.provider]
        title = self.describe(order)
        request = InvoiceRequest(order.id, user_id, order.amount_cents, title, title,
                                 int((order.expires_at - now).total_seconds()), asset=method.asset)
        try:  # the network call happens outside any transaction
            draft = await provider.create_invoice(request)
        except (ProviderError, TelegramAPIError) as exc:
            log.warning("could not create a %s invoice for order %s: %s", method.provider, order.id, exc)
            await self._release(claim)
            return CheckoutResult(CheckoutProblem.UNAVAILABLE, order, method=method)
        invoice = await self._fill(claim, order.id, method, draft)
        if invoice is None:
            return CheckoutResult(CheckoutProblem.NOT_PENDING, order)
        try:
            shown = await provider.present(invoice.external_id, request, invoice.amount)
        except (ProviderError, TelegramAPIError) as exc:
            log.warning("could not show the %s invoice for order %s: %s", method.provider, order.id, exc)
            await self.orders.close_invoice(method.provider, invoice.external_id)
            return CheckoutResult(CheckoutProblem.UNAVAILABLE, order, method=method)
        if shown is not None:
            await self.orders.set_invoice_message(invoice.id, *shown)
            invoice.chat_id, invoice.message_id = shown
        return CheckoutResult(None, order, invoice, method)

    async def _claim(self, order_id: int, method: Method) -> int | Invoice | None:
        """The live invoice for (order, method); else a new claim's row id; None while another tap
        is creating it. A claim left behind by a crash is taken over after CLAIM_TIMEOUT."""
        now = self.orders.clock()
        live = (Invoice.order_id == order_id, Invoice.method == method.id,
                Invoice.status.in_(("creating", "active")))
        try:
            async with self.orders.db.transaction() as session:
                current = await session.scalar(select(Invoice).where(*live))
                if current is not None and current.status == "active" and current.expires_at > now:
                    return current
                if current is not None and current.status == "creating" and current.created_at > now - CLAIM_TIMEOUT:
                    return None
                if current is not None:  # ran out at the provider, or an abandoned claim
                    current.status = "expired" if current.status == "active" else "abandoned"
                    await session.flush()
                claim = Invoice(order_id=order_id, provider=method.provider, method=method.id,
                                external_id=f"claim:{order_id}:{method.id}:{secrets.token_hex(6)}",
                                amount=Decimal(0), asset="", expires_at=now, status="creating", raw={},
                                created_at=now)
                session.add(claim)
                await session.flush()
                return claim.id
        except IntegrityError:  # another tap claimed it at the same moment
            return None

    async def _release(self, claim_id: int) -> None:
        """No invoice was made: drop the claim, so the next tap tries again."""
        async with self.orders.db.transaction() as session:
            await session.execute(delete(Invoice).where(Invoice.id == claim_id, Invoice.status == "creating"))

    async def _fill(self, claim_id: int, order_id: int, method: Method, draft: InvoiceDraft) -> Invoice | None:
        """Turn the claim into the provider's invoice, if the order still awaits payment. The invoice
        keeps the provider's own expiry (what its pay page shows); the order's may be earlier."""
        async with self.orders.db.transaction() as session:
            order = await session.get(Order, order_id)
            invoice = await session.get(Invoice, claim_id)
            if order is None or order.status != Status.PENDING or invoice is None or invoice.status != "creating":
                if invoice is not None and invoice.status == "creating":
                    await session.delete(invoice)
                return None
            order.provider = method.provider
            if self.providers[method.provider].one_live_invoice:  # the older one must not be payable too
                await session.execute(update(Invoice).where(
                    Invoice.order_id == order_id, Invoice.provider == method.provider, Invoice.status == "active"
                ).values(status="superseded"))
            invoice.external_id, invoice.amount, invoice.asset = draft.external_id, draft.amount, draft.asset
            invoice.expires_at, invoice.pay_url, invoice.address = draft.expires_at, draft.pay_url, draft.address
            invoice.raw, invoice.status = draft.raw or {}, "active"
        return invoice

    async def cancel(self, order_id: int, user_id: int) -> CheckoutProblem | None:
        order, problem = await self.owned_order(order_id, user_id)
        if problem:
            return problem
        try:
            await self.orders.transition(order.id, Status.CANCELLED, cause="user_cancelled")
        except TransitionRefused:
            return CheckoutProblem.NOT_PENDING
        return None


def qr_png(data: str) -> bytes:
    """A QR code for a payment address, as PNG bytes."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=8, border=3)
    return buffer.getvalue()
