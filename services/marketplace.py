"""The signal-provider marketplace: applications and their review, the providers on sale, subscriptions to a
provider (a product of the payment core: a month per order, renewals stack) and who may publish.

A provider's life: pending (applied with /provider) → approved (by an admin in /providers) or rejected (with
a reason; may apply again); approved ⇄ suspended (with a reason). Only an approved provider's API keys carry
the `provider` permission (checked on every publish, so a suspension applies at once). The operator's own
signals are the house provider: they are sold as plans (/plans), not here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Protocol

from sqlalchemy import func, select, update

from db.base import utcnow
from db.engine import Database
from db.models import Order
from db.models_marketplace import Provider, ProviderSubscription
from services.earnings import EarningsService, Reversed
from services.money import cents_to_decimal
from services.orders import MONEY_IN, OrderService
from services.payouts import Payee
from services.products import Delivery, FulfilmentFailed, TakenBack
from services.text import strip_invisible_or_none

PRODUCT = "provider_sub"
SUBSCRIPTION_DAYS = 30
PERMISSION = "provider"  # what an approved provider's API keys may do besides reading
MAX_NAME, MAX_DESCRIPTION, MAX_ADDRESS, MAX_ECOSYSTEMS, MAX_REASON = 48, 600, 128, 6, 300
ECOSYSTEM_RE = re.compile(r"[a-z0-9_-]{1,32}")
ADDRESS_RE = re.compile(r"[A-Za-z0-9:._-]{10,128}")


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class Review(StrEnum):
    """An admin's decision, and the state it moves the provider from and to."""

    APPROVE = "approve"
    REJECT = "reject"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"


TRANSITIONS: dict[Review, tuple[State, State]] = {
    Review.APPROVE: (State.PENDING, State.APPROVED),
    Review.REJECT: (State.PENDING, State.REJECTED),
    Review.SUSPEND: (State.APPROVED, State.SUSPENDED),
    Review.REINSTATE: (State.SUSPENDED, State.APPROVED),
}
NEEDS_REASON = (Review.REJECT, Review.SUSPEND)


class Problem(StrEnum):
    """Why an application's answer is refused (the flow asks again)."""

    NAME = "name"
    DESCRIPTION = "description"
    ECOSYSTEMS = "ecosystems"
    PRICE = "price"  # not a USD amount in whole cents
    PRICE_RANGE = "price_range"
    ADDRESS = "address"
    ALREADY = "already"  # pending, approved or suspended: nothing to apply for


class Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Application:
    name: str
    description: str
    ecosystems: tuple[str, ...]
    price_cents: int
    payout_method: str  # "telegram" (a transfer to their Telegram account) or "address"
    payout_address: str | None = None


def _one_line(value: str | None) -> str:
    return " ".join((strip_invisible_or_none(value) or "").split())


def parse_name(value: str | None) -> str:
    name = _one_line(value)
    if not 2 <= len(name) <= MAX_NAME:
        raise Refused(Problem.NAME)
    return name


def parse_description(value: str | None) -> str:
    text = (strip_invisible_or_none(value) or "").strip()
    if not 10 <= len(text) <= MAX_DESCRIPTION or "\x00" in text:
        raise Refused(Problem.DESCRIPTION)
    return text


def parse_ecosystems(value: str | None) -> tuple[str, ...]:
    names = [part.strip().lower() for part in re.split(r"[,\s]+", value or "") if part.strip()]
    names = list(dict.fromkeys(names))
    if not 1 <= len(names) <= MAX_ECOSYSTEMS or not all(ECOSYSTEM_RE.fullmatch(n) for n in names):
        raise Refused(Problem.ECOSYSTEMS)
    return tuple(names)


def parse_price(value: str | None, price_range: tuple[Decimal, Decimal]) -> int:
    """Cents of a typed monthly price ("25", "$19.99"), within MARKETPLACE_PRICE_RANGE_USD."""
    text = (value or "").strip().removeprefix("$").strip().replace(",", ".")
    if not text or len(text) > 12 or not text.isascii() or not re.fullmatch(r"\d+(\.\d{1,2})?", text):
        raise Refused(Problem.PRICE)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise Refused(Problem.PRICE) from None
    low, high = price_range
    if not low <= amount <= high:
        raise Refused(Problem.PRICE_RANGE)
    return int(amount * 100)


def parse_address(value: str | None) -> str:
    text = (value or "").strip()
    if not ADDRESS_RE.fullmatch(text):
        raise Refused(Problem.ADDRESS)
    return text


def seller_of(provider_id: int) -> str:
    """The provider as a seller in the ledger (services.earnings)."""
    return f"provider:{provider_id}"


def provider_of_order(order: Order) -> int:
    return int((order.details or {}).get("provider_id") or order.product_ref.removeprefix("provider:"))


class MarketplaceService:
    def __init__(self, database: Database, orders: OrderService, *, price_range: tuple[Decimal, Decimal],
                 ttl: timedelta, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.orders, self.price_range, self.ttl, self.clock = database, orders, price_range, ttl, clock

    # -- providers ---------------------------------------------------------------------------------

    async def get(self, provider_id: int) -> Provider | None:
        async with self.db.session() as session:
            return await session.get(Provider, provider_id)

    async def mine(self, user_id: int) -> Provider | None:
        async with self.db.session() as session:
            return await session.scalar(select(Provider).where(Provider.user_id == user_id))

    async def apply(self, user_id: int, application: Application) -> Provider:
        """Record an application (a rejected applicant's replaces the old one). Raises Refused."""
        low, high = self.price_range
        if not low * 100 <= application.price_cents <= high * 100:
            raise Refused(Problem.PRICE_RANGE)
        now = self.clock()
        fields = dict(name=application.name, description=application.description,
                      ecosystems=list(application.ecosystems), price_cents=application.price_cents,
                      payout_method=application.payout_method, payout_address=application.payout_address,
                      status=State.PENDING.value, reason=None, created_at=now)
        async with self.db.transaction() as session:
            row = await session.scalar(select(Provider).where(Provider.user_id == user_id).with_for_update())
            if row is None:
                row = Provider(user_id=user_id, **fields)
                session.add(row)
                await session.flush()
                return row
            done = await session.execute(update(Provider).where(
                Provider.id == row.id, Provider.status == State.REJECTED.value).values(**fields))
            if done.rowcount != 1:
                raise Refused(Problem.ALREADY)
            return await session.get(Provider, row.id, populate_existing=True)

    async def queue(self) -> list[Provider]:
        """What /providers shows: applications waiting first (oldest first), then approved and suspended."""
        order = {State.PENDING.value: 0, State.SUSPENDED.value: 1, State.APPROVED.value: 2}
        async with self.db.session() as session:
            rows = list(await session.scalars(select(Provider).where(Provider.status.in_(list(order)))
                                              .order_by(Provider.created_at, Provider.id)))
        return sorted(rows, key=lambda p: order[p.status])

    async def review(self, provider_id: int, decision: Review, admin_id: int,
                     reason: str | None = None) -> tuple[State, Provider] | None:
        """Apply an admin's decision: (the state before, the provider now); None when the provider is not in
        the state the decision is for (already decided, or a stale button)."""
        before, after = TRANSITIONS[decision]
        now = self.clock()
        values: dict = dict(status=after.value, reviewed_by=admin_id, reviewed_at=now)
        if decision in NEEDS_REASON:
            values["reason"] = _one_line(reason)[:MAX_REASON] or None
        if decision in (Review.APPROVE, Review.REINSTATE):
            values["reason"] = None
        async with self.db.transaction() as session:
            done = await session.execute(update(Provider).where(
                Provider.id == provider_id, Provider.status == before.value).values(**values))
            if done.rowcount != 1:
                return None
            if decision is Review.APPROVE:
                await session.execute(update(Provider).where(Provider.id == provider_id,
                                                             Provider.approved_at.is_(None)).values(approved_at=now))
            return before, await session.get(Provider, provider_id, populate_existing=True)

    async def publisher(self, user_id: int) -> Provider | None:
        """The approved provider this user is (the `provider` permission of their API keys); None if not."""
        provider = await self.mine(user_id)
        return provider if provider is not None and provider.status == State.APPROVED.value else None

    async def payee(self, seller: str) -> Payee | None:
        """Where a provider is paid (services.payouts): its Telegram account, or its address by hand; held while
        suspended."""
        provider_id = seller.removeprefix("provider:")
        provider = await self.get(int(provider_id)) if provider_id.isdigit() else None
        if provider is None:
            return None
        return Payee(name=provider.name, user_id=provider.user_id,
                     address=provider.payout_address if provider.payout_method == "address" else None,
                     held=provider.status != State.APPROVED.value)

    async def subscribers(self, provider_id: int) -> int:
        now = self.clock()
        async with self.db.session() as session:
            return await session.scalar(select(func.count(func.distinct(ProviderSubscription.user_id))).where(
                ProviderSubscription.provider_id == provider_id, ProviderSubscription.starts_at <= now,
                ProviderSubscription.ends_at > now)) or 0

    # -- subscriptions -----------------------------------------------------------------------------

    async def subscribed_until(self, user_id: int, provider_id: int) -> datetime | None:
        """When the user's paid time with this provider ends (None: none left)."""
        now = self.clock()
        async with self.db.session() as session:
            end = await session.scalar(select(func.max(ProviderSubscription.ends_at)).where(
                ProviderSubscription.user_id == user_id, ProviderSubscription.provider_id == provider_id))
        return end if end is not None and end > now else None

    async def place(self, user_id: int, provider_id: int) -> Order | None:
        """A pending order for a month with an approved provider; None when it is not on sale."""
        provider = await self.get(provider_id)
        if provider is None or provider.status != State.APPROVED.value or provider.user_id == user_id:
            return None
        return await self.orders.create(
            user_id=user_id, product=PRODUCT, product_ref=f"provider:{provider.id}", amount_cents=provider.price_cents,
            ttl=self.ttl, title=f"{provider.name} · {SUBSCRIPTION_DAYS} days",
            details={"provider_id": provider.id, "days": SUBSCRIPTION_DAYS,
                     "price_usd": str(cents_to_decimal(provider.price_cents))})

    async def add_time(self, user_id: int, provider_id: int, days: int, order_id: int) -> ProviderSubscription:
        """`days` with the provider from where the user's time ends (or now); once per order."""
        now = self.clock()
        async with self.db.transaction() as session:
            existing = await session.scalar(select(ProviderSubscription)
                                            .where(ProviderSubscription.order_id == order_id))
            if existing is not None:
                return existing
            last_end = await session.scalar(select(func.max(ProviderSubscription.ends_at)).where(
                ProviderSubscription.user_id == user_id, ProviderSubscription.provider_id == provider_id))
            start = max(now, last_end) if last_end else now
            row = ProviderSubscription(user_id=user_id, provider_id=provider_id, starts_at=start,
                                       ends_at=start + timedelta(days=days), order_id=order_id, created_at=now)
            session.add(row)
        return row

    async def unused_of_suspended(self, provider_id: int | None = None) -> list[tuple[int, int, int]]:
        """(provider, order, user) of every paid period with time left of a suspended provider (of one, or
        all): what its suspension refunds."""
        now = self.clock()
        query = (select(ProviderSubscription.provider_id, ProviderSubscription.order_id, ProviderSubscription.user_id)
                 .join(Provider, Provider.id == ProviderSubscription.provider_id)
                 .join(Order, Order.id == ProviderSubscription.order_id)
                 .where(Provider.status == State.SUSPENDED.value, ProviderSubscription.ends_at > now,
                        Order.status.in_([s.value for s in MONEY_IN]))
                 .order_by(ProviderSubscription.user_id, ProviderSubscription.id))
        if provider_id is not None:
            query = query.where(ProviderSubscription.provider_id == provider_id)
        async with self.db.session() as session:
            return [tuple(row) for row in await session.execute(query)]

    async def unused_part(self, order_id: int) -> Fraction | None:
        """The part of an order's paid period not used yet, pro rata to the second (elapsed time counts in
        whole seconds, rounded down, so the subscriber never pays for a part-second): 1 before it starts, 0
        once it ended; None when the order bought no period."""
        now = self.clock()
        async with self.db.session() as session:
            row = await session.scalar(select(ProviderSubscription).where(ProviderSubscription.order_id == order_id))
        if row is None:
            return None
        total = int((row.ends_at - row.starts_at).total_seconds())
        if total <= 0 or row.ends_at <= now:
            return Fraction(0)
        used = max(0, int((now - row.starts_at).total_seconds()))
        return Fraction(total - min(used, total), total)

    async def take_back_time(self, order_id: int) -> timedelta:
        """A refunded order's unused time (all of it if it has not started): its period ends now. Idempotent."""
        now = self.clock()
        async with self.db.transaction() as session:
            row = await session.scalar(select(ProviderSubscription).where(ProviderSubscription.order_id == order_id))
            if row is None or row.ends_at <= now or row.ends_at <= row.starts_at:
                return timedelta(0)
            cut = max(now, row.starts_at)
            taken = row.ends_at - cut
            await session.execute(update(ProviderSubscription).where(ProviderSubscription.id == row.id)
                                  .values(ends_at=cut))
            later = await session.scalars(select(ProviderSubscription).where(  # later renewals move up
                ProviderSubscription.user_id == row.user_id, ProviderSubscription.provider_id == row.provider_id,
                ProviderSubscription.starts_at >= row.ends_at, ProviderSubscription.id != row.id))
            for period in list(later):
                period.starts_at, period.ends_at = period.starts_at - taken, period.ends_at - taken
            await session.execute(update(ProviderSubscription).where(ProviderSubscription.id == row.id)
                                  .values(ends_at=cut))
            return taken


@dataclass(frozen=True, slots=True)
class Subscribed:
    provider: str  # its name
    until: datetime


class MarketWording(Protocol):
    """How the fulfiller's results are put to people (presentation.marketplace), in the reader's locale."""

    def delivered(self, done: Subscribed) -> str: ...

    def takes_back(self, order: Order) -> str: ...

    def taken_back(self, taken: timedelta, reversed_: Reversed) -> str: ...


class ProviderSubscriptionFulfiller:
    """A paid month with a provider: the time (stacked on what is left), and the split of the price in the
    ledger (the provider's share held for PAYOUT_HOLD_DAYS). A refund takes back the unused time and reverses
    the split (services.earnings)."""

    product = PRODUCT

    def __init__(self, market: MarketplaceService, earnings: EarningsService, wording: MarketWording) -> None:
        self.market, self.earnings, self.wording = market, earnings, wording

    async def fulfil(self, order: Order) -> Delivery:
        provider_id = provider_of_order(order)
        provider = await self.market.get(provider_id)
        if provider is None:
            raise FulfilmentFailed(f"provider {provider_id} is gone")
        days = int((order.details or {}).get("days") or SUBSCRIPTION_DAYS)
        period = await self.market.add_time(order.user_id, provider_id, days, order.id)
        await self.earnings.record_sale(order.id, seller_of(provider_id), cents_to_decimal(order.amount_cents),
                                        order.paid_at or self.market.clock())
        done = Subscribed(provider.name, await self.market.subscribed_until(order.user_id, provider_id)
                          or period.ends_at)
        return Delivery(text=lambda: self.wording.delivered(done),
                        record={"provider_id": provider_id, "until": done.until.isoformat()})

    def takes_back(self, order: Order) -> str:
        return self.wording.takes_back(order)

    async def revoke(self, order: Order, part: Fraction | None = None) -> TakenBack:
        """`part`: a pro-rata refund's part of the order (its unused time): the split is reversed by it alone."""
        taken = await self.market.take_back_time(order.id)
        reversed_ = await self.earnings.refund(order.id, part)
        return TakenBack(lambda: self.wording.taken_back(taken, reversed_),
                         {"time_taken_s": int(taken.total_seconds()), "share_usd": str(reversed_.share),
                          "price_usd": str(reversed_.price), "inside_hold": reversed_.inside_hold})
