"""The subscription lifecycle job: reminders 3 days and 1 day before a user's paid time ends, and on
expiry removal from the private channel and a message saying how to renew.

Safe to run twice or from two processes: each notice is claimed once in the database
(services.plan_notices) before anything is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from db.base import utcnow
from presentation.plans import expired_text, format_end, reminder_text
from processing.due_notices import handle_due
from processing.notify import Notifier
from services.channel import PrivateChannel
from services.plan_notices import CLAIM_LEASE, EXPIRED, Due, PlanNotices
from services.plans import PLANS
from services.subscriptions import SubscriptionService

log = logging.getLogger(__name__)


class SubscriptionLifecycle:
    def __init__(self, subscriptions: SubscriptionService, notices: PlanNotices, channel: PrivateChannel,
                 notifier: Notifier, tz: ZoneInfo, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.subscriptions, self.notices, self.channel = subscriptions, notices, channel
        self.notifier, self.tz, self.clock = notifier, tz, clock

    async def run(self) -> int:
        """Take back refunded time, then handle every due notice; returns how many notices were acted on."""
        revoked = await self.subscriptions.revoke_refunded()
        if revoked:
            log.info("refunded plan time taken back from users %s", revoked)
        return await handle_due(self.notices, self._handle, "plan notice", lease=CLAIM_LEASE)

    async def _handle(self, item: Due) -> str:
        plan_name = PLANS[item.plan_code].name if item.plan_code in PLANS else item.plan_code
        current = await self.subscriptions.current(item.user_id)
        if item.kind == EXPIRED:
            if current.plan.is_paid:  # renewed at the last moment
                return "skipped"
            removed = await self.channel.remove(item.user_id)
            log.info("user %s: paid time ended at %s; now Free (channel removal: %s)", item.user_id,
                     item.ends_at, removed)
            render = lambda: expired_text(plan_name, self.channel.enabled)  # noqa: E731
        else:
            if current.ends_at is None or current.ends_at > item.ends_at:
                return "skipped"
            ends = format_end(item.ends_at, self.tz)
            render = lambda: reminder_text(item.kind, plan_name, ends)  # noqa: E731
        sent = await self.notifier.send(item.user_id, render, skip_blocked=True)
        return "skipped" if sent is None else "sent"
