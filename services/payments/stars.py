"""Telegram Stars: invoices in XTR sent by the bot, pre-checkout checks, refunds.

Stars payments arrive as updates (pre_checkout_query, successful_payment), not webhooks, and
cannot be polled per invoice; the charge id makes each payment count once.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import LabeledPrice
from aiogram.utils.i18n import gettext as _

from config.settings import Settings
from db.base import utcnow
from services.money import stars_for
from services.payments.base import (
    InvoiceDraft,
    InvoiceRequest,
    Method,
    ProviderError,
    RemoteInvoice,
    WebhookRejected,
    Wiring,
)


def invoice_payload(order_id: int) -> str:
    """Our invoice id for Stars: the order plus a nonce, so a re-issued invoice is distinct."""
    return f"order:{order_id}:{secrets.token_hex(4)}"


class StarsProvider:
    name = "stars"
    pollable = False  # payments reach us as updates only
    minimum_cents = 1
    webhook_max_bytes = None
    editable_messages = False  # the invoice is Telegram's own message: deleted on expiry, shows "paid" itself
    one_live_invoice = True  # a Stars invoice has no expiry of its own: only the newest may be paid
    telegram_payments = True

    def __init__(self, bot: Bot, stars_usd_rate: Decimal) -> None:
        self.bot, self.rate = bot, stars_usd_rate

    @classmethod
    def title(cls) -> str:
        return _("Telegram Stars")

    @classmethod
    def from_settings(cls, settings: Settings, wiring: Wiring) -> StarsProvider | None:
        return cls(wiring.bot, settings.stars_usd_rate) if settings.stars_enabled else None

    def methods(self) -> list[Method]:
        return [Method(self.name, self.name)]

    def method_label(self, method: Method, amount_cents: int) -> str:
        """Shows the price in Stars, the currency the payer sees on Telegram's invoice."""
        stars = self.price(amount_cents)
        return _("⭐ Telegram Stars ({stars} ⭐)").format(stars=stars) if stars else _("⭐ Telegram Stars")

    def price(self, amount_cents: int) -> int:
        return stars_for(amount_cents, self.rate)

    async def create_invoice(self, request: InvoiceRequest) -> InvoiceDraft:
        """Prices the invoice; `present` sends it once it is recorded."""
        return InvoiceDraft(
            external_id=invoice_payload(request.order_id), amount=Decimal(self.price(request.amount_cents)),
            asset="XTR", expires_at=utcnow() + timedelta(seconds=request.expires_in_seconds))

    async def present(self, invoice_id: str, request: InvoiceRequest, amount: Decimal) -> tuple[int, int]:
        message = await self.bot.send_invoice(
            chat_id=request.user_id, title=request.title[:32], description=request.description[:255],
            payload=invoice_id, currency="XTR", prices=[LabeledPrice(label=request.title[:32], amount=int(amount))])
        return message.chat.id, message.message_id

    async def fetch(self, external_ids: Sequence[str]) -> list[RemoteInvoice]:
        return []  # Stars payments reach us as updates only

    def webhook_invoice_ids(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        raise WebhookRejected("Stars has no webhook")

    async def refund(self, user_id: int, charge_id: str) -> None:
        await self.bot.refund_star_payment(user_id=user_id, telegram_payment_charge_id=charge_id)

    def payback_terms(self, payment: Any, amount: Decimal) -> tuple[str, Decimal]:
        return payment.asset, amount  # Telegram returns a whole charge, never a part

    async def pay_back(self, payment: Any, *, user_id: int, asset: str, amount: Decimal, spend_id: str,
                       comment: str) -> str:
        """Return the whole charge through Telegram (a repeat is answered CHARGE_ALREADY_REFUNDED)."""
        if amount != payment.amount:
            raise ProviderError("Telegram Stars can only be returned as a whole charge", retryable=False)
        try:
            await self.refund(user_id, payment.external_id)
        except TelegramAPIError as exc:
            if "ALREADY_REFUNDED" not in exc.message:
                raise ProviderError(f"Telegram: {exc.message}",
                                    retryable=not isinstance(exc, TelegramBadRequest)) from None
        return "Telegram Stars"

    async def close(self) -> None:
        pass

