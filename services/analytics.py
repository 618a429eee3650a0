"""Business figures computed from orders (never stored separately, so they cannot drift).

For a product and a period: orders created; payment success rate = share of those orders that were
paid; delivery success rate = share of paid orders that were delivered; revenue = what paid orders
brought in (refunds excluded); revenue per order = revenue / orders created; average order value =
revenue / paid orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from db.engine import Database
from db.models import Order, User
from db.models_subscriptions import Subscription
from services.orders import Status
from services.subscriptions import best_plans

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


async def figures(database: Database, product: str | None, start: datetime, end: datetime) -> Figures:
    """Figures for orders of `product` (None: every product) created in [start, end)."""
    paid = Order.status.in_(PAID_STATES)
    query = (select(func.count(), func.count().filter(paid), func.count().filter(Order.status == Status.FULFILLED),
                    func.coalesce(func.sum(Order.amount_cents).filter(paid), 0))
             .where(Order.created_at >= start, Order.created_at < end))
    if product is not None:
        query = query.where(Order.product == product)
    async with database.session() as session:
        row = (await session.execute(query)).one()
    return Figures(*map(int, row))


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What /stats shows. Revenue counts orders by the time they were paid (refunds excluded)."""

    revenue: dict[str, dict[str, int]]  # period -> {"total", "product:<p>", "provider:<p>"} cents
    orders_per_day: list[tuple[date, int]]  # last 7 days, oldest first
    month: Figures  # orders created in the last 30 days
    subscribers: dict[str, int]  # plan code -> users whose best active plan it is
    mrr_cents: int  # active subscribers × their plan's monthly list price
    churn: Decimal | None  # share of subscribers of the last 30 days whose paid time ended unrenewed
    users_total: int
    users_new_today: int
    users_new_week: int
    users_blocked: int
    daily_revenue: list[tuple[date, int]]  # last 30 days, oldest first


async def dashboard(database: Database, tz: ZoneInfo, now: datetime) -> Dashboard:
    today = datetime.combine(now.astimezone(tz).date(), time(), tz)
    periods = {"today": today, "7d": today - timedelta(days=6), "30d": today - timedelta(days=29)}
    paid = Order.status.in_(PAID_STATES)
    async with database.session() as session:
        sums = [func.coalesce(func.sum(Order.amount_cents).filter(Order.paid_at >= start), 0)
                for start in periods.values()]
        rows = (await session.execute(  # one pass over the month's paid orders for all three periods
            select(Order.product, Order.provider, *sums)
            .where(paid, Order.paid_at >= periods["30d"]).group_by(Order.product, Order.provider))).all()
        revenue: dict[str, dict[str, int]] = {name: {"total": 0} for name in periods}
        for product, provider, *amounts in rows:
            for name, cents in zip(periods, amounts, strict=True):
                bucket = revenue[name]
                bucket["total"] += int(cents)
                bucket[f"product:{product}"] = bucket.get(f"product:{product}", 0) + int(cents)
                bucket[f"provider:{provider}"] = bucket.get(f"provider:{provider}", 0) + int(cents)
        daily_orders = await _per_day(session, Order.created_at, func.count(), periods["7d"], tz, today)
        daily_revenue = await _per_day(session, Order.paid_at, func.sum(Order.amount_cents), periods["30d"], tz,
                                       today, paid)
        best = {user_id: plan for user_id, (plan, _ends) in (await best_plans(session, now)).items()}
        lapsed = set(await session.scalars(select(Subscription.user_id).where(
            Subscription.ends_at <= now, Subscription.ends_at > now - timedelta(days=30)).distinct())) - set(best)
        users = (await session.execute(select(
            func.count(), func.count().filter(User.first_seen >= today),
            func.count().filter(User.first_seen >= periods["7d"]),
            func.count().filter(User.is_blocked.is_(True))).select_from(User))).one()
    subscribers: dict[str, int] = {}
    for subscribed in best.values():
        subscribers[subscribed.code] = subscribers.get(subscribed.code, 0) + 1
    base = len(best) + len(lapsed)
    return Dashboard(
        revenue=revenue, orders_per_day=daily_orders, month=await figures(database, None, periods["30d"],
                                                                          today + timedelta(days=1)),
        subscribers=subscribers, mrr_cents=sum(p.monthly_cents for p in best.values()),
        churn=Decimal(len(lapsed)) / base if base else None, users_total=int(users[0]),
        users_new_today=int(users[1]), users_new_week=int(users[2]), users_blocked=int(users[3]),
        daily_revenue=daily_revenue)


async def _per_day(session, column, aggregate, start: datetime, tz: ZoneInfo, today: datetime,
                   *conditions) -> list[tuple[date, int]]:
    """A value per local day from `start` to today. The database sums per UTC hour (at most 24 rows
    a day, on SQLite and PostgreSQL alike); hours are then folded into days of `tz`."""
    if session.bind.dialect.name == "sqlite":
        hour = func.strftime("%Y-%m-%d %H", column)
    else:
        hour = func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    rows = (await session.execute(select(hour, aggregate).where(column >= start, *conditions).group_by(hour))).all()
    days: dict[date, int] = {}
    for bucket, value in rows:
        day = datetime.strptime(bucket, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(tz).date()
        days[day] = days.get(day, 0) + int(value or 0)
    count = (today.date() - start.date()).days + 1
    return [(d, days.get(d, 0)) for d in (start.date() + timedelta(days=i) for i in range(count))]
