"""Whale alerts: the queue filled by ingest (one row per follow × trade) turned into messages.

Batching: a follower's first pending alert opens a window of `window` seconds (60 by default);
every alert queued for that user meanwhile goes into the same message, sent when the window
closes. Rows are claimed with a conditional update and a lease (30 s) renewed by a heartbeat while the
message goes out (services/leases.py), so a second worker never sends them twice and a worker that died
mid-send is picked up again once its lease runs out. Users who
blocked the bot, or whose paid plan has ended, are skipped (rows marked `skipped`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError

from db.base import utcnow
from presentation.whales import alert_text
from processing.notify import Notifier
from services.leases import LEASE, heartbeat
from services.subscriptions import SubscriptionService
from services.whales import WhaleService
from transport.gate import bulk

log = logging.getLogger(__name__)
BATCH_WINDOW = timedelta(seconds=60)



class WhaleAlerts:
    def __init__(self, whales: WhaleService, notifier: Notifier,
                 subscriptions: SubscriptionService, tz: ZoneInfo, *, clock: Callable[[], datetime] = utcnow,
                 window: timedelta = BATCH_WINDOW, lease: timedelta = LEASE) -> None:
        self.whales, self.notifier, self.subscriptions, self.tz = whales, notifier, subscriptions, tz
        self.clock, self.window, self.lease = clock, window, lease

    async def tick(self) -> int:
        """Send every batch whose window has closed; returns messages sent."""
        sent = 0
        now = self.clock()
        for user_id in await self.whales.due_alert_users(now, self.window):
            batch = await self.whales.claim_alerts(user_id, now, self.lease)
            if batch:
                held = [batch[0][0].lease_until]
                ids = [alert.id for alert, _trade, _wallet in batch]
                async with heartbeat(lambda ids=ids, held=held: self._renew(ids, held), self.lease,
                                     what=f"whale alerts of {user_id}"):
                    sent += await self._deliver(user_id, batch)
        return sent

    async def _renew(self, ids: list[int], held: list[datetime]) -> bool:
        until = self.clock() + self.lease
        if not await self.whales.renew_alerts(ids, held[0], until):
            return False
        held[0] = until
        return True

    async def _deliver(self, user_id: int, batch) -> int:
        ids = [alert.id for alert, _trade, _wallet in batch]
        plan = await self.subscriptions.current_plan(user_id)
        if not plan.is_paid:
            await self.whales.finish_alerts(ids, "skipped", self.clock())
            return 0
        items = [(trade, wallet) for _alert, trade, wallet in batch]
        try:
            with bulk():
                sent = await self.notifier.send(user_id, lambda: alert_text(items, self.tz), strict=True,
                                                skip_blocked=True)
        except TelegramForbiddenError:
            await self.whales.finish_alerts(ids, "skipped", self.clock())
            return 0
        except TelegramAPIError as exc:
            log.warning("whale alert to %s failed: %s", user_id, exc.message)
            await self.whales.finish_alerts(ids, "failed", self.clock())
            return 0
        if sent is None:  # blocked the bot, or unknown
            await self.whales.finish_alerts(ids, "skipped", self.clock())
            return 0
        await self.whales.finish_alerts(ids, "sent", self.clock())
        return 1
