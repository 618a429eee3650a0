"""Refunds: take back what was bought, then send the money back, exactly once.

An admin's confirmed refund is recorded in one transaction: the order becomes `refunded` (a full
refund) and one `refund_requests` row per payment says what is owed back. Then, outside any
transaction: the product takes back what it delivered (`Fulfiller.revoke`: the API key is switched
off, the plan time ends), and providers that can pay back by API do it (`PaysBack`: through Telegram,
or by a transfer to the payer's wallet keyed by the request's `spend_id`). Money
paid on-chain is sent by a person: the buyer is asked for an address, the admin is shown exactly
what to send, and records the transaction. The buyer is told what is pending and what was sent; never
"refunded" before money moved. An "excess" refund returns only what was paid over the price. An
"unused" refund (a suspended marketplace provider's subscribers) ends the order like a full one but
returns only its unused part (`part`, decided once and stored with the refund): each payment's share
rounded half-up to its smallest unit; the product takes back the time and reverses its split in the
same proportion. Telegram returns Stars only as a whole charge, so the unused part of a Stars payment
becomes the buyer's API credit in the ledger (its USD value, at once).

Whatever fails half-way (a provider down, a crash) is picked up by `sweep()`: take-backs still
pending and automatic payouts still requested are retried under a lease (30 s, renewed by a heartbeat while
the provider is asked: services/leases.py); a retried transfer reuses its spend id, so it never pays twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any, Protocol

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.callbacks import RowId, TelegramId
from db.base import utcnow
from db.engine import Database
from db.models import Invoice, Order, Payment
from db.models_refunds import Refund, RefundRequest
from presentation.refunds import (
    CREDIT_REFERENCE,
    admin_send_text,
    announced_text,
    buyer_text,
    failed_text,
    money_line,
    sent_text,
)
from processing.notify import Notifier
from services.audit import AuditService
from services.leases import LEASE, heartbeat
from services.ledger import SALES, Cause, LedgerService, api_credit_account
from services.money import cents_to_decimal, part_of, plain, smallest_unit
from services.orders import MONEY_IN, OrderService, Status, TransitionRefused
from services.payments.base import ProviderError
from services.payments.registry import telegram_payments_provider
from services.plan_upgrade import credited_into
from services.products import Fulfiller, TakenBack
from services.refunds import RefundKind, RequestState, network_of

log = logging.getLogger(__name__)

FULL, EXCESS, UNUSED = RefundKind.FULL, RefundKind.EXCESS, RefundKind.UNUSED
REQUESTED, AWAITING_ADDRESS, AWAITING_ADMIN, SENT, FAILED = (
    RequestState.REQUESTED, RequestState.AWAITING_ADDRESS, RequestState.AWAITING_ADMIN, RequestState.SENT,
    RequestState.FAILED)
OPEN = (REQUESTED, AWAITING_ADDRESS, AWAITING_ADMIN, FAILED)
#: Receiving-address shapes per network (the part after "_" in an asset code, or the asset itself).
ADDRESS_PATTERNS = {
    "TRC20": r"T[1-9A-HJ-NP-Za-km-z]{33}",
    "BTC": r"(bc1[02-9ac-hj-np-z]{11,71}|[13][1-9A-HJ-NP-Za-km-z]{25,34})",
    "ERC20": r"0x[0-9a-fA-F]{40}", "BEP20": r"0x[0-9a-fA-F]{40}", "ETH": r"0x[0-9a-fA-F]{40}",
    "LTC": r"(ltc1[02-9ac-hj-np-z]{11,71}|[LM3][1-9A-HJ-NP-Za-km-z]{25,34})",
    "TON": r"[A-Za-z0-9_-]{48}|-?[0-9]:[0-9a-fA-F]{64}",
}
ANY_ADDRESS = r"[A-Za-z0-9:_-]{20,128}"
REFERENCE = re.compile(r"[A-Za-z0-9:_-]{6,200}")


class PaysBack(Protocol):
    """What a payment provider offers when it can send money back by itself."""

    def payback_terms(self, payment: Payment, amount: Decimal) -> tuple[str, Decimal]:
        """(asset, amount) to send back for `amount` of `payment` (in the payment's own unit)."""
        ...

    async def pay_back(self, payment: Payment, *, user_id: int, asset: str, amount: Decimal, spend_id: str,
                       comment: str) -> str:
        """Send it; returns a reference. Idempotent per `spend_id`. Raises ProviderError."""
        ...


class RefundAct(CallbackData, prefix="rf"):
    """An admin's refund confirmation (handlers.admin.orders): ask shows what it would do, yes does it."""

    action: str  # ask, yes, no
    order_id: RowId
    kind: str = "full"  # full, excess
    back: TelegramId = 0  # the user card to go back to (0: none)


def excess_markup(order_id: int) -> InlineKeyboardMarkup:
    """The admin's one tap from an overpayment alert to the confirmation of refunding the overpaid part."""
    builder = InlineKeyboardBuilder()
    builder.button(text=_("↩️ Refund only the overpaid part"),
                   callback_data=RefundAct(action="ask", order_id=order_id, kind=EXCESS))
    return builder.as_markup()


class AddressCb(CallbackData, prefix="rfa"):
    """The buyer taps to give the address an on-chain refund goes to."""

    request_id: RowId


class SentCb(CallbackData, prefix="rfs"):
    """An admin taps to record the transaction of a refund sent by hand."""

    request_id: RowId


def valid_address(asset: str, text: str) -> str | None:
    """The address, trimmed, if it has the shape of one on the asset's network; else None."""
    value = (text or "").strip()
    pattern = ADDRESS_PATTERNS.get(network_of(asset).upper(), ANY_ADDRESS)
    return value if value.isascii() and re.fullmatch(pattern, value) else None


def valid_reference(text: str) -> str | None:
    value = (text or "").strip()
    return value if value.isascii() and REFERENCE.fullmatch(value) else None


@dataclass(frozen=True, slots=True)
class Owed:
    payment: Payment
    portion: Decimal  # of the payment, in its unit
    asset: str  # what is sent back
    amount: Decimal
    automatic: bool  # the provider pays back by itself
    credit: bool = False  # `amount` USD goes to the buyer's API credit instead (a part of a whole-only payment)


class RefundProblem(StrEnum):
    """Why a refund can't be done (`Preview.refusal`, `RefundResult.refusal`)."""

    NOT_FOUND = "not_found"
    NO_MONEY = "status"  # the order holds no money: its status (`order_status`) says why
    CREDITED = "credited"  # its plan time was credited to an upgrade order (`credited_to`): refund that one
    NO_EXCESS = "no_excess"
    PROVIDER_UNAVAILABLE = "provider_unavailable"  # paid in Stars, and the provider that returns them is off
    ALREADY = "already"  # the same refund was recorded meanwhile (a second tap, another admin)
    CHANGED = "changed"  # the order changed meanwhile (`detail` says how)


class HandRefundProblem(StrEnum):
    """Why a step of a refund sent by hand (the buyer's address, the admin's transaction) was refused."""

    NOT_FOUND = "not_found"
    STATE = "state"  # the request is not waiting for this step (done already?)
    BAD_ADDRESS = "bad_address"
    BAD_REFERENCE = "bad_reference"


@dataclass
class Preview:
    """What a refund would do; `refusal` when it can't be done."""

    order: Order | None
    kind: str
    owed: list[Owed] = field(default_factory=list)
    takes_back: Callable[[], str] | None = None  # the product's words, rendered in the reader's locale
    excess: list[Owed] = field(default_factory=list)  # for a full preview: what an excess refund would send
    refusal: RefundProblem | None = None
    credited_to: int | None = None  # with CREDITED: the upgrade order holding this order's value


@dataclass
class RefundResult:
    ok: bool
    refusal: RefundProblem | None = None
    order_id: int = 0
    kind: str = FULL
    taken_back: TakenBack | None = None
    takeback_error: str | None = None
    requests: list[RefundRequest] = field(default_factory=list)
    order_status: str | None = None  # with NO_MONEY
    credited_to: int | None = None  # with CREDITED
    detail: str = ""  # with CHANGED


def address_markup(requests: list[RefundRequest]) -> InlineKeyboardMarkup | None:
    waiting = [r for r in requests if r.state == AWAITING_ADDRESS]
    if not waiting:
        return None
    builder = InlineKeyboardBuilder()
    for request in waiting:
        builder.button(text=_("📮 Send my refund address"), callback_data=AddressCb(request_id=request.id))
    builder.adjust(1)
    return builder.as_markup()


def sent_markup(request_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✍️ Record the transaction"), callback_data=SentCb(request_id=request_id))
    return builder.as_markup()


class RefundService:
    def __init__(self, database: Database, orders: OrderService, notifier: Notifier, providers: dict[str, Any],
                 fulfillers: dict[str, Fulfiller], audit: AuditService | None = None, *,
                 ledger: LedgerService | None = None, clock: Callable[[], datetime] = utcnow,
                 lease: timedelta = LEASE) -> None:
        self.db, self.orders, self.notifier, self.providers = database, orders, notifier, providers
        self.fulfillers, self.audit, self.clock, self.lease = fulfillers, audit, clock, lease
        self.ledger = ledger

    # What a refund would do -------------------------------------------------------------

    def _payer(self, provider: str) -> PaysBack | None:
        candidate = self.providers.get(provider)
        return candidate if candidate is not None and hasattr(candidate, "pay_back") else None

    def _owe(self, payment: Payment, portion: Decimal) -> Owed:
        payer = self._payer(payment.provider)
        if payer is None:
            return Owed(payment, portion, payment.asset, portion, automatic=False)
        asset, amount = payer.payback_terms(payment, portion)
        return Owed(payment, portion, asset, amount, automatic=True)

    def _owe_part(self, order: Order, payment: Payment, available: Decimal, part: Fraction) -> Owed:
        """An unused refund's share of one payment: `part` of what is left of it, rounded half-up to its
        smallest unit; as API credit (its USD value) where the provider returns only whole payments."""
        portion = part_of(available, part, smallest_unit(payment.amount, payment.asset))
        if payment.asset == "XTR" and portion != payment.amount:  # Telegram returns only a whole Stars charge
            value = part_of(cents_to_decimal(order.amount_cents), part * Fraction(available) / Fraction(
                payment.amount), Decimal("0.01"))
            return Owed(payment, portion, "USD", value, automatic=False, credit=True)
        return self._owe(payment, portion)

    async def preview(self, order_id: int, kind: str = FULL, *, only: frozenset[int] | None = None,
                      part: Fraction | None = None) -> Preview:
        """With `only` (payment ids), an excess refund covers just those payments' excess; `part` is an unused
        refund's part of the order."""
        order = await self.orders.get(order_id)
        if order is None:
            return Preview(None, kind, refusal=RefundProblem.NOT_FOUND)
        if Status(order.status) not in MONEY_IN:
            return Preview(order, kind, refusal=RefundProblem.NO_MONEY)
        if kind in (FULL, UNUSED) and (holder := await credited_into(self.db, order)) is not None:
            # refunding it would pay the credit twice
            return Preview(order, kind, refusal=RefundProblem.CREDITED, credited_to=holder)
        payments = await self.orders.payments(order_id)
        async with self.db.session() as session:
            earlier = list(await session.scalars(select(RefundRequest).where(RefundRequest.order_id == order_id)))
            invoices = list(await session.scalars(select(Invoice).where(Invoice.order_id == order_id)))
        excess_done = {r.payment_id: r.portion for r in earlier if r.kind == EXCESS}
        excess = [self._owe(p, part) for p, part in _excess(payments, invoices) if p.id not in excess_done
                  and (only is None or p.id in only)]
        if kind == EXCESS:
            if not excess:
                return Preview(order, kind, refusal=RefundProblem.NO_EXCESS)
            return Preview(order, kind, owed=excess)
        owed = []
        for payment in payments:
            portion = payment.amount - excess_done.get(payment.id, Decimal(0))
            if payment.refunded_at is None and portion > 0:
                owed.append(self._owe(payment, portion) if kind != UNUSED else
                            self._owe_part(order, payment, portion, part if part is not None else Fraction(1)))
        owed = [item for item in owed if item.amount > 0]
        for item in owed:
            if item.credit and self.ledger is None:
                return Preview(order, kind, refusal=RefundProblem.PROVIDER_UNAVAILABLE)
            if not item.automatic and not item.credit and item.payment.asset == "XTR":  # only Telegram returns Stars
                return Preview(order, kind, refusal=RefundProblem.PROVIDER_UNAVAILABLE)
        fulfiller = self.fulfillers.get(order.product)
        takes_back = (lambda: fulfiller.takes_back(order)) if fulfiller is not None else None
        return Preview(order, kind, owed=owed, takes_back=takes_back, excess=excess)

    # Doing it -----------------------------------------------------------------------------

    async def refund(self, order_id: int, *, admin_id: int | None, kind: str = FULL,
                     only: frozenset[int] | None = None, part: Fraction | None = None) -> RefundResult:
        """Record the refund, take the product back, pay back what providers can; tell the buyer.
        `admin_id` None: decided by the bot itself (money that arrived for an order already paid). `part`: an
        unused refund's part of the order (0 < part ≤ 1)."""
        if kind == UNUSED:
            part = min(Fraction(1), max(Fraction(0), part if part is not None else Fraction(1)))
        preview = await self.preview(order_id, kind, only=only, part=part)
        if preview.refusal:
            return RefundResult(False, preview.refusal, order_id, kind, credited_to=preview.credited_to,
                                order_status=preview.order and preview.order.status)
        order = preview.order
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                if kind in (FULL, UNUSED):
                    await self.orders.refund_in(session, order_id, cause="admin_refund", detail={
                        "admin_id": admin_id, "owed": [f"{plain(o.amount)} {o.asset}" for o in preview.owed],
                        **({"part": f"{part.numerator}/{part.denominator}"} if kind == UNUSED else {})})
                elif Status(await session.scalar(select(Order.status).where(Order.id == order_id))) not in MONEY_IN:
                    raise TransitionRefused(f"order {order_id} changed meanwhile")
                refund = Refund(order_id=order_id, kind=kind, admin_id=admin_id,
                                takeback="none" if kind == EXCESS else "pending", taken_back={},
                                part_num=part.numerator if kind == UNUSED else None,
                                part_den=part.denominator if kind == UNUSED else None,
                                created_at=now, updated_at=now)
                session.add(refund)
                await session.flush()
                refund_id = refund.id
                for owed in preview.owed:
                    spend_id = f"refund:{owed.payment.id}:{kind}"
                    state = SENT if owed.credit else REQUESTED if owed.automatic else AWAITING_ADDRESS
                    session.add(RefundRequest(
                        refund_id=refund_id, order_id=order_id, payment_id=owed.payment.id, kind=kind,
                        user_id=order.user_id, provider=owed.payment.provider, asset=owed.asset, amount=owed.amount,
                        portion=owed.portion, state=state, spend_id=spend_id, created_at=now, updated_at=now,
                        reference=CREDIT_REFERENCE if owed.credit else None, sent_at=now if owed.credit else None))
                    if owed.credit:  # the unused part of a whole-only payment: credit now, with the refund
                        await self.ledger.post_in(session, Cause("refund_credit", spend_id), {
                            api_credit_account(order.user_id): owed.amount, SALES: -owed.amount})
        except TransitionRefused as exc:
            return RefundResult(False, RefundProblem.CHANGED, order_id, kind, detail=str(exc))
        except IntegrityError:  # the same payment's refund recorded meanwhile (a second tap, another admin)
            return RefundResult(False, RefundProblem.ALREADY, order_id, kind)
        result = RefundResult(True, order_id=order_id, kind=kind)
        if kind != EXCESS:
            result.taken_back, result.takeback_error = await self._take_back(refund_id)
        for request in await self._requests(refund_id=refund_id):
            if request.state == REQUESTED:
                await self._pay_back(request.id)
        result.requests = await self._requests(refund_id=refund_id)
        if self.audit is not None:
            await self.audit.record(admin_id or 0, {FULL: "refund", UNUSED: "refund_unused"}.get(
                kind, "refund_excess"), f"order:{order_id}", before={"status": order.status},
                                    after={"status": order.status if kind == EXCESS else Status.REFUNDED,
                                           "taken_back": result.taken_back.record if result.taken_back else
                                           (None if kind == EXCESS else {"error": result.takeback_error}),
                                           "money": [_money_record(r) for r in result.requests]})
        taken, requests = result.taken_back, result.requests
        await self.notifier.send(order.user_id, lambda: buyer_text(order_id, kind, taken, requests),
                                 lambda: address_markup(requests))
        return result

    async def _requests(self, *, refund_id: int | None = None, order_id: int | None = None) -> list[RefundRequest]:
        query = select(RefundRequest).order_by(RefundRequest.id)
        query = query.where(RefundRequest.refund_id == refund_id) if refund_id is not None else \
            query.where(RefundRequest.order_id == order_id)
        async with self.db.session() as session:
            return list(await session.scalars(query))

    async def _lease(self, model: type, row_id: int, *conditions) -> list[datetime] | None:
        """Take the row (free, or its lease ran out): the lease written, in a list the renewals update;
        None while another worker holds it."""
        now = self.clock()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(model).where(model.id == row_id, *conditions,
                                    or_(model.lease_until.is_(None), model.lease_until < now))
                .values(lease_until=now + self.lease, updated_at=now))
            return [now + self.lease] if result.rowcount == 1 else None

    def _heartbeat(self, model: type, row_id: int, held: list[datetime], *conditions):
        """Renew the lease while the row still carries the one we wrote last (never one taken over)."""
        async def renew() -> bool:
            until = self.clock() + self.lease
            async with self.db.transaction() as session:
                result = await session.execute(update(model).where(
                    model.id == row_id, model.lease_until == held[0], *conditions).values(lease_until=until))
            if result.rowcount != 1:
                return False
            held[0] = until
            return True
        return heartbeat(renew, self.lease, what=f"{model.__tablename__} {row_id}")

    async def _take_back(self, refund_id: int) -> tuple[TakenBack | None, str | None]:
        held = await self._lease(Refund, refund_id, Refund.takeback == "pending")
        if held is None:
            return None, "in progress"
        async with self.db.session() as session:
            refund = await session.get(Refund, refund_id)
            order = await session.get(Order, refund.order_id)
        fulfiller = self.fulfillers.get(order.product)
        part = Fraction(refund.part_num, refund.part_den) if refund.part_num is not None and refund.part_den else None
        try:
            async with self._heartbeat(Refund, refund_id, held, Refund.takeback == "pending"):
                if fulfiller is None:
                    taken = None
                elif part is not None:  # an unused refund: its product reverses the same part
                    taken = await fulfiller.revoke(order, part=part)
                else:
                    taken = await fulfiller.revoke(order)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("refund of order %s: taking back failed (retried): %s", order.id, error)
            await self._set(Refund, refund_id, error=error, lease_until=None)
            return None, error
        await self._set(Refund, refund_id, takeback="done", taken_back=taken.record if taken else {}, error=None,
                        lease_until=None)
        return taken, None

    async def _pay_back(self, request_id: int) -> str:
        """Send one automatic refund; returns the request's state afterwards."""
        held = await self._lease(RefundRequest, request_id, RefundRequest.state == REQUESTED)
        if held is None:
            return REQUESTED
        async with self.db.session() as session:
            request = await session.get(RefundRequest, request_id)
            payment = await session.get(Payment, request.payment_id)
        payer = self._payer(request.provider)
        if payer is None:
            await self._set(RefundRequest, request_id, lease_until=None, error="provider not configured")
            return REQUESTED
        try:
            async with self._heartbeat(RefundRequest, request_id, held, RefundRequest.state == REQUESTED):
                reference = await payer.pay_back(
                    payment, user_id=request.user_id, asset=request.asset, amount=request.amount,
                    spend_id=request.spend_id, comment=f"Refund of order #{request.order_id}")
        except ProviderError as exc:
            state = REQUESTED if exc.retryable else FAILED
            log.warning("refund %s of order %s: %s (%s)", request_id, request.order_id, exc, state)
            await self._set(RefundRequest, request_id, state=state, error=str(exc)[:500], lease_until=None)
            return state
        await self._set(RefundRequest, request_id, state=SENT, reference=reference[:256], error=None,
                        sent_at=self.clock(), lease_until=None)
        return SENT

    async def _set(self, model: type, row_id: int, **values) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(model).where(model.id == row_id).values(updated_at=self.clock(), **values))

    async def sweep(self) -> int:
        """Retry what a failure left half-done; returns how many items moved on."""
        now = self.clock()
        async with self.db.session() as session:
            pending = list(await session.scalars(select(Refund.id).where(
                Refund.takeback == "pending", or_(Refund.lease_until.is_(None), Refund.lease_until < now))))
            requested = list(await session.scalars(select(RefundRequest.id).where(
                RefundRequest.state == REQUESTED,
                or_(RefundRequest.lease_until.is_(None), RefundRequest.lease_until < now))))
        moved = 0
        for refund_id in pending:
            taken, _error = await self._take_back(refund_id)
            if taken is not None:
                moved += 1
                async with self.db.session() as session:
                    refund = await session.get(Refund, refund_id)
                    user_id = (await session.get(Order, refund.order_id)).user_id
                await self.notifier.send(user_id, taken.text)
        for request_id in requested:
            state = await self._pay_back(request_id)
            if state in (SENT, FAILED):
                moved += 1
                await self._announce(request_id)
        return moved

    async def _announce(self, request_id: int) -> None:
        async with self.db.session() as session:
            request = await session.get(RefundRequest, request_id)
        if request.state == SENT:
            await self.notifier.send(request.user_id, lambda: announced_text(request))
        elif request.state == FAILED:
            await self.notifier.alert_admins(lambda: failed_text(request))

    # The on-chain flow ----------------------------------------------------------------------

    async def request(self, request_id: int) -> RefundRequest | None:
        async with self.db.session() as session:
            return await session.get(RefundRequest, request_id)

    async def set_address(self, request_id: int, user_id: int, text: str) -> HandRefundProblem | None:
        """The buyer gives the address; None when taken."""
        request = await self.request(request_id)
        if request is None or request.user_id != user_id:
            return HandRefundProblem.NOT_FOUND
        if request.state != AWAITING_ADDRESS:
            return HandRefundProblem.STATE
        address = valid_address(request.asset, text)
        if address is None:
            return HandRefundProblem.BAD_ADDRESS
        async with self.db.transaction() as session:
            result = await session.execute(update(RefundRequest).where(
                RefundRequest.id == request_id, RefundRequest.state == AWAITING_ADDRESS).values(
                state=AWAITING_ADMIN, address=address, updated_at=self.clock()))
            if result.rowcount != 1:
                return HandRefundProblem.STATE
        request = await self.request(request_id)
        await self.notifier.send(user_id, lambda: money_line(request))
        for admin_id in self.notifier.admin_ids:
            await self.notifier.send(admin_id, lambda: admin_send_text(request), lambda: sent_markup(request_id))
        return None

    async def open_for_order(self, order_id: int) -> RefundRequest | None:
        """The first refund of this order an admin still has to send by hand."""
        for request in await self._requests(order_id=order_id):
            if request.state in (AWAITING_ADMIN, FAILED):
                return request
        return None

    async def record_sent(self, request_id: int, reference: str, *, admin_id: int) -> HandRefundProblem | None:
        """An admin sent the money by hand; None when recorded."""
        request = await self.request(request_id)
        if request is None:
            return HandRefundProblem.NOT_FOUND
        if request.state not in (AWAITING_ADMIN, FAILED):
            return HandRefundProblem.STATE
        tx = valid_reference(reference)
        if tx is None:
            return HandRefundProblem.BAD_REFERENCE
        async with self.db.transaction() as session:
            result = await session.execute(update(RefundRequest).where(
                RefundRequest.id == request_id, RefundRequest.state.in_((AWAITING_ADMIN, FAILED))).values(
                state=SENT, reference=tx, sent_at=self.clock(), updated_at=self.clock()))
            if result.rowcount != 1:
                return HandRefundProblem.STATE
        request = await self.request(request_id)
        if self.audit is not None:
            await self.audit.record(admin_id, "refund_sent", f"order:{request.order_id}",
                                    before={"state": AWAITING_ADMIN}, after=_money_record(request))
        await self.notifier.send(request.user_id, lambda: sent_text(request))
        return None

    async def states(self, order_ids: list[int]) -> dict[int, str]:
        """Order id -> "pending" while any of its refunds is not sent, else "sent" (orders with refunds only)."""
        if not order_ids:
            return {}
        async with self.db.session() as session:
            rows = (await session.execute(select(RefundRequest.order_id, RefundRequest.state).where(
                RefundRequest.order_id.in_(order_ids)))).all()
        states: dict[int, str] = {}
        for order_id, state in rows:
            if state != SENT:
                states[order_id] = "pending"
            else:
                states.setdefault(order_id, "sent")
        return states

    async def telegram_refunded(self, charge_id: str) -> None:
        """Telegram reports a refund of one of its payments (e.g. made outside the bot): record it once and
        take the product back (the money has already moved)."""
        provider = telegram_payments_provider()
        payment = await self.orders.payment_by_external_id(provider, charge_id) if provider else None
        if payment is None or payment.refunded_at is not None:
            return
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                await self.orders.refund_in(session, payment.order_id, cause="telegram_refund",
                                            detail={"charge_id": charge_id})
                refund = Refund(order_id=payment.order_id, kind=FULL, admin_id=None, takeback="pending",
                                taken_back={}, created_at=now, updated_at=now)
                session.add(refund)
                await session.flush()
                refund_id = refund.id
                user_id = await session.scalar(select(Order.user_id).where(Order.id == payment.order_id))
                session.add(RefundRequest(
                    refund_id=refund_id, order_id=payment.order_id, payment_id=payment.id, kind=FULL,
                    user_id=user_id, provider=payment.provider, asset=payment.asset, amount=payment.amount,
                    portion=payment.amount, state=SENT, spend_id=f"refund:{payment.id}:{FULL}",
                    reference="Telegram", created_at=now, updated_at=now, sent_at=now))
        except (TransitionRefused, IntegrityError):
            log.info("refunded_payment for order %s in a state that cannot be refunded", payment.order_id)
            return
        taken, _error = await self._take_back(refund_id)
        if taken is not None:
            await self.notifier.send(user_id, taken.text)


def _excess(payments: list[Payment], invoices: list[Invoice]) -> list[tuple[Payment, Decimal]]:
    """The part of each payment above the price: per (provider, asset), what came in beyond the paid
    invoice's amount (all of it where no invoice of that kind was paid)."""
    out = []
    groups: dict[tuple[str, str], list[Payment]] = {}
    for payment in payments:
        if payment.refunded_at is None:
            groups.setdefault((payment.provider, payment.asset), []).append(payment)
    for (provider, asset), group in groups.items():
        due = sum((i.amount for i in invoices if i.provider == provider and i.asset == asset and i.status == "paid"),
                  Decimal(0))
        running = Decimal(0)
        for payment in sorted(group, key=lambda p: p.id):
            running += payment.amount
            part = min(payment.amount, running - due)
            if part > 0:
                out.append((payment, part))
    return out


def _money_record(request: RefundRequest) -> dict:
    return {"payment_id": request.payment_id, "provider": request.provider, "amount": plain(request.amount),
            "asset": request.asset, "state": request.state, "reference": request.reference,
            "address": request.address}
