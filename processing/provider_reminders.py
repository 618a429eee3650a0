"""The marketplace's renewal reminders job (on the scheduler's leader, every 5 minutes): 3 days and 1 day
before a user's time with a provider ends, a reminder with a "Renew" button.

Safe to run twice or from two processes: each reminder is claimed once in the database
(services.provider_notices) before anything is sent, and the claim is renewed while the send runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from db.base import utcnow
from presentation.plans import format_end
from presentation.provider_reminders import reminder_text, renew_markup
from processing.due_notices import handle_due
from processing.notify import Notifier
from services.marketplace import MarketplaceService, State
from services.plan_notices import CLAIM_LEASE
from services.provider_notices import DueReminder, ProviderNotices


class ProviderReminders:
    def __init__(self, market: MarketplaceService, notices: ProviderNotices, notifier: Notifier, tz: ZoneInfo, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.market, self.notices, self.notifier, self.tz, self.clock = market, notices, notifier, tz, clock

    async def run(self) -> int:
        """Send every due reminder once; returns how many were acted on."""
        return await handle_due(self.notices, self._handle, "provider reminder", lease=CLAIM_LEASE)

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
