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

**Refunds** never pay the credited value twice. Activation records on the upgrade order what it
ended (`details["credit"]["ended"]`: period -> [cut at, old end]). While the upgrade order holds the
credit (pending or paid), the lower order cannot be refunded (`credited_into` names the upgrade to
refund instead). Refunding the upgrade voids the credit: the lower time it consumed resumes
(`restore_credited`, new periods with source `resumed:<lower order>:<upgrade order>`, which a later
refund of the lower order takes back like its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from sqlalchemy import func, select, update

from db.engine import Database
from db.models import Order
from db.models_subscriptions import Subscription
from services.orders import Status
from services.plans import PLANS, Plan


class ChangeMode(StrEnum):
    """How buying a plan treats the time the user already has (stored as its value on the order)."""

    CREDIT = "credit"  # a higher plan: the lower time's value is credited to its price and that time ends
    AFTER = "after"  # a higher plan, lower time without value to credit: it waits and resumes after
    DOWNGRADE = "downgrade"  # a lower plan: it starts when the higher plan's time ends


CREDIT, AFTER, DOWNGRADE = ChangeMode.CREDIT, ChangeMode.AFTER, ChangeMode.DOWNGRADE  # short names
#: Orders whose periods carry value that can be credited.
VALUED = (Status.PAID, Status.PAID_OVER, Status.FULFILLED)
#: An upgrade order in these states holds (or may still consume) the credit of the lower periods.
HOLDS_CREDIT = (Status.PENDING, Status.PAID, Status.PAID_OVER, Status.PAID_PARTIAL, Status.PAID_LATE,
                Status.FULFILLED, Status.FULFIL_FAILED)


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What buying `plan` now does to the time the user already has. `mode`: None when nothing runs
    that it affects."""

    mode: ChangeMode | None = None
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


async def end_credited(db: Database, periods: list[int], now: datetime, order_id: int | None = None) -> None:
    """The credited periods end now (a period not started yet ends at its start). Idempotent. With
    `order_id` (the upgrade), what was ended is recorded on it in the same transaction, so a refund
    of the upgrade can give that time back."""
    async with db.transaction() as session:
        ended: dict[str, list[str]] = {}
        for sub_id in periods:
            row = await session.get(Subscription, sub_id)
            if row is None or row.ends_at <= now:
                continue
            old_end, cut_at = row.ends_at, max(row.starts_at, now)
            result = await session.execute(update(Subscription).where(
                Subscription.id == sub_id, Subscription.ends_at == old_end).values(ends_at=cut_at))
            if result.rowcount == 1:
                ended[str(sub_id)] = [cut_at.isoformat(), old_end.isoformat()]
        if order_id is not None and ended:
            order = await session.get(Order, order_id)
            details = dict(order.details or {})
            credit = dict(details.get("credit") or {})
            credit["ended"] = {**(credit.get("ended") or {}), **ended}
            details["credit"] = credit
            await session.execute(update(Order).where(Order.id == order_id).values(details=details))


def resumed_source(lower_order_id: int | None, upgrade_order_id: int) -> str:
    return f"resumed:{lower_order_id or 0}:{upgrade_order_id}"


def credited_time(order: Order) -> timedelta:
    """The lower time this upgrade order's credit consumed (zero before activation or without credit)."""
    ended = ((order.details or {}).get("credit") or {}).get("ended") or {}
    return sum((datetime.fromisoformat(end) - datetime.fromisoformat(cut) for cut, end in ended.values()),
               timedelta(0))


async def credited_into(db: Database, order: Order) -> int | None:
    """The upgrade order that holds the credit of `order`'s plan time, if any (refund that one)."""
    async with db.session() as session:
        own = set(await session.scalars(select(Subscription.id).where(Subscription.order_id == order.id)))
        if not own:
            return None
        others = await session.scalars(select(Order).where(
            Order.user_id == order.user_id, Order.product == order.product, Order.id != order.id,
            Order.status.in_(HOLDS_CREDIT)).order_by(Order.id))
        for other in others:
            credit = (other.details or {}).get("credit") or {}
            if own & {int(i) for i in credit.get("periods") or []}:
                return other.id
    return None


async def restore_credited(db: Database, order: Order, now: datetime) -> list[tuple[str, timedelta]]:
    """The upgrade `order` is refunded, so its credit is void: the lower time it consumed resumes now
    (after any time already queued on that plan). Once per order; returns (plan, time given back)."""
    ended = ((order.details or {}).get("credit") or {}).get("ended") or {}
    if not ended:
        return []
    restored: list[tuple[str, timedelta]] = []
    async with db.transaction() as session:
        if await session.scalar(select(Subscription.id).where(
                Subscription.source.like(f"resumed:%:{order.id}")).limit(1)):
            return []
        for sub_id, (cut, end) in sorted(ended.items(), key=lambda item: item[1][0]):
            row = await session.get(Subscription, int(sub_id))
            left = datetime.fromisoformat(end) - datetime.fromisoformat(cut)
            if row is None or left <= timedelta(0):
                continue
            last = await session.scalar(select(func.max(Subscription.ends_at)).where(
                Subscription.user_id == row.user_id, Subscription.plan == row.plan))
            start = max(now, last) if last else now
            session.add(Subscription(user_id=row.user_id, plan=row.plan, starts_at=start, ends_at=start + left,
                                     source=resumed_source(row.order_id, order.id), order_id=None, created_at=now))
            await session.flush()
            restored.append((row.plan, left))
    return restored


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
