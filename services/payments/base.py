"""The interface every payment provider implements.

A provider is one module: its id and display name, the methods it offers with their labels, its
minimum, its webhook route, whether polling can tell anything, how its invoice messages behave,
whether it takes Telegram's own payment updates, and refunds where it can (`pay_back`, see
processing.refunds.PaysBack). It creates invoices, reports their state in batches and authenticates
its webhooks. It never changes an order itself: it returns `PaymentReport`s, and services.orders
decides what they mean. services.payments.registry lists the provider classes and builds the
enabled ones from settings; nothing else names a provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar, Protocol

from services.orders import PaymentReport

if TYPE_CHECKING:
    from aiogram import Bot

    from config.settings import Settings


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
    asset: str | None = None  # for providers that bill one crypto asset per invoice


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


@dataclass(frozen=True, slots=True)
class Method:
    """One way to pay offered at checkout: a provider, and for providers that bill one asset per
    invoice, that asset."""

    id: str  # unique across providers, no ":" (the callback-data separator)
    provider: str
    asset: str | None = None


@dataclass(frozen=True, slots=True)
class Wiring:
    """What a provider may need from the app to be built (besides its settings)."""

    bot: Bot
    public_url: Callable[[str], str | None]  # a path on the HTTP app -> its public URL, None when unknown


class PaymentProvider(Protocol):
    # Who it is ---------------------------------------------------------------------------------
    name: ClassVar[str]  # stable id stored with orders and invoices; never change it
    # How it behaves --------------------------------------------------------------------------
    pollable: ClassVar[bool]  # whether fetch() can tell anything (else payments only arrive as updates)
    minimum_cents: ClassVar[int]  # smallest order it accepts, USD cents (1: any)
    #: Body cap of its webhook `POST /webhooks/{name}`; None: it has no webhook.
    webhook_max_bytes: ClassVar[int | None]
    #: The invoice message is the bot's own text (edited to its final state); False: the provider's
    #: own message (`present`), which cannot be edited and is deleted when the order expires.
    editable_messages: ClassVar[bool]
    #: A new invoice for an order supersedes the older live one of this provider (it has no expiry
    #: of its own that would stop it being paid).
    one_live_invoice: ClassVar[bool]
    #: It is paid through Telegram's own payment updates (pre_checkout_query, successful_payment,
    #: refunded_payment), which handlers.payments routes to it.
    telegram_payments: ClassVar[bool]

    @classmethod
    def title(cls) -> str:
        """Display name, translated (e.g. in receipts and /stats)."""
        ...

    @classmethod
    def from_settings(cls, settings: Settings, wiring: Wiring) -> PaymentProvider | None:
        """The provider these settings enable, or None when its credentials are unset."""
        ...

    def methods(self) -> list[Method]: ...

    def method_label(self, method: Method, amount_cents: int) -> str:
        """The button text for paying `amount_cents` with this method, translated."""
        ...

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
