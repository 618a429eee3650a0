"""What an admin needs to know about one buyer: lifetime value, every order (paged) and flags."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select

from db.engine import Database
from db.models import Order, OrderEvent
from services.orders import MONEY_IN, Status

#: Statuses worth a flag on the card, and order events that are.
FLAG_STATUSES = (Status.PAID_OVER, Status.PAID_PARTIAL, Status.PAID_LATE, Status.FULFIL_FAILED, Status.REFUNDED)
FLAG_EVENTS = ("extra_payment",)


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    lifetime_cents: int = 0  # charged for orders whose money we keep (refunded ones excluded)
    refunded_cents: int = 0
    orders: int = 0
    flags: Counter = field(default_factory=Counter)  # status or event -> how many orders


async def summary(db: Database, user_id: int) -> CustomerSummary:
    async with db.session() as session:
        rows = (await session.execute(select(Order.status, func.count(), func.sum(Order.amount_cents))
                                      .where(Order.user_id == user_id).group_by(Order.status))).all()
        events = (await session.execute(
            select(OrderEvent.cause, func.count(func.distinct(OrderEvent.order_id)))
            .join(Order, Order.id == OrderEvent.order_id)
            .where(Order.user_id == user_id, OrderEvent.cause.in_(FLAG_EVENTS)).group_by(OrderEvent.cause))).all()
    flags: Counter = Counter()
    lifetime = refunded = total = 0
    for status, count, cents in rows:
        total += count
        if status == Status.REFUNDED:
            refunded += int(cents or 0)
        elif status in MONEY_IN:
            lifetime += int(cents or 0)
        if status in FLAG_STATUSES:
            flags[status] += count
    for cause, count in events:
        flags[cause] += count
    return CustomerSummary(lifetime, refunded, total, flags)


async def orders_page(db: Database, user_id: int, page: int, per_page: int) -> list[Order]:
    """One page of the user's orders, newest first."""
    async with db.session() as session:
        return list(await session.scalars(select(Order).where(Order.user_id == user_id)
                                          .order_by(Order.id.desc()).offset(page * per_page).limit(per_page)))
