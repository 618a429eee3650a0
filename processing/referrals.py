"""Referral rewards at delivery: wraps the fulfilment worker's deliverer so that, once an order's delivery
message went out, the buyer's referrer gets the reward for a first order and is told in their language."""

from __future__ import annotations

import logging

from db.models import Order
from presentation.referrals import reward_text
from processing.fulfilment import Deliverer
from processing.notify import Notifier
from services.products import Delivery
from services.referrals import ReferralService

log = logging.getLogger(__name__)


class RewardingDeliverer:
    def __init__(self, inner: Deliverer, referrals: ReferralService, notifier: Notifier) -> None:
        self.inner, self.referrals, self.notifier = inner, referrals, notifier

    async def deliver(self, order: Order, delivery: Delivery) -> None:
        await self.inner.deliver(order, delivery)
        try:  # the buyer has their delivery: a failure here must not make the job send it again
            reward = await self.referrals.reward(order)
        except Exception:
            log.exception("referral reward for order %s failed", order.id)
            return
        if reward is not None:
            await self.notifier.send(reward.referrer_id, lambda: reward_text(reward))

    async def fulfilment_failed(self, order: Order, error: str) -> None:
        await self.inner.fulfilment_failed(order, error)
