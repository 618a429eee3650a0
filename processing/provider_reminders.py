"""The marketplace's renewal reminders job (on the scheduler's leader, every 5 minutes): 3 days and 1 day
before a user's time with a provider ends, a reminder with a "Renew" button.

Safe to run twice or from two processes: each reminder is claimed once in the database
(services.provider_notices) before anything is sent, and the claim is renewed while the send runs."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from db.base import utcnow
from presentation.plans import format_end
from presentation.provider_reminders import reminder_text, renew_markup
from processing.notify import Notifier
from services.leases import heartbeat
from services.marketplace import MarketplaceService, State
from services.plan_notices import CLAIM_LEASE
from services.provider_notices import DueReminder, ProviderNotices

log = logging.getLogger(__name__)


class ProviderReminders:
    def __init__(self, market: MarketplaceService, notices: ProviderNotices, notifier: Notifier, tz: ZoneInfo, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.market, self.notices, self.notifier, self.tz, self.clock = market, notices, notifier, tz, clock

    async def run(self) -> int:
        """Send every due reminder once; returns how many were acted on."""
        done = 0
        for item in await self.notices.due():
            held = await self.notices.claim(item)
            if held is None:
                continue
            try:
                async with heartbeat(functools.partial(self._renew, item, [held]), CLAIM_LEASE,
                                     what=f"provider reminder {item.kind} of {item.user_id}"):
                    status = await self._handle(item)
            except Exception:
                log.exception("provider reminder %s for user %s failed; retried at a later run", item.kind,
                              item.user_id)
                continue
            await self.notices.finish(item, status)
            done += 1
        return done

    async def _renew(self, item: DueReminder, held: list[datetime]) -> bool:
        renewed = await self.notices.renew(item, held[0])
        if renewed is None:
            return False
        held[0] = renewed
        return True

    async def _handle(self, item: DueReminder) -> str:
        provider = await self.market.get(item.provider_id)
        if provider is None or provider.status != State.APPROVED.value:  # suspended meanwhile: refunded, not sold
            return "skipped"
        until = await self.market.subscribed_until(item.user_id, item.provider_id)
        if until is None or until > item.ends_at:  # renewed meanwhile: the new end gets its own reminders
            return "skipped"
        ends = format_end(item.ends_at, self.tz)
        sent = await self.notifier.send(item.user_id, lambda: reminder_text(item.kind, provider.name, ends),
                                        lambda: renew_markup(provider.id, provider.price_cents), skip_blocked=True)
        return "skipped" if sent is None else "sent"
