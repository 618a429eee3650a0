"""Changing plan while one runs, so no paid time is wasted.

* **Upgrade** (a higher plan while lower ones run): the unused part of each lower period bought
  with an order is credited against the new price, prorated by the time left (exact Decimal,
  rounded up to the cent: in the buyer's favour; the time left is counted from the start of the
  current minute, so two taps in the same minute price the same). On activation those periods end
  (their value went into the credit). The credit is data on the order (`details["credit"]`: amount,
  cause, the periods it came from); the order's price shows base, credit and total.
* If the credit would cover the whole new price, nothing is credited: the lower time is **moved
  after** the higher plan instead (it pauses and resumes when the higher plan ends).
* **Downgrade** (a lower plan while a higher one runs): the lower period starts when the higher
  plan's time ends, instead of running unseen beneath it.
* Granted time (no order) is left as it is.

The screen says which applies before payment (`details["plan_change"]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import func, select, update

from db.engine import Database
from db.models import Order
from db.models_subscriptions import Subscription
from services.orders import Status
from services.plans import PLANS, Plan

CREDIT, AFTER, DOWNGRADE = "credit", "after", "downgrade"
#: Orders whose periods carry value that can be credited.
VALUED = (Status.PAID, Status.PAID_OVER, Status.FULFILLED)


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What buying `plan` now does to the time the user already has. `mode`: None (nothing runs
    that it affects), credit, after or downgrade."""

    mode: str | None = None
    credit_cents: int = 0
    exact_credit: Decimal = Decimal(0)
    from_plan: str | None = None  # the plan credited or moved (the highest lower one) / the higher one
    periods: list[int] = field(default_factory=list)  # subscription rows credited or moved
    until: datetime | None = None  # when the affected time ends (lower time, or the higher plan's)

    def details(self) -> dict:
        """What is stored on the order (and read back by the screen and the fulfiller)."""
        out: dict = {"mode": self.mode, "from_plan": self.from_plan, "periods": self.periods,
                     "until": self.until.isoformat() if self.until else None}
        return out


def minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def plan_change(db: Database, user_id: int, plan: Plan, price_cents: int, now: datetime) -> PlanChange:
    """How buying `plan` at `price_cents` now would treat the user's running time."""
    start = minute_floor(now)
    async with db.session() as session:
        rows = (await session.execute(
            select(Subscription, Order.amount_cents, Order.details, Order.status)
            .outerjoin(Order, Order.id == Subscription.order_id)
            .where(Subscription.user_id == user_id, Subscription.ends_at > now,
                   Subscription.ends_at > Subscription.starts_at)
            .order_by(Subscription.starts_at))).all()
    higher = [(sub, PLANS[sub.plan]) for sub, *_ in rows if sub.plan in PLANS and PLANS[sub.plan].rank > plan.rank]
    if higher:
        top = max(higher, key=lambda item: item[1].rank)[1]
        return PlanChange(DOWNGRADE, from_plan=top.code, until=max(sub.ends_at for sub, _p in higher))
    exact, periods, lower = Decimal(0), [], []
    for sub, amount_cents, details, status in rows:
        lower_plan = PLANS.get(sub.plan)
        if lower_plan is None or lower_plan.rank >= plan.rank or sub.order_id is None or status not in VALUED:
            continue
        base = Decimal(int((details or {}).get("base_cents") or amount_cents))
        length = (sub.ends_at - sub.starts_at).total_seconds()
        unused = (sub.ends_at - max(sub.starts_at, start)).total_seconds()
        exact += base * Decimal(int(unused)) / Decimal(int(length))
        periods.append(sub.id)
        lower.append((sub, lower_plan))
    if not lower:
        return PlanChange()
    from_plan = max(lower, key=lambda item: item[1].rank)[1].code
    until = max(sub.ends_at for sub, _p in lower)
    credit = int(exact.to_integral_value(rounding=ROUND_CEILING))
    if credit >= price_cents:  # it would pay for all of it: keep the time, after the higher plan
        return PlanChange(AFTER, from_plan=from_plan, periods=periods, until=until)
    return PlanChange(CREDIT, credit, exact, from_plan, periods, until)


async def end_credited(db: Database, periods: list[int], now: datetime) -> None:
    """The credited periods end now (a period not started yet ends at its start). Idempotent."""
    async with db.transaction() as session:
        for sub_id in periods:
            row = await session.get(Subscription, sub_id)
            if row is None or row.ends_at <= now:
                continue
            await session.execute(update(Subscription).where(
                Subscription.id == sub_id, Subscription.ends_at == row.ends_at).values(
                ends_at=max(row.starts_at, now)))


async def move_after(db: Database, order_id: int, periods: list[int], plan: Plan, now: datetime) -> None:
    """Pause these lower periods now and resume them when the user's time on `plan` (or higher)
    ends, in one transaction; a retry finds the resumed rows (source `moved:<order>`) and does nothing."""
    marker = f"moved:{order_id}"
    async with db.transaction() as session:
        if await session.scalar(select(Subscription.id).where(Subscription.source == marker).limit(1)):
            return
        rows = [r for r in [await session.get(Subscription, i) for i in periods] if r and r.ends_at > now]
        if not rows:
            return
        higher = [code for code, p in PLANS.items() if p.rank >= plan.rank]
        resume_at = await session.scalar(select(func.max(Subscription.ends_at)).where(
            Subscription.user_id == rows[0].user_id, Subscription.plan.in_(higher))) or now
        for row in sorted(rows, key=lambda r: r.starts_at):
            left = row.ends_at - max(row.starts_at, now)
            session.add(Subscription(user_id=row.user_id, plan=row.plan, starts_at=resume_at,
                                     ends_at=resume_at + left, source=marker, order_id=None, created_at=now))
            resume_at += left
            row.ends_at = max(row.starts_at, now)


async def start_after_higher(db: Database, sub_id: int, plan: Plan, now: datetime) -> Subscription:
    """A lower plan's new period starts when the user's higher-plan time ends (not beneath it)."""
    async with db.transaction() as session:
        row = await session.get(Subscription, sub_id)
        higher = [code for code, p in PLANS.items() if p.rank > plan.rank]
        higher_end = await session.scalar(select(func.max(Subscription.ends_at)).where(
            Subscription.user_id == row.user_id, Subscription.plan.in_(higher), Subscription.ends_at > now))
        if higher_end is not None and row.starts_at < higher_end:
            shift: timedelta = higher_end - row.starts_at
            row.starts_at, row.ends_at = row.starts_at + shift, row.ends_at + shift
        await session.flush()
        session.expunge(row)
        return row
