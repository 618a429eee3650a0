"""Payment confirmation: webhooks, polling, expiry and the user's "Check payment".

A webhook is only a hint: after authenticating it we fetch the invoice from the provider, and
only what the provider then reports is recorded (ARCHITECTURE rule 4). Polling catches what
webhooks miss. Recording happens in services.orders; this module talks to the network and
tells people what happened, always after the database commit.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from presentation.formatting import amount_text, datetime_text, later, order_title
from presentation.refunds import admin_request_line
from presentation.texts import asset_name, provider_name, status_label
from processing.fulfilment import FulfilmentWorker
from processing.notify import Notifier
from processing.refunds import EXCESS, RefundService, excess_markup
from services.admin_prefs import AdminPrefService
from services.orders import OrderService, PaymentOutcome, PaymentReport, Status
from services.payments.base import PaymentProvider, ProviderError, WebhookRejected
from services.payments.registry import editable_messages
from transport import metrics

log = logging.getLogger(__name__)

CHECK_INTERVAL = timedelta(seconds=10)
UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Answer to a user's "Check payment": `state` is checked, too_soon or unavailable."""

    state: str
    status: Status | None = None


class PaymentProcessor:
    def __init__(self, orders: OrderService, providers: Mapping[str, PaymentProvider], notifier: Notifier,
                 worker: FulfilmentWorker, *, tz: ZoneInfo = UTC, admin_prefs: AdminPrefService | None = None,
                 refunds: RefundService | None = None) -> None:
        self.orders, self.providers, self.notifier, self.worker = orders, providers, notifier, worker
        self.tz = tz  # deadlines are shown in the operator's time zone
        self.admin_prefs = admin_prefs  # who wants a notice per sale (None: nobody)
        self.refunds = refunds  # an extra payment for a paid order goes back through it
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
        metrics.PAYMENT_OUTCOMES.labels(provider=report.provider, outcome=outcome.kind).inc()
        await self._after(report, outcome)
        return outcome

    async def check(self, provider_name: str, invoice_ids: Sequence[str]) -> list[PaymentOutcome]:
        """Fetch these invoices from the provider and record whatever it says was paid."""
        if not invoice_ids:
            return []
        provider = self.providers[provider_name]
        metrics.PROVIDER_REQUESTS.labels(provider=provider_name).inc()
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
                if chat_id and message_id and not editable_messages(provider):  # the provider's own message
                    await self.notifier.delete(chat_id, message_id)
                elif chat_id and message_id:  # the final state, without Pay / Check / Cancel
                    await self.notifier.edit(chat_id, message_id, lambda oid=expired.order_id: _(
                        "⌛️ Invoice for order #{id} has expired.").format(id=oid))
            await self.notifier.send(expired.user_id, lambda oid=expired.order_id: _(
                "⌛️ Order #{id} expired before we saw a payment for it. If you already paid, nothing is "
                "lost: an order paid in time is still delivered, and a payment that arrives late is delivered "
                "or returned after a check. If you still want it, start a new order.").format(id=oid))

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
            await self._extra_payment(report, outcome)
            return
        if outcome.kind != "applied":
            return
        oid, asset = outcome.order_id, asset_name(outcome.asset)
        got, expected = later(amount_text, outcome.paid_total, asset), later(amount_text, outcome.expected, asset)
        invoices = await self.orders.invoices(oid)
        if outcome.to_status != Status.PAID_PARTIAL:
            await self._settle_messages(oid, outcome.to_status, invoices)
        if outcome.to_status == Status.PAID:
            await self.notifier.send(outcome.user_id, lambda: _(
                "✅ Payment received for order #{id}. Delivering now…").format(id=oid))
        elif outcome.to_status == Status.PAID_OVER:
            over = later(amount_text, outcome.paid_total - outcome.expected, asset)
            await self.notifier.send(outcome.user_id, lambda: _(
                "✅ Payment received for order #{id} — {got}, more than the {expected} due. Delivering now.\n"
                "⏳ Refund pending: an admin will return the overpaid {over} to you; we'll message you here "
                "when it is sent.").format(id=oid, got=got, expected=expected, over=over))
        elif outcome.to_status == Status.PAID_PARTIAL:
            due = later(amount_text, outcome.expected - outcome.paid_total, asset)
            invoice = next((i for i in invoices if i.provider == report.provider
                            and i.external_id == report.invoice_id), None)
            deadline = (later(datetime_text, invoice.expires_at, self.tz, zone=True)
                        if invoice is not None else "—")
            await self.notifier.send(outcome.user_id, lambda: _(
                "🟡 We received {got} of {expected} for order #{id}: <b>{due}</b> is still due. Send exactly "
                "{due} more with the same invoice (same address and network) by {deadline}; we'll deliver as "
                "soon as it is complete.").format(id=oid, got=got, expected=expected, due=due, deadline=deadline))
        elif outcome.to_status == Status.PAID_LATE:
            await self.notifier.send(outcome.user_id, lambda: _(
                "🟡 Your payment for order #{id} arrived after the invoice expired. Our team will check it "
                "and deliver or refund — you don't need to do anything.").format(id=oid))
        if outcome.to_status == Status.PAID_OVER:  # the promise to the buyer is one tap away
            for admin_id in self.notifier.admin_ids:
                await self.notifier.send(admin_id, lambda: _(
                    "⚠️ Order #{id} is {status}: received {got}, expected {expected} via {provider} "
                    "(user <code>{user}</code>). The buyer was told an admin will return the overpaid "
                    "part.").format(id=oid, status=status_label(outcome.to_status), got=got, expected=expected,
                                    provider=report.provider, user=outcome.user_id),
                    lambda: excess_markup(oid))
        elif outcome.to_status in (Status.PAID_PARTIAL, Status.PAID_LATE):
            await self.notifier.alert_admins(lambda: _(
                "⚠️ Order #{id} is {status}: received {got}, expected {expected} via {provider} "
                "(user <code>{user}</code>).").format(
                id=oid, status=status_label(outcome.to_status), got=got, expected=expected, provider=report.provider,
                user=outcome.user_id))
        if outcome.to_status in (Status.PAID, Status.PAID_OVER):
            self.worker.wake()
            await self._sale_notice(report, outcome)

    async def _extra_payment(self, report: PaymentReport, outcome: PaymentOutcome) -> None:
        """Money for an order already paid is owed back: it becomes an excess refund of just that
        payment at once (sent by the provider where it pays back, else the buyer is asked for an
        address), through the same exactly-once refund flow as an admin's."""
        oid = outcome.order_id
        result = None
        if self.refunds is not None and outcome.payment_id is not None:
            result = await self.refunds.refund(oid, admin_id=None, kind=EXCESS, only=frozenset({outcome.payment_id}))
        if result is not None and result.ok:
            requests = result.requests
            await self._tell_extra(report, outcome, lambda: _(
                "💸 We received another payment of {amount} for order #{id}, which is already {status}. "
                "It is not lost: it goes back to you (see the refund message above)."), lambda: _(
                "⚠️ Extra payment for order #{id} (already {status}): {amount} via {provider}, user "
                "<code>{user}</code>. It is being returned through the refund flow:"),
                below=lambda: "\n" + "\n".join(admin_request_line(r) for r in requests))
            return
        await self._tell_extra(report, outcome, lambda: _(
            "💸 We received another payment of {amount} for order #{id}, which is already {status}. "
            "It is not lost: an admin will return it to you, and we'll message you when it is sent."), lambda: _(
            "⚠️ Extra payment for order #{id} (already {status}): {amount} via {provider}. "
            "Refund it to the user <code>{user}</code>; they were told an admin will return it."))

    async def _tell_extra(self, report: PaymentReport, outcome: PaymentOutcome, buyer: Callable[[], str],
                          admins: Callable[[], str], below: Callable[[], str] = str) -> None:
        """An extra payment told to the buyer and to the admins, both texts filled with the same values in
        each reader's language (the admins' may have lines `below` it)."""
        extra = later(amount_text, report.amount, asset_name(report.asset))

        def told(text: Callable[[], str]) -> str:
            return text().format(id=outcome.order_id, status=status_label(outcome.from_status), amount=extra,
                                 provider=report.provider, user=outcome.user_id)

        await self.notifier.send(outcome.user_id, lambda: told(buyer))
        await self.notifier.alert_admins(lambda: told(admins) + below())

    async def _sale_notice(self, report: PaymentReport, outcome: PaymentOutcome) -> None:
        """One notice per sale to each admin who has not switched them off (admin panel)."""
        if self.admin_prefs is None:
            return
        order = await self.orders.get(outcome.order_id)
        paid = later(amount_text, outcome.paid_total, asset_name(outcome.asset))
        for admin_id in await self.admin_prefs.sale_notice_admins(self.notifier.admin_ids):
            await self.notifier.send(admin_id, lambda: _(
                "💰 Sale: order #{id} · {title} · {paid} via {provider} · user <code>{user}</code>").format(
                id=order.id, title=html.escape(order_title(order)), paid=paid, provider=provider_name(report.provider),
                user=order.user_id))

    async def _settle_messages(self, order_id: int, status: Status, invoices: list) -> None:
        """Edit the order's invoice messages to their final state: no Pay / Check / Cancel buttons left
        on an order that is paid (a provider's own invoice message, e.g. Telegram's, shows "paid" by itself)."""
        for invoice in invoices:
            if invoice.chat_id and invoice.message_id and editable_messages(invoice.provider):
                await self.notifier.edit(invoice.chat_id, invoice.message_id, lambda: _(
                    "🧾 Order #{id}: {status}. Details in /orders.").format(id=order_id, status=status_label(status)))
