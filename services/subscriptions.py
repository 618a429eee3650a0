"""Which plan a user is on, and adding time to it. Renewal stacks on the time that is left."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.engine import Database
from db.models import Order
from db.models_subscriptions import Subscription
from services.channel import PrivateChannel
from services.orders import Status
from services.plan_upgrade import credited_time, restore_credited
from services.plans import FREE, PLANS, Plan


@dataclass(frozen=True, slots=True)
class Current:
    plan: Plan
    ends_at: datetime | None  # None on Free


def best_plan(periods: Iterable[tuple[str, datetime]]) -> Current:
    """The best plan among a user's periods covering now, given as (plan code, ends_at), and when the user's
    time on it runs out (Free with no end when there are none)."""
    ends: dict[str, datetime] = {}
    for code, end in periods:
        if code in PLANS:
            ends[code] = max(end, ends.get(code, end))
    if not ends:
        return Current(FREE, None)
    best = max(ends, key=lambda code: PLANS[code].rank)
    return Current(PLANS[best], ends[best])


class SubscriptionService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.clock = database, clock

    async def current(self, user_id: int) -> Current:
        """The best plan covering now (Free when none); `ends_at` is when the user's paid time on
        that plan runs out, renewals included."""
        now = self.clock()
        async with self.db.session() as session:
            rows = (await session.execute(
                select(Subscription.plan, func.max(Subscription.ends_at))
                .where(Subscription.user_id == user_id, Subscription.ends_at > now)
                .group_by(Subscription.plan))).all()
        return best_plan(rows)

    async def current_plan(self, user_id: int) -> Plan:
        return (await self.current(user_id)).plan

    async def add_time(self, user_id: int, plan_code: str, days: int, *, source: str,
                       order_id: int | None = None, granted_by: int | None = None) -> Subscription:
        """Add `days` on `plan_code`, starting where the user's time on that plan ends (or now).

        Idempotent per order: a second call for the same order returns the first period."""
        if plan_code not in PLANS or not PLANS[plan_code].is_paid:
            raise ValueError(f"unknown or free plan {plan_code!r}")
        if days <= 0:
            raise ValueError("days must be positive")
        now = self.clock()
        async with self.db.transaction() as session:
            if order_id is not None:
                existing = await session.scalar(select(Subscription).where(Subscription.order_id == order_id))
                if existing is not None:
                    return existing
            last_end = await session.scalar(select(func.max(Subscription.ends_at)).where(
                Subscription.user_id == user_id, Subscription.plan == plan_code))
            start = max(now, last_end) if last_end else now
            row = Subscription(user_id=user_id, plan=plan_code, starts_at=start, ends_at=start + timedelta(days=days),
                               source=source, order_id=order_id, granted_by=granted_by, created_at=now)
            session.add(row)
        return row

    async def subscribers(self, plan_codes: list[str] | None = None) -> list[int]:
        """Users with paid time covering now (optionally on these plans)."""
        query = select(Subscription.user_id).where(Subscription.ends_at > self.clock()).distinct()
        if plan_codes:
            query = query.where(Subscription.plan.in_(plan_codes))
        async with self.db.session() as session:
            return list(await session.scalars(query))

    async def revoke_refunded(self) -> list[int]:
        """Safety net for refunds made outside the bot's refund flow (e.g. Telegram's own): take back
        the time of periods whose order was refunded. Safe to repeat; returns the users whose time
        changed."""
        now = self.clock()
        async with self.db.session() as session:
            ids = list(await session.scalars(
                select(Subscription.id).join(Order, Order.id == Subscription.order_id)
                .where(Order.status == Status.REFUNDED, Subscription.ends_at > now,
                       Subscription.ends_at > Subscription.starts_at).order_by(Subscription.id)))
        users = []
        for sub_id in ids:
            cut = await self._cut(sub_id, now)
            if cut is not None:
                users.append(cut[0])
        return users

    async def revoke_order(self, order_id: int) -> timedelta:
        """Take back, now, the time `order_id` bought that is not used yet: its period ends now (or
        never starts), and later periods on the same plan move up to close the gap. Idempotent;
        returns the time removed."""
        now = self.clock()
        async with self.db.session() as session:
            ids = list(await session.scalars(select(Subscription.id).where(
                (Subscription.order_id == order_id) | Subscription.source.like(f"resumed:{order_id}:%"),
                Subscription.ends_at > now, Subscription.ends_at > Subscription.starts_at)))
        removed = timedelta(0)
        for sub_id in ids:
            cut = await self._cut(sub_id, now)
            if cut is not None:
                removed += cut[1]
        return removed

    async def _cut(self, sub_id: int, now: datetime) -> tuple[int, timedelta] | None:
        """End one period's unused time now; (user id, time removed), or None if nothing changed."""
        async with self.db.transaction() as session:
            row = await session.get(Subscription, sub_id)
            old_end = row.ends_at
            new_end = max(row.starts_at, now)
            removed = old_end - new_end
            if removed <= timedelta(0):
                return None
            result = await session.execute(update(Subscription).where(
                Subscription.id == sub_id, Subscription.ends_at == old_end).values(ends_at=new_end))
            if result.rowcount != 1:
                return None
            later = await session.scalars(select(Subscription).where(
                Subscription.user_id == row.user_id, Subscription.plan == row.plan, Subscription.id != sub_id,
                Subscription.starts_at >= old_end))
            for period in later:
                period.starts_at, period.ends_at = period.starts_at - removed, period.ends_at - removed
            return row.user_id, removed


@dataclass(frozen=True, slots=True)
class CreditBack:
    """Time of a lower plan that an upgrade's credit had used and that its refund gives back."""

    plan: str  # the plan's name
    days: float


@dataclass(frozen=True, slots=True)
class PlanTakenBack:
    """What refunding a plan order did: its unused time removed, credited time given back, the plan the
    buyer is on now, and whether they left the private channel."""

    removed_days: float
    resumed: tuple[CreditBack, ...]
    plan_now: Plan
    plan_ends_at: datetime | None
    left_channel: bool

    def record(self) -> dict:
        """For the audit log."""
        return {"removed_days": self.removed_days, "resumed": [[c.plan, c.days] for c in self.resumed],
                "plan_now": self.plan_now.code,
                "plan_ends_at": self.plan_ends_at and self.plan_ends_at.isoformat(), "left_channel": self.left_channel}


def _days(time: timedelta) -> float:
    return round(time.total_seconds() / 86400, 1)


async def take_back_plan(subscriptions: SubscriptionService, channel: PrivateChannel, order: Order) -> PlanTakenBack:
    """A plan order's refund: its unused time ends now, and the private channel is left when no
    paid time remains."""
    removed = await subscriptions.revoke_order(order.id)
    # an upgrade's credit is void once it is refunded: the lower time it consumed comes back
    resumed = await restore_credited(subscriptions.db, order, subscriptions.clock())
    current = await subscriptions.current(order.user_id)
    removed_from_channel = False
    if not current.plan.is_paid and channel.enabled:
        removed_from_channel = await channel.remove(order.user_id)
        if not removed_from_channel and await channel.is_member(order.user_id):
            raise RuntimeError(f"could not remove user {order.user_id} from the private channel")
    given_back = tuple(CreditBack(PLANS[code].name if code in PLANS else code, _days(left)) for code, left in resumed)
    return PlanTakenBack(_days(removed), given_back, current.plan, current.ends_at, removed_from_channel)


def voided_credit(order: Order) -> CreditBack | None:
    """The lower time a refund of this upgrade order would give back (its credit becomes void)."""
    credited = credited_time(order)
    if not credited:
        return None
    credit = (order.details or {}).get("credit") or {}
    plan = PLANS.get(credit.get("from_plan") or "")
    return CreditBack(plan.name if plan else str(credit.get("from_plan")), _days(credited))


async def best_plans(session: AsyncSession, now: datetime) -> dict[int, tuple[Plan, datetime]]:
    """Every user with paid time covering now -> their best plan and when their time on it ends."""
    rows = await session.execute(
        select(Subscription.user_id, Subscription.plan, func.max(Subscription.ends_at))
        .where(Subscription.ends_at > now).group_by(Subscription.user_id, Subscription.plan))
    best: dict[int, tuple[Plan, datetime]] = {}
    for user_id, code, ends in rows:
        plan = PLANS.get(code)
        if plan is not None and (user_id not in best or plan.rank > best[user_id][0].rank):
            best[user_id] = (plan, ends)
    return best
