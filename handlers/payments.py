"""Telegram's own payment updates: pre-checkout (decides within Telegram's 10 s), successful and refunded
payments, for the provider paid through them (services.payments.registry.telegram_payments_provider)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from aiogram import F, Router
from aiogram.types import Message, PreCheckoutQuery
from aiogram.utils.i18n import gettext as _

from bot.wiring import Services
from services.orders import PaymentReport, PrecheckoutProblem
from services.payments.registry import telegram_payments_provider

REFUSALS: dict[PrecheckoutProblem, Callable[[], str]] = {
    PrecheckoutProblem.UNKNOWN: lambda: _("This invoice is no longer valid. Please start a new order."),
    PrecheckoutProblem.NOT_YOURS: lambda: _("This invoice is no longer valid. Please start a new order."),
    PrecheckoutProblem.NOT_PENDING: lambda: _("This order is already paid or closed. See /orders."),
    PrecheckoutProblem.EXPIRED: lambda: _("This invoice has expired. Please start a new order."),
    PrecheckoutProblem.AMOUNT: lambda: _("The price has changed. Please start a new order."),
}


def provider() -> str:
    """The provider these updates are for (build_router registers the handlers only when there is one)."""
    name = telegram_payments_provider()
    if name is None:
        raise LookupError("no payment provider takes Telegram's payment updates")
    return name


async def pre_checkout(query: PreCheckoutQuery, services: Services) -> None:
    problem = await services.orders.precheckout_problem(provider(), query.invoice_payload, query.from_user.id,
                                               Decimal(query.total_amount), query.currency)
    if problem is None:
        await query.answer(ok=True)
    else:
        await query.answer(ok=False, error_message=REFUSALS[problem]())


async def successful_payment(message: Message, services: Services) -> None:
    paid = message.successful_payment
    await services.payments.record(PaymentReport(
        provider=provider(), invoice_id=paid.invoice_payload, payment_id=paid.telegram_payment_charge_id,
        amount=Decimal(paid.total_amount), asset=paid.currency, paid_at=message.date,
        raw=paid.model_dump(mode="json", exclude_none=True)))


async def refunded_payment(message: Message, services: Services) -> None:
    await services.refunds.telegram_refunded(message.refunded_payment.telegram_payment_charge_id)


def build_router() -> Router:
    router = Router(name="telegram_payments")
    if telegram_payments_provider() is None:  # no provider takes Telegram's payment updates
        return router
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, F.successful_payment)
    router.message.register(refunded_payment, F.refunded_payment)
    return router
