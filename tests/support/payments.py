"""A scriptable payment provider (an outside party, so a stand-in is fair) and a product whose
fulfilment records its effects, for testing the payment core."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from db.models import Order
from services.orders import PaymentReport
from services.payments.base import InvoiceDraft, InvoiceRequest, Method, ProviderError, RemoteInvoice, WebhookRejected
from services.products import Delivery, TakenBack


@dataclass
class RemoteState:
    amount: Decimal
    expires_at: datetime
    paid: list[tuple[str, Decimal, datetime]] = field(default_factory=list)


class ScriptedProvider:
    """Invoices in USD; `pay()` is the payer acting at the provider."""

    pollable = True
    minimum_cents = 1
    webhook_max_bytes = None
    editable_messages = True
    one_live_invoice = False
    telegram_payments = False

    def __init__(self, clock, name: str = "fakepay") -> None:
        self.name, self.clock = name, clock
        self.invoices: dict[str, RemoteState] = {}
        self.fetch_requests = 0
        self.down = False

    @classmethod
    def title(cls) -> str:
        return "Scripted pay"

    def methods(self) -> list[Method]:
        return [Method(self.name, self.name)]

    def method_label(self, method: Method, amount_cents: int) -> str:
        return f"Pay with {self.name}"

    async def create_invoice(self, request: InvoiceRequest) -> InvoiceDraft:
        external_id = f"inv-{request.order_id}-{len(self.invoices)}"
        expires_at = self.clock() + timedelta(seconds=request.expires_in_seconds)
        amount = Decimal(request.amount_cents) / 100
        self.invoices[external_id] = RemoteState(amount, expires_at)
        return InvoiceDraft(external_id=external_id, amount=amount, asset="USD", expires_at=expires_at,
                            pay_url=f"https://pay.example/{external_id}")

    def pay(self, external_id: str, amount: Decimal | None = None) -> None:
        state = self.invoices[external_id]
        state.paid.append((f"{external_id}/tx{len(state.paid)}", amount or state.amount, self.clock()))

    async def fetch(self, external_ids: Sequence[str]) -> list[RemoteInvoice]:
        if self.down:
            raise ProviderError("provider down")
        result = []
        for start in range(0, len(external_ids), 100):
            self.fetch_requests += 1
            for external_id in external_ids[start:start + 100]:
                state = self.invoices.get(external_id)
                if state is None:
                    continue
                reports = tuple(PaymentReport(self.name, external_id, tx, amount, "USD", paid_at=at)
                                for tx, amount, at in state.paid)
                total = sum((a for _, a, _ in state.paid), Decimal(0))
                remote_state = ("paid" if total >= state.amount else "partial" if total else
                                "expired" if self.clock() > state.expires_at else "active")
                result.append(RemoteInvoice(external_id, remote_state, reports))
        return result

    def webhook_invoice_ids(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        if headers.get("x-test-signature") != "ok":
            raise WebhookRejected("bad signature")
        return [json.loads(body)["invoice_id"]]

    async def present(self, invoice_id: str, request: InvoiceRequest, amount: Decimal) -> None:
        return None  # the bot shows the pay link (and address)

    async def close(self) -> None:
        pass


class RecordingProduct:
    """Fulfilment with an outside effect ('a key'), idempotent the way real products must be:
    look the effect up by order id before creating it. The lookup and the creation are two round
    trips to the outside, so a fulfilment running twice at once for an order creates two effects
    (counted in ``created``), while a retry after a crash finds the first and creates none."""

    product = "test"

    def __init__(self) -> None:
        self.created: dict[int, int] = {}  # order id -> effects created for it
        self.revoked: set[int] = set()  # orders whose effect was withdrawn by a refund
        self.fail_next = 0

    async def fulfil(self, order: Order) -> Delivery:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("upstream unavailable")
        exists = order.id in self.created  # the lookup...
        await asyncio.sleep(0)  # ...and the creation are separate requests
        if not exists:
            self.created[order.id] = self.created.get(order.id, 0) + 1
        return Delivery(text=lambda: f"Here is item {order.id}", record={"item": order.id})

    def takes_back(self, order: Order) -> str:
        return f"item {order.id} is withdrawn"

    async def revoke(self, order: Order) -> TakenBack:
        """Withdraw the order's effect (idempotent); `fail_next` makes the outside party fail first."""
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("upstream unavailable")
        self.revoked.add(order.id)
        return TakenBack(lambda: f"Item {order.id} withdrawn", {"item": order.id})
