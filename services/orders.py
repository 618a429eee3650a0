"""Orders and their one state machine. This module alone changes `orders.status`.

    pending ──► paid ──► fulfilled ──► refunded
       │   └──► paid_over ─┘   └──► fulfil_failed ──► refunded / paid (retry)
       ├──► paid_partial ──► paid (topped up or accepted) / refunded
       ├──► paid_late (the money arrived after the deadline)
       ├──► expired ──► paid_late ──► paid (accepted) / refunded
       │        └──► paid / paid_over / paid_partial (the provider says it was paid in time)
       └──► cancelled ──► paid_late

Every transition is a conditional UPDATE on the current status, checked for rowcount, and is
written to `order_events`. Entering `paid` or `paid_over` queues the fulfilment job in the
same transaction (ARCHITECTURE rule 3). Payments are recorded under a unique
(provider, external id) key, so a repeated notification counts once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.engine import Database
from db.models import FulfilmentJob, Invoice, Order, OrderEvent, Payment
from services.money import plain

log = logging.getLogger(__name__)

#: An over-payment within this fraction is treated as exact (rounding, network quirks).
OVERPAY_TOLERANCE = Decimal("0.01")
#: How long after expiry an invoice is still watched for late (on-chain) payments.
LATE_WINDOW = timedelta(hours=24)
#: A repeated tap on the same offer within this time reuses the open order.
REUSE_WINDOW = timedelta(minutes=5)


def offer_key(user_id: int, product: str, product_ref: str, amount_cents: int, title: str) -> str:
    """What makes two orders "the same offer" for one user, as a fixed-length key."""
    return hashlib.sha256(f"{user_id}\x1f{product}\x1f{product_ref}\x1f{amount_cents}\x1f{title}".encode()).hexdigest()


class Status(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    PAID_OVER = "paid_over"
    PAID_PARTIAL = "paid_partial"
    PAID_LATE = "paid_late"
    FULFILLED = "fulfilled"
    FULFIL_FAILED = "fulfil_failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.PENDING: frozenset({S.PAID, S.PAID_OVER, S.PAID_PARTIAL, S.PAID_LATE, S.EXPIRED, S.CANCELLED}),
    S.PAID: frozenset({S.FULFILLED, S.FULFIL_FAILED, S.REFUNDED}),
    S.PAID_OVER: frozenset({S.FULFILLED, S.FULFIL_FAILED, S.REFUNDED}),
    S.PAID_PARTIAL: frozenset({S.PAID, S.PAID_OVER, S.REFUNDED}),
    S.PAID_LATE: frozenset({S.PAID, S.REFUNDED}),
    S.FULFIL_FAILED: frozenset({S.PAID, S.REFUNDED}),
    S.EXPIRED: frozenset({S.PAID, S.PAID_OVER, S.PAID_PARTIAL, S.PAID_LATE}),  # paid in time, seen late
    S.CANCELLED: frozenset({S.PAID_LATE}),
    S.FULFILLED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}
#: Entering these queues fulfilment.
FULFIL_ON = frozenset({S.PAID, S.PAID_OVER})
#: Money arrived but a person should look (BTCPay's vocabulary).
REVIEW = frozenset({S.PAID_PARTIAL, S.PAID_LATE, S.PAID_OVER})
#: Money is held for these (refundable).
MONEY_IN = frozenset({S.PAID, S.PAID_OVER, S.PAID_PARTIAL, S.PAID_LATE, S.FULFILLED, S.FULFIL_FAILED})


class PrecheckoutProblem(StrEnum):
    """Why a payment about to be made (Telegram's pre-checkout) must not go ahead."""

    UNKNOWN = "unknown"  # no such invoice
    NOT_YOURS = "not_yours"
    NOT_PENDING = "not_pending"
    EXPIRED = "expired"
    AMOUNT = "amount"  # not the invoice's asset and amount


class TransitionRefused(Exception):
    """The order is not in a state that allows this change."""


@dataclass(frozen=True, slots=True)
class PaymentReport:
    """Money the provider says arrived for one of our invoices."""

    provider: str
    invoice_id: str  # the provider's invoice id (our invoices.external_id)
    payment_id: str  # unique per payment at the provider (Stars: telegram_payment_charge_id)
    amount: Decimal
    asset: str
    paid_at: datetime | None = None
    usd_cents: int | None = None
    raw: dict | None = None
    #: `amount` is the running total received so far (providers that only report totals); the
    #: increment over what is already recorded is stored, so repeats and restarts never double-count.
    cumulative: bool = False


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What recording a payment did. `kind`: applied, duplicate, unknown_invoice, extra_payment."""

    kind: str
    order_id: int | None = None
    user_id: int | None = None
    from_status: Status | None = None
    to_status: Status | None = None
    paid_total: Decimal | None = None
    expected: Decimal | None = None
    asset: str | None = None
    payment_id: int | None = None  # the row recorded (applied and extra_payment)


@dataclass(frozen=True, slots=True)
class ExpiredOrder:
    order_id: int
    user_id: int
    invoices: list[tuple[str, int | None, int | None]]  # (provider, chat_id, message_id)


class OrderService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = database
        self.clock = clock

    # Creating and reading -------------------------------------------------------------

    async def create(
        self, *, user_id: int, product: str, product_ref: str, title: str, amount_cents: int,
        ttl: timedelta, details: dict | None = None,
    ) -> Order:
        """A new pending order, or the one this user opened for the same offer (product, choice,
        price) within REUSE_WINDOW: a double tap makes one order. Two taps at once are settled by
        the unique index on open offers, not by the check alone; an older open order for the offer
        is cancelled ("replaced") so the new one gets a full lifetime."""
        if amount_cents <= 0:
            raise ValueError("an order must cost something")
        key = offer_key(user_id, product, product_ref, amount_cents, title)
        try:
            return await self._create(key, user_id=user_id, product=product, product_ref=product_ref, title=title,
                                      amount_cents=amount_cents, ttl=ttl, details=details)
        except IntegrityError:  # the same offer opened concurrently: that order is the one
            async with self.db.session() as session:
                order = await session.scalar(select(Order).where(Order.offer_key == key, Order.status == S.PENDING))
            if order is None:
                raise
            return order

    async def _create(self, key: str, *, user_id: int, product: str, product_ref: str, title: str,
                      amount_cents: int, ttl: timedelta, details: dict | None) -> Order:
        now = self.clock()
        async with self.db.transaction() as session:
            open_order = await session.scalar(select(Order).where(Order.offer_key == key, Order.status == S.PENDING))
            if open_order is not None:
                if open_order.created_at >= now - REUSE_WINDOW and open_order.expires_at > now:
                    log.info("order %s reused for a repeated tap", open_order.id)
                    return open_order
                await self.transition_in(session, open_order.id, S.CANCELLED, cause="replaced")
            order = Order(user_id=user_id, product=product, product_ref=product_ref, title=title,
                          amount_cents=amount_cents, details=details or {}, status=S.PENDING,
                          created_at=now, updated_at=now, expires_at=now + ttl, delivery={}, offer_key=key)
            session.add(order)
            await session.flush()
            session.add(OrderEvent(order_id=order.id, from_status=None, to_status=S.PENDING,
                                   cause="created", detail={"amount_cents": amount_cents}, created_at=now))
        return order

    async def get(self, order_id: int) -> Order | None:
        async with self.db.session() as session:
            return await session.get(Order, order_id)

    async def for_user(self, user_id: int, limit: int = 10) -> list[Order]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(Order).where(Order.user_id == user_id).order_by(Order.id.desc()).limit(limit))
            return list(rows.scalars())

    async def events(self, order_id: int) -> list[OrderEvent]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
            return list(rows.scalars())

    async def invoices(self, order_id: int) -> list[Invoice]:
        async with self.db.session() as session:
            rows = await session.execute(select(Invoice).where(Invoice.order_id == order_id).order_by(Invoice.id))
            return list(rows.scalars())

    async def payments(self, order_id: int) -> list[Payment]:
        async with self.db.session() as session:
            rows = await session.execute(select(Payment).where(Payment.order_id == order_id).order_by(Payment.id))
            return list(rows.scalars())

    # The state machine -----------------------------------------------------------------

    async def transition(self, order_id: int, to: Status, *, cause: str, detail: dict | None = None) -> Status:
        """Move an order to `to`; returns the status it left. Raises TransitionRefused."""
        async with self.db.transaction() as session:
            return await self.transition_in(session, order_id, to, cause=cause, detail=detail)

    async def transition_in(
        self, session: AsyncSession, order_id: int, to: Status, *, cause: str, detail: dict | None = None,
        extra: dict | None = None,
    ) -> Status:
        """`transition` inside the caller's transaction, for callers that change other rows with it."""
        current = await session.scalar(select(Order.status).where(Order.id == order_id))
        if current is None:
            raise TransitionRefused(f"order {order_id} does not exist")
        current = Status(current)
        if to not in TRANSITIONS[current]:
            log.warning("refused transition of order %s: %s -> %s (%s)", order_id, current, to, cause)
            raise TransitionRefused(f"order {order_id} is {current}, cannot become {to}")
        now = self.clock()
        values: dict = {"status": to, "updated_at": now, **(extra or {})}
        if to in FULFIL_ON or to in REVIEW:
            values.setdefault("paid_at", now)
        if to == S.FULFILLED:
            values["fulfilled_at"] = now
        result = await session.execute(
            update(Order).where(Order.id == order_id, Order.status == current).values(**values))
        if result.rowcount != 1:  # changed under us (another worker or provider message)
            raise TransitionRefused(f"order {order_id} changed concurrently")
        session.add(OrderEvent(order_id=order_id, from_status=current, to_status=to, cause=cause,
                               detail=detail or {}, created_at=now))
        if to in FULFIL_ON:
            await self._queue_fulfilment(session, order_id, now)
        log.info("order %s: %s -> %s (%s)", order_id, current, to, cause)
        return current

    @staticmethod
    async def _queue_fulfilment(session: AsyncSession, order_id: int, now: datetime) -> None:
        job = await session.scalar(select(FulfilmentJob).where(FulfilmentJob.order_id == order_id))
        if job is None:
            session.add(FulfilmentJob(order_id=order_id, status="queued", attempts=0, next_attempt_at=now,
                                      created_at=now, updated_at=now))
        else:  # a retry after fulfil_failed
            job.status, job.attempts, job.next_attempt_at, job.lease_until = "queued", 0, now, None
            job.updated_at = now

    # Invoices ---------------------------------------------------------------------------

    async def add_invoice(self, order_id: int, *, provider: str, external_id: str, amount: Decimal, asset: str,
                          expires_at: datetime, pay_url: str | None = None, address: str | None = None,
                          raw: dict | None = None) -> Invoice:
        from services.payments.registry import one_live_invoice  # the providers import this module

        async with self.db.transaction() as session:
            order = await session.get(Order, order_id)
            if order is None or order.status != S.PENDING:
                raise TransitionRefused(f"order {order_id} is not awaiting payment")
            order.provider = provider
            if one_live_invoice(provider):  # the older invoice of such a provider must not be payable too
                await session.execute(update(Invoice).where(
                    Invoice.order_id == order_id, Invoice.provider == provider, Invoice.status == "active"
                ).values(status="superseded"))
            invoice = Invoice(order_id=order_id, provider=provider, external_id=external_id, amount=amount,
                              asset=asset, pay_url=pay_url, address=address, expires_at=expires_at,
                              status="active", raw=raw or {}, created_at=self.clock())
            session.add(invoice)
        return invoice

    async def set_invoice_message(self, invoice_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Invoice).where(Invoice.id == invoice_id).values(chat_id=chat_id, message_id=message_id))

    async def claim_check(self, invoice_id: int, min_interval: timedelta) -> bool:
        """Reserve a provider check of this invoice unless one ran within `min_interval`."""
        now = self.clock()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Invoice)
                .where(Invoice.id == invoice_id,
                       (Invoice.checked_at.is_(None)) | (Invoice.checked_at <= now - min_interval))
                .values(checked_at=now))
            return result.rowcount == 1

    async def pending_invoices(self, provider: str, *, due_only: bool = False,
                               limit: int = 10_000) -> list[Invoice]:
        """Invoices a provider may still pay: active or part-paid ones, and ones we expired within
        LATE_WINDOW (on-chain money can arrive late), until the provider closes them. With
        `due_only`, just the active invoices of pending orders whose time is up."""
        now = self.clock()
        query = select(Invoice).join(Order, Order.id == Invoice.order_id).where(Invoice.provider == provider)
        if due_only:
            query = query.where(Invoice.status == "active", Order.status == S.PENDING, Order.expires_at <= now)
        else:
            query = query.where(
                Invoice.status.in_(("active", "partial"))
                | ((Invoice.status == "expired") & (Invoice.expires_at > now - LATE_WINDOW)),
                Order.status.in_((S.PENDING, S.PAID_PARTIAL, S.EXPIRED, S.CANCELLED)))
        async with self.db.session() as session:
            return list((await session.execute(query.order_by(Invoice.id).limit(limit))).scalars())

    async def close_invoice(self, provider: str, external_id: str) -> None:
        """The provider says this invoice has expired: stop polling it, but only once LATE_WINDOW has
        passed since it expired. An on-chain transfer sent in time can land after the provider's
        deadline, and its webhook may be lost; until then polling still sees it (as paid_late)."""
        async with self.db.transaction() as session:
            await session.execute(
                update(Invoice).where(Invoice.provider == provider, Invoice.external_id == external_id,
                                      Invoice.status.in_(("active", "expired")),
                                      Invoice.expires_at <= self.clock() - LATE_WINDOW).values(status="closed"))

    # Payments ---------------------------------------------------------------------------

    async def apply_payment(self, report: PaymentReport) -> PaymentOutcome:
        """Record money received and move the order accordingly; safe to call repeatedly."""
        try:
            async with self.db.transaction() as session:
                return await self._apply_payment(session, report)
        except IntegrityError:  # the same payment recorded concurrently by another path
            return PaymentOutcome("duplicate")

    async def _apply_payment(self, session: AsyncSession, report: PaymentReport) -> PaymentOutcome:
        invoice = await session.scalar(select(Invoice).where(
            Invoice.provider == report.provider, Invoice.external_id == report.invoice_id))
        if invoice is None:
            log.warning("payment %s for unknown %s invoice %s", report.payment_id, report.provider, report.invoice_id)
            return PaymentOutcome("unknown_invoice")
        payment_id, amount = report.payment_id, report.amount
        if report.cumulative:
            earlier = await session.scalars(select(Payment.amount).where(
                Payment.provider == report.provider, Payment.external_id.startswith(f"{report.payment_id}:")))
            amount = report.amount - sum(earlier, Decimal(0))
            if amount <= 0:
                return PaymentOutcome("duplicate", order_id=invoice.order_id)
            payment_id = f"{report.payment_id}:{plain(report.amount)}"
        exists = await session.scalar(select(Payment.id).where(
            Payment.provider == report.provider, Payment.external_id == payment_id))
        if exists is not None:
            return PaymentOutcome("duplicate", order_id=invoice.order_id)
        now = self.clock()
        payment = Payment(order_id=invoice.order_id, provider=report.provider, external_id=payment_id,
                          amount=amount, asset=report.asset, usd_cents=report.usd_cents,
                          raw=report.raw or {}, received_at=now)
        session.add(payment)
        await session.flush()
        amounts = await session.scalars(select(Payment.amount).where(
            Payment.order_id == invoice.order_id, Payment.provider == report.provider,
            Payment.asset == invoice.asset))
        paid_total = sum(amounts, Decimal(0))  # in Python: exact, whatever the database
        order = await session.get(Order, invoice.order_id)
        current = Status(order.status)
        target = self._target(current, order, invoice, paid_total, report.paid_at or now)
        detail = {"provider": report.provider, "payment_id": payment_id, "amount": str(amount),
                  "asset": report.asset, "paid_total": str(paid_total), "expected": str(invoice.amount)}
        invoice.status = "paid" if target in FULFIL_ON or target == S.PAID_LATE else "partial"
        common = {"order_id": order.id, "user_id": order.user_id, "from_status": current,
                  "paid_total": paid_total, "expected": invoice.amount, "asset": invoice.asset,
                  "payment_id": payment.id}
        if target is None:  # money for an order that is already paid or closed
            log.warning("extra payment %s for order %s in state %s", report.payment_id, order.id, current)
            session.add(OrderEvent(order_id=order.id, from_status=current, to_status=current,
                                   cause="extra_payment", detail=detail, created_at=now))
            return PaymentOutcome("extra_payment", to_status=current, **common)
        if target == current:  # a top-up of a part-paid order that is still short
            session.add(OrderEvent(order_id=order.id, from_status=current, to_status=current, cause="top_up",
                                   detail=detail, created_at=now))
        else:
            await self.transition_in(session, order.id, target, cause="payment", detail=detail,
                                     extra={"provider": report.provider})
        return PaymentOutcome("applied", to_status=target, **common)

    @staticmethod
    def _target(current: Status, order: Order, invoice: Invoice, paid_total: Decimal,
                paid_at: datetime) -> Status | None:
        """Lateness is judged by when the provider says the money arrived, not when we noticed."""
        awaiting = current in (S.PENDING, S.EXPIRED)
        if current == S.CANCELLED or (awaiting and paid_at > order.expires_at):
            return S.PAID_LATE
        if not awaiting and current != S.PAID_PARTIAL:
            return None
        if paid_total < invoice.amount:
            return S.PAID_PARTIAL  # first part, or a top-up that still leaves it short
        if paid_total > invoice.amount * (1 + OVERPAY_TOLERANCE):
            return S.PAID_OVER
        return S.PAID

    # Expiry -----------------------------------------------------------------------------

    async def expire_due(self) -> list[ExpiredOrder]:
        """Expire every pending order past its time; returns what expired (for notifying)."""
        now = self.clock()
        async with self.db.session() as session:
            due = list((await session.execute(
                select(Order.id, Order.user_id).where(Order.status == S.PENDING, Order.expires_at <= now))).all())
        expired = []
        for order_id, user_id in due:
            try:
                async with self.db.transaction() as session:
                    await self.transition_in(session, order_id, S.EXPIRED, cause="ttl")
                    await session.execute(update(Invoice).where(
                        Invoice.order_id == order_id, Invoice.status == "active").values(status="expired"))
                    rows = await session.execute(select(Invoice.provider, Invoice.chat_id, Invoice.message_id)
                                                 .where(Invoice.order_id == order_id))
                    expired.append(ExpiredOrder(order_id, user_id, [tuple(r) for r in rows]))
            except TransitionRefused:
                continue  # paid in the meantime
        return expired

    # Checks and refunds -----------------------------------------------------------------

    async def precheckout_problem(self, provider: str, invoice_id: str, user_id: int, amount: Decimal,
                                  asset: str) -> PrecheckoutProblem | None:
        """Why this payment must not go ahead, or None."""
        async with self.db.session() as session:
            invoice = await session.scalar(select(Invoice).where(
                Invoice.provider == provider, Invoice.external_id == invoice_id))
            order = await session.get(Order, invoice.order_id) if invoice else None
        if invoice is None or order is None:
            return PrecheckoutProblem.UNKNOWN
        if order.user_id != user_id:
            return PrecheckoutProblem.NOT_YOURS
        if order.status != S.PENDING or invoice.status != "active":
            return PrecheckoutProblem.NOT_PENDING
        if self.clock() > order.expires_at:
            return PrecheckoutProblem.EXPIRED
        if asset != invoice.asset or amount != invoice.amount:
            return PrecheckoutProblem.AMOUNT
        return None

    async def refund(self, order_id: int, *, cause: str, detail: dict | None = None) -> list[Payment]:
        """Mark an order and its payments refunded; returns the payments that were refunded."""
        async with self.db.transaction() as session:
            return await self.refund_in(session, order_id, cause=cause, detail=detail)

    async def refund_in(self, session: AsyncSession, order_id: int, *, cause: str,
                        detail: dict | None = None) -> list[Payment]:
        """`refund` inside the caller's transaction (which records what is owed back with it)."""
        await self.transition_in(session, order_id, S.REFUNDED, cause=cause, detail=detail)
        rows = await session.execute(select(Payment).where(
            Payment.order_id == order_id, Payment.refunded_at.is_(None)).order_by(Payment.id))
        payments = list(rows.scalars())
        for payment in payments:
            payment.refunded_at = self.clock()
        return payments

    async def payment_by_external_id(self, provider: str, payment_id: str) -> Payment | None:
        async with self.db.session() as session:
            return await session.scalar(select(Payment).where(
                Payment.provider == provider, Payment.external_id == payment_id))
