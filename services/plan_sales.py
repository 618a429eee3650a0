"""Selling plans through the payment core: prepaid periods (a month or a year) as orders, and the
fulfiller that turns a paid order into subscription time plus a private-channel invite.

Stars subscriptions (`createInvoiceLink(subscription_period=…)`) are deliberately not used: every
period is a prepaid order. One order pays once through the one state machine, so receipts, /orders,
refunds and the "counted once" rules stay exactly those of every other product; Telegram would
charge a Stars subscription's next month with no pre-checkout (so no chance to refuse a plan that
changed price or no longer exists), against the first invoice's payload (an order already
fulfilled), and only in Stars. Renewal is one tap in /plans and stacks on the time that is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from aiogram.utils.i18n import lazy_gettext as __

from db.models import Order
from services.channel import PrivateChannel
from services.orders import OrderService
from services.placed import Placed, PlaceProblem
from services.plan_upgrade import AFTER, CREDIT, DOWNGRADE, end_credited, move_after, plan_change, start_after_higher
from services.plans import PLANS, Plan
from services.products import Command, Delivery, FulfilmentFailed, MenuEntry, Product, TakenBack
from services.subscriptions import CreditBack, PlanTakenBack, SubscriptionService, take_back_plan, voided_credit

if TYPE_CHECKING:
    from services.products import ProductParts

PRODUCT = "plan"


@dataclass(frozen=True, slots=True)
class Period:
    code: str  # "month" or "year" (the product_ref suffix)
    days: int
    months_charged: int  # a year costs 10 months

    def price_cents(self, plan: Plan) -> int:
        return plan.monthly_cents * self.months_charged


PERIODS: dict[str, Period] = {p.code: p for p in (Period("month", 30, 1), Period("year", 365, 10))}


def product_ref(plan: Plan, period: Period) -> str:
    return f"{plan.code}:{period.code}"


def parse_ref(ref: str) -> tuple[Plan, Period] | None:
    """("pro", "month") from "pro:month"; None for anything not for sale (Free, unknown, malformed)."""
    code, _sep, period_code = ref.partition(":")
    plan, period = PLANS.get(code), PERIODS.get(period_code)
    if plan is None or period is None or not plan.is_paid:
        return None
    return plan, period


class PlanShop:
    def __init__(self, orders: OrderService, *, ttl: timedelta) -> None:
        self.orders, self.ttl = orders, ttl

    async def place(self, user_id: int, plan_code: str, period_code: str) -> Placed:
        """Create the pending order for a plan period; a forged or stale choice is refused."""
        parsed = parse_ref(f"{plan_code}:{period_code}")
        if parsed is None:
            return Placed(problem=PlaceProblem.UNKNOWN_PLAN)
        plan, period = parsed
        length = "1 month" if period.code == "month" else "12 months"
        price = period.price_cents(plan)
        change = await plan_change(self.orders.db, user_id, plan, price, self.orders.clock())
        details = {"plan": plan.code, "period": period.code, "days": period.days, "base_cents": price,
                   "plan_change": change.details()}
        if change.mode == CREDIT:  # the order's own record of the credit: amount and cause
            details["credit"] = {"cents": change.credit_cents, "exact": str(change.exact_credit),
                                 "cause": "upgrade", "from_plan": change.from_plan, "periods": change.periods}
        order = await self.orders.create(
            user_id=user_id, product=PRODUCT, product_ref=product_ref(plan, period),
            title=f"{plan.name} plan · {length}", amount_cents=price - change.credit_cents, ttl=self.ttl,
            details=details)
        return Placed(order=order)


@dataclass(frozen=True, slots=True)
class PlanActivated:
    """What a paid plan order gave the buyer."""

    plan: str  # the plan's name
    ends_at: datetime
    starts_at: datetime | None  # set when it waits for the buyer's higher plan's time to end
    invite: str | None  # a one-use private-channel invite
    invite_failed: bool  # the buyer needed an invite (channel on, not a member) but none could be made


class PlanWording(Protocol):
    """How the plan fulfiller's results are put to people (presentation.plans.PlanTexts); each is
    called in the reader's locale."""

    def activated(self, activated: PlanActivated) -> str: ...

    def join_label(self) -> str:
        """The button under the activation message that opens the private channel invite."""
        ...

    def takes_back(self, credit: CreditBack | None) -> str:
        """For the admin's refund confirmation; `credit`: lower time the refund gives back."""
        ...

    def taken_back(self, taken: PlanTakenBack) -> str: ...


class PlanFulfiller:
    """Adds the paid time (once per order, however often the job is retried), then invites."""

    product = PRODUCT

    def __init__(self, subscriptions: SubscriptionService, channel: PrivateChannel, wording: PlanWording) -> None:
        self.subscriptions, self.channel, self.wording = subscriptions, channel, wording

    async def fulfil(self, order: Order) -> Delivery:
        parsed = parse_ref(order.product_ref)
        if parsed is None:
            raise FulfilmentFailed(f"unknown plan {order.product_ref!r}")
        plan, period = parsed
        days = int((order.details or {}).get("days") or period.days)
        period_row = await self.subscriptions.add_time(order.user_id, plan.code, days, source="order",
                                                       order_id=order.id)
        change = (order.details or {}).get("plan_change") or {}
        now = self.subscriptions.clock()
        if change.get("mode") == CREDIT:  # the lower time was paid for by the credit: it ends now
            await end_credited(self.subscriptions.db, change.get("periods") or [], now, order.id)
        elif change.get("mode") == AFTER:
            await move_after(self.subscriptions.db, order.id, change.get("periods") or [], plan, now)
        starts = None
        if period_row.starts_at <= now or change.get("mode") == DOWNGRADE:
            was = period_row.starts_at
            period_row = await start_after_higher(self.subscriptions.db, period_row.id, plan, now)
            if period_row.starts_at != was:  # waits for the higher plan's time to end
                starts = period_row.starts_at
        member = await self.channel.is_member(order.user_id)
        link = None if member else await self.channel.invite(order.user_id, until=period_row.ends_at)
        activated = PlanActivated(plan.name, period_row.ends_at, starts, link,
                                  invite_failed=link is None and self.channel.enabled and not member)
        return Delivery(
            text=lambda: self.wording.activated(activated),
            link=(lambda: (self.wording.join_label(), link)) if link else None,
            record={"plan": plan.code, "period": period.code, "days": days,
                    "ends_at": period_row.ends_at.isoformat(), "invite_sent": link is not None})

    def takes_back(self, order: Order) -> str:
        return self.wording.takes_back(voided_credit(order))

    async def revoke(self, order: Order) -> TakenBack:
        taken = await take_back_plan(self.subscriptions, self.channel, order)
        return TakenBack(lambda: self.wording.taken_back(taken), taken.record())


def plan_product(parts: ProductParts, wording: PlanWording) -> Product:
    """Signal plans as the app sells them, told in `wording` (the app registers
    presentation.plans.plan_product, which passes its own; handlers: handlers/user/plans.py and signals.py)."""
    return Product(
        id=PRODUCT, name=__("Plans"), fulfiller=PlanFulfiller(parts.subscriptions, parts.channel, wording),
        menu=MenuEntry("plans", __("📈 Signal plans")),
        commands=(Command("plans", __("Signal subscription plans"), help=__("/plans — signal subscription plans")),
                  Command("signals", __("My signals and filters"),
                          help=__("/signals — your subscription, latest signals and filters"))))

