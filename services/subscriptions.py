"""Which plan a user is on, and adding time to it. Renewal stacks on the time that is left."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from db.base import utcnow
from db.engine import Database
from db.models_subscriptions import Subscription
from services.plans import FREE, PLANS, Plan


@dataclass(frozen=True, slots=True)
class Current:
    plan: Plan
    ends_at: datetime | None  # None on Free


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
        active = [(PLANS[code], ends) for code, ends in rows if code in PLANS]
        if not active:
            return Current(FREE, None)
        best, ends = max(active, key=lambda item: item[0].rank)
        return Current(best, ends)

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
