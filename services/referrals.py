"""The referral programme on `ref_<id>` start links (services.users.set_referrer records who referred whom).

The reward, `REFERRAL_REWARD_DAYS` of a paid plan, goes to the referrer once per referred user: when that user's
first order is fulfilled. The `referral_rewards` row is claimed with a conditional insert (unique per referred
user) before the days are added, so retries and concurrent deliveries grant it once; if adding the days fails,
the claim is taken back (a retry of the same order may grant it) and the error goes to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from db.base import utcnow
from db.engine import Database
from db.models import Order, User
from db.models_referrals import ReferralReward
from services.plans import PLANS, Plan
from services.subscriptions import SubscriptionService


@dataclass(frozen=True, slots=True)
class Reward:
    referrer_id: int
    referred_user_id: int
    plan: Plan
    days: int


@dataclass(frozen=True, slots=True)
class ReferralSummary:
    invited: int  # users who joined through the link
    rewarded: int  # of them, those whose first order earned a reward
    days: int  # paid-plan days earned in all


def reward_plan(current: Plan) -> Plan:
    """The plan the days are added to: the referrer's own paid plan, else the first paid one."""
    if current.is_paid:
        return current
    return min((p for p in PLANS.values() if p.is_paid), key=lambda p: p.rank)


class ReferralService:
    def __init__(self, database: Database, subscriptions: SubscriptionService, *, reward_days: int,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.subscriptions, self.reward_days, self.clock = database, subscriptions, reward_days, clock

    async def reward(self, order: Order) -> Reward | None:
        """Reward the buyer's referrer if `order` is the buyer's first fulfilled one (call it once the order is
        delivered). None when there is nothing to reward or it was rewarded already."""
        if self.reward_days <= 0:
            return None
        async with self.db.session() as session:
            referrer_id = await session.scalar(select(User.referrer_id).where(User.id == order.user_id))
            earlier = await session.scalar(select(func.count()).where(
                Order.user_id == order.user_id, Order.id != order.id, Order.fulfilled_at.is_not(None)))
        if referrer_id is None or earlier:  # not referred, or not the first order
            return None
        plan = reward_plan(await self.subscriptions.current_plan(referrer_id))
        async with self.db.transaction() as session:
            claimed = await session.execute(self.db.insert(ReferralReward).values(
                referred_user_id=order.user_id, referrer_id=referrer_id, order_id=order.id, plan=plan.code,
                days=self.reward_days, created_at=self.clock()).on_conflict_do_nothing(
                index_elements=["referred_user_id"]))
            if claimed.rowcount != 1:
                return None
        try:
            await self.subscriptions.add_time(referrer_id, plan.code, self.reward_days, source="referral")
        except Exception:
            async with self.db.transaction() as session:  # not granted: the next delivery may claim it again
                await session.execute(delete(ReferralReward).where(
                    ReferralReward.referred_user_id == order.user_id))
            raise
        return Reward(referrer_id, order.user_id, plan, self.reward_days)

    async def summary(self, user_id: int) -> ReferralSummary:
        async with self.db.session() as session:
            invited = await session.scalar(select(func.count()).where(User.referrer_id == user_id)) or 0
            rewarded, days = (await session.execute(
                select(func.count(), func.coalesce(func.sum(ReferralReward.days), 0))
                .where(ReferralReward.referrer_id == user_id))).one()
        return ReferralSummary(invited, rewarded, int(days))
