"""Payout runs as jobs: the admins' /payouts run, the monthly run and the hourly resume on the leader. After
each, payees whose payout was paid are told (once each), and a scheduled run is reported to the admins."""

from __future__ import annotations

import logging

from presentation import payouts as words
from processing.notify import Notifier
from services.payouts import PayoutService, RunReport

log = logging.getLogger(__name__)


class PayoutJob:
    def __init__(self, payouts: PayoutService, notifier: Notifier) -> None:
        self.payouts, self.notifier = payouts, notifier

    async def run(self, started_by: int | None = None) -> RunReport:
        """One run (an admin's, or None: the schedule's), then the payees told."""
        report = await self.payouts.run(started_by)
        await self.tell_payees()
        return report

    async def monthly(self) -> None:
        report = await self.run(None)
        await self.notifier.alert_admins(lambda: words.report(report))

    async def resume(self) -> None:
        """Finish transfers a failed or dead run left open, and tell their payees."""
        await self.payouts.resume()
        await self.tell_payees()

    async def tell_payees(self) -> None:
        for item in await self.payouts.to_notify():
            if item.user_id is not None:
                await self.notifier.send(item.user_id, lambda i=item: words.payee_notice(i), skip_blocked=True)
