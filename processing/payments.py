"""Payment confirmation: webhooks, polling, expiry and the user's "Check payment".

A webhook is only a hint: after authenticating it we fetch the invoice from the provider, and
only what the provider then reports is recorded (ARCHITECTURE rule 4). Polling catches what
webhooks miss. Recording happens in services.orders; this module talks to the network and
tells people what happened, always after the database commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from aiogram.utils.i18n import gettext as _
from prometheus_client import Counter

from bot.texts import status_label
from processing.fulfilment import FulfilmentWorker
from processing.notify import Notifier
from services.money import format_amount
from services.orders import OrderService, PaymentOutcome, PaymentReport, Status
from services.payments.base import PaymentProvider, ProviderError, WebhookRejected

log = logging.getLogger(__name__)

CHECK_INTERVAL = timedelta(seconds=10)
PROVIDER_REQUESTS = Counter("payment_provider_checks_total", "Invoice status fetches", ["provider"])
OUTCOMES = Counter("payment_outcomes_total", "Recorded payment outcomes", ["provider", "outcome"])


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Answer to a user's "Check payment": `state` is checked, too_soon or unavailable."""

    state: str
    status: Status | None = None


class PaymentProcessor:
    def __init__(self, orders: OrderService, providers: Mapping[str, PaymentProvider], notifier: Notifier,
                 worker: FulfilmentWorker) -> None:
        self.orders, self.providers, self.notifier, self.worker = orders, providers, notifier, worker
        self._poll_lock = asyncio.Lock()

    # Inbound ----------------------------------------------------------------------------

    async def handle_webhook(self, provider_name: str, headers: Mapping[str, str], body: bytes) -> int:
        """HTTP status for a provider's webhook: 401 forged, 503 provider unreachable, 200 done."""
        provider = self.providers.get(provider_name)
        if provider is None:
            return 404
        try:
            invoice_ids = provider.webhook_invoice_ids(headers, body)
        except WebhookRejected as exc:
            log.warning("rejected %s webhook: %s", provider_name, exc)
            return 401
        try:
            await self.check(provider_name, invoice_ids)
        except ProviderError as exc:
            log.warning("%s webhook: could not confirm with the provider: %s", provider_name, exc)
            return 503  # the provider retries; polling will also pick it up
        return 200

    async def record(self, report: PaymentReport) -> PaymentOutcome:
        """Record one payment (Stars' successful_payment, or a fetched provider report) and react."""
        outcome = await self.orders.apply_payment(report)
        OUTCOMES.labels(provider=report.provider, outcome=outcome.kind).inc()
        await self._after(report, outcome)
        return outcome

    async def check(self, provider_name: str, invoice_ids: Sequence[str]) -> list[PaymentOutcome]:
        """Fetch these invoices from the provider and record whatever it says was paid."""
        if not invoice_ids:
            return []
        provider = self.providers[provider_name]
        PROVIDER_REQUESTS.labels(provider=provider_name).inc()
        outcomes = []
        for remote in await provider.fetch(invoice_ids):
            for report in remote.payments:
                outcomes.append(await self.record(report))
            if remote.state == "expired" and not remote.payments:
                await self.orders.close_invoice(provider_name, remote.external_id)
        return outcomes

    # Scheduled --------------------------------------------------------------------------

    async def poll(self, *, due_only: bool = False) -> None:
        """Re-check every invoice that may still be paid (or only those of orders now due to
        expire), provider by provider, in batches."""
        async with self._poll_lock:
            for name, provider in self.providers.items():
                if not provider.pollable:
                    continue
                invoices = await self.orders.pending_invoices(name, due_only=due_only)
                if not invoices:
                    continue
                try:
                    await self.check(name, [i.external_id for i in invoices])
                except ProviderError as exc:
                    log.warning("polling %s failed: %s", name, exc)

    async def expire(self) -> None:
        """Expire unpaid orders past their time; tell the user and update the invoice message.

        The orders' invoices are checked with their providers first, so money that arrived just
        before the deadline is not mistaken for late."""
        await self.poll(due_only=True)
        await self._expire_due()

    async def _expire_due(self) -> None:
        for expired in await self.orders.expire_due():
            for provider, chat_id, message_id in expired.invoices:
                if chat_id and message_id and provider == "stars":  # invoices cannot be edited
                    await self.notifier.delete(chat_id, message_id)
                elif chat_id and message_id:
                    await self.notifier.edit(chat_id, message_id, lambda oid=expired.order_id: _(
                        "⌛️ Invoice for order #{id} has expired.").format(id=oid))
            await self.notifier.send(expired.user_id, lambda oid=expired.order_id: _(
                "⌛️ Order #{id} expired before it was paid. Nothing was charged. "
                "If you still want it, start a new order.").format(id=oid))

    async def reconcile(self) -> None:
        """At start-up: ask providers about every open invoice, expire what ran out while we
        were down, and resume fulfilment."""
        await self.poll()  # every open invoice, the due ones included
        await self._expire_due()
        self.worker.wake()

    # The user's button ------------------------------------------------------------------

    async def check_now(self, order_id: int) -> CheckResult:
        invoices = [i for i in await self.orders.invoices(order_id) if i.provider in self.providers]
        pollable = [i for i in invoices if i.status in ("active", "partial") and self.providers[i.provider].pollable]
        if pollable:
            if not await self.orders.claim_check(pollable[-1].id, CHECK_INTERVAL):
                return CheckResult("too_soon")
            try:
                for invoice in pollable:
                    await self.check(invoice.provider, [invoice.external_id])
            except ProviderError:
                return CheckResult("unavailable")
        order = await self.orders.get(order_id)
        return CheckResult("checked", Status(order.status))

    # After recording ----------------------------------------------------------------------

    async def _after(self, report: PaymentReport, outcome: PaymentOutcome) -> None:
        if outcome.kind == "extra_payment":
            await self.notifier.alert_admins(lambda: _(
                "⚠️ Extra payment for order #{id} (already {status}): {amount} via {provider}. "
                "Refund it to the user <code>{user}</code>.").format(
                id=outcome.order_id, status=status_label(outcome.from_status),
                amount=format_amount(report.amount, report.asset),
                provider=report.provider, user=outcome.user_id))
            return
        if outcome.kind != "applied":
            return
        oid, got = outcome.order_id, format_amount(outcome.paid_total, outcome.asset)
        expected = format_amount(outcome.expected, outcome.asset)
        if outcome.to_status == Status.PAID:
            await self.notifier.send(outcome.user_id, lambda: _(
                "✅ Payment received for order #{id}. Delivering now…").format(id=oid))
        elif outcome.to_status == Status.PAID_OVER:
            await self.notifier.send(outcome.user_id, lambda: _(
                "✅ Payment received for order #{id} — {got}, more than the {expected} due. Delivering now; "
                "we'll refund the difference.").format(id=oid, got=got, expected=expected))
        elif outcome.to_status == Status.PAID_PARTIAL:
            await self.notifier.send(outcome.user_id, lambda: _(
                "🟡 We received {got} of {expected} for order #{id}. Please pay the rest with the same "
                "invoice; we'll deliver as soon as it is complete.").format(id=oid, got=got, expected=expected))
        elif outcome.to_status == Status.PAID_LATE:
            await self.notifier.send(outcome.user_id, lambda: _(
                "🟡 Your payment for order #{id} arrived after the invoice expired. Our team will check it "
                "and deliver or refund — you don't need to do anything.").format(id=oid))
        if outcome.to_status in (Status.PAID_OVER, Status.PAID_PARTIAL, Status.PAID_LATE):
            await self.notifier.alert_admins(lambda: _(
                "⚠️ Order #{id} is {status}: received {got}, expected {expected} via {provider} "
                "(user <code>{user}</code>).").format(
                id=oid, status=status_label(outcome.to_status), got=got, expected=expected, provider=report.provider,
                user=outcome.user_id))
        if outcome.to_status in (Status.PAID, Status.PAID_OVER):
            self.worker.wake()
