"""Business figures computed from orders (never stored separately, so they cannot drift).

For a product and a period: orders created; payment success rate = share of those orders that were
paid; delivery success rate = share of paid orders that were delivered; revenue = what paid orders
brought in (refunds excluded); revenue per order = revenue / orders created; average order value =
revenue / paid orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from db.engine import Database
from db.models import Order
from services.orders import Status

PAID_STATES = (Status.PAID, Status.PAID_OVER, Status.FULFILLED, Status.FULFIL_FAILED)


@dataclass(frozen=True, slots=True)
class Figures:
    orders: int
    paid: int
    delivered: int
    revenue_cents: int

    @property
    def payment_success_rate(self) -> Decimal | None:
        return Decimal(self.paid) / self.orders if self.orders else None

    @property
    def delivery_success_rate(self) -> Decimal | None:
        return Decimal(self.delivered) / self.paid if self.paid else None

    @property
    def revenue_per_order_cents(self) -> Decimal | None:
        return Decimal(self.revenue_cents) / self.orders if self.orders else None

    @property
    def average_order_value_cents(self) -> Decimal | None:
        return Decimal(self.revenue_cents) / self.paid if self.paid else None


async def figures(database: Database, product: str, start: datetime, end: datetime) -> Figures:
    """Figures for orders of `product` created in [start, end)."""
    paid = Order.status.in_(PAID_STATES)
    async with database.session() as session:
        row = (await session.execute(
            select(func.count(), func.count().filter(paid), func.count().filter(Order.status == Status.FULFILLED),
                   func.coalesce(func.sum(Order.amount_cents).filter(paid), 0))
            .where(Order.product == product, Order.created_at >= start, Order.created_at < end))).one()
    return Figures(*map(int, row))
