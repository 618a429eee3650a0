"""The interface every payment provider implements.

A provider creates invoices, reports their state in batches, authenticates its webhooks, and
refunds where it can. It never changes an order itself: it returns `PaymentReport`s, and
services.orders decides what they mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from services.orders import PaymentReport


class ProviderError(Exception):
    """The provider could not be reached or refused; `retryable` says whether trying later may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class WebhookRejected(Exception):
    """A webhook failed authentication or could not be parsed; answer 401 and change nothing."""


@dataclass(frozen=True, slots=True)
class InvoiceRequest:
    order_id: int
    user_id: int
    amount_cents: int  # USD
    title: str
    description: str
    expires_in_seconds: int
    asset: str | None = None  # for providers that bill one crypto asset (KryptoExpress)


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """An invoice as the provider created it."""

    external_id: str
    amount: Decimal  # in `asset` units, as the provider states it
    asset: str  # "USD" for fiat-denominated invoices, "XTR" for Stars, or a crypto code
    expires_at: datetime
    pay_url: str | None = None
    address: str | None = None  # on-chain address the user pays to
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteInvoice:
    """The provider's current view of one invoice."""

    external_id: str
    state: str  # "active", "paid", "partial", "expired"
    payments: tuple[PaymentReport, ...] = ()
    raw: dict = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: str  # stable id stored with orders: "stars", "cryptopay", "kryptoexpress"
    pollable: bool  # whether fetch() can tell anything (Stars payments only arrive as updates)

    async def create_invoice(self, request: InvoiceRequest) -> InvoiceDraft: ...

    async def fetch(self, external_ids: Sequence[str]) -> list[RemoteInvoice]:
        """Current state of these invoices; implementations batch (≤ 100 ids per request)."""
        ...

    def webhook_invoice_ids(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        """Authenticate a webhook and name the invoices it concerns (raise WebhookRejected).

        The caller then fetches those invoices: a notification alone never counts."""
        ...

    async def present(self, invoice_id: str, request: InvoiceRequest, amount: Decimal) -> tuple[int, int] | None:
        """Show the recorded invoice to the payer if the provider does that itself (Stars: the bot's
        invoice message), returning (chat_id, message_id); None means the bot shows the pay link
        or address. Called only after the invoice is recorded, so a payment can never arrive for an
        invoice we don't know."""
        ...

    async def close(self) -> None: ...
