"""Refund wording: what the buyer is told about their money back (never "sent" before it was), what an
admin is asked to send by hand, and each payment's refund as an admin reads it (HTML; references,
addresses and errors escaped)."""

from __future__ import annotations

import html
from decimal import Decimal

from aiogram.utils.i18n import gettext as _

from db.models_refunds import RefundRequest
from presentation.formatting import amount_text
from services.products import TakenBack
from services.refunds import RefundKind, RequestState, network_of


def owed_text(amount: Decimal, asset: str) -> str:
    """What is sent back, in the unit it goes back in: "12.5 USDT", "770 ⭐"."""
    return amount_text(amount, asset)


def reference_text(reference: str | None) -> str:
    """A refund's reference as the reader reads it: a payment provider's "transfer 501" in their words; a charge
    id or a transaction hash as it is."""
    kind, _sep, number = (reference or "").partition(" ")
    if kind == "transfer" and number.isdigit():
        return _("transfer {id}").format(id=number)
    return html.escape(reference or "")


#: A refund paid as API credit (processing.refunds.CREDIT_REFERENCE).
CREDIT_REFERENCE = "api_credit"


def money_line(request: RefundRequest) -> str:
    """One payment's refund as the buyer reads it (never "sent" before it was)."""
    amount = owed_text(request.amount, request.asset)
    if request.state == RequestState.SENT and request.reference == CREDIT_REFERENCE:
        return _("💳 {amount} added to your API credit (/api): Telegram returns Stars only as a whole "
                 "payment.").format(amount=amount)
    if request.state == RequestState.SENT:
        return _("💸 {amount} sent back ({reference}).").format(amount=amount,
                                                               reference=reference_text(request.reference))
    if request.state == RequestState.AWAITING_ADDRESS:
        return _("📮 To send {amount} back on the {network} network we need your wallet address: tap the "
                 "button below and send it.").format(amount=amount, network=html.escape(network_of(request.asset)))
    if request.state == RequestState.AWAITING_ADMIN:
        return _("⏳ Refund pending: {amount} will be sent to <code>{address}</code>. You'll get the transaction "
                 "here once it's sent.").format(amount=amount, address=html.escape(request.address or ""))
    return _("⏳ Refund pending: {amount} will be sent back to you; we'll tell you here when it's sent.").format(
        amount=amount)


def admin_send_text(request: RefundRequest) -> str:
    return _("💸 Refund for order #{order} (user <code>{user}</code>): send exactly <b>{amount}</b> on the "
             "{network} network to <code>{address}</code>.\nThen record the transaction: tap below, or "
             "/refund_done {order} TX_HASH").format(
        order=request.order_id, user=request.user_id, amount=owed_text(request.amount, request.asset),
        network=html.escape(network_of(request.asset)), address=html.escape(request.address or ""))


def admin_request_line(request: RefundRequest) -> str:
    """One payment's refund as an admin reads it."""
    amount = owed_text(request.amount, request.asset)
    if request.state == RequestState.SENT:
        return _("✅ {amount} sent back ({reference}).").format(amount=amount,
                                                               reference=reference_text(request.reference))
    if request.state == RequestState.AWAITING_ADDRESS:
        return _("📮 {amount} on-chain: the buyer is asked for an address; you'll then get exactly what to "
                 "send.").format(amount=amount)
    if request.state == RequestState.REQUESTED:
        return _("⏳ {amount} not sent yet ({error}); retried every minute.").format(
            amount=amount, error=html.escape(request.error or "in progress"))
    if request.state == RequestState.FAILED:
        return _("⚠️ {amount} could not be sent: {error}. Send it by hand, then record it: "
                 "/refund_done {order} TX_HASH").format(amount=amount, error=html.escape(request.error or "?"),
                                                          order=request.order_id)
    return f"{amount}: {request.state}"


def buyer_text(order_id: int, kind: str, taken: TakenBack | None, requests: list[RefundRequest]) -> str:
    if kind == RefundKind.FULL:
        lines = [_("↩️ <b>Refund of order #{id}</b>").format(id=order_id)]
    elif kind == RefundKind.UNUSED:
        lines = [_("↩️ <b>Refund of order #{id}</b> for its unused part").format(id=order_id)]
    else:
        lines = [_("↩️ <b>Refund of what you paid over the price of order #{id}</b>").format(id=order_id)]
    if taken is not None:
        lines.append(taken.text())
    lines += [money_line(r) for r in requests]
    return "\n".join(lines)


def sent_text(request: RefundRequest) -> str:
    return _("💸 <b>Refund sent</b> for order #{id}: {amount} to <code>{address}</code>.\n"
             "Transaction: <code>{tx}</code>").format(
        id=request.order_id, amount=owed_text(request.amount, request.asset),
        address=html.escape(request.address or "—"), tx=html.escape(request.reference or ""))


def failed_text(request: RefundRequest) -> str:
    return _("⚠️ Refund of order #{order} could not be sent automatically: {error}.\nSend {amount} to user "
             "<code>{user}</code> by hand, then record it: /refund_done {order} TX_HASH").format(
        order=request.order_id, error=html.escape(request.error or "?"),
        amount=owed_text(request.amount, request.asset), user=request.user_id)


def announced_text(request: RefundRequest) -> str:
    """A refund sent later (a retried payout) as the buyer reads it."""
    return _("Refund for order #{id}:").format(id=request.order_id) + "\n" + money_line(request)
