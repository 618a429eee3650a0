"""Payout runs as jobs: the admins' /payouts run, the monthly run and the hourly resume on the leader. After
each, payees whose payout was paid are told (once each), and a scheduled run is reported to the admins.

An admin's run goes on in the background (`start`): the tap only records it (refused while another run is
going, on any replica: services.payouts.PayoutService.begin) and sends a progress message, which a task
edits as transfers complete (at most every `PROGRESS_EVERY` seconds, so the edits stay well inside the
outgoing gate's budget) and finally into the run's report. A process that dies mid-run leaves its transfers
open for the hourly resume on the leader, which finishes them and edits the run's message into its report
(and its lease lapses, so the next tap may start a run)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram.types import InlineKeyboardMarkup

from bot.tasks import spawn
from db.models_payouts import PayoutRun
from presentation import payouts as words
from processing.notify import Notifier
from services.payouts import PayoutService, RunReport

log = logging.getLogger(__name__)

#: Seconds between two edits of a run's progress message (the final report is always shown).
PROGRESS_EVERY = 2.0


@dataclass(frozen=True, slots=True)
class Started:
    """What an admin's tap did: `run_id` started in the background (its `task`), or `going`: the run
    already going, nothing started."""

    run_id: int = 0
    going: PayoutRun | None = None
    task: asyncio.Task | None = None


#: Called with the finished run's report (the handler's audit record and its final keyboard).
Finished = Callable[[RunReport], Awaitable[InlineKeyboardMarkup | None]]


class PayoutJob:
    def __init__(self, payouts: PayoutService, notifier: Notifier, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.payouts, self.notifier, self.monotonic = payouts, notifier, monotonic
        self.background: asyncio.Task | None = None  # the last run started here by a tap (tests await it)

    async def run(self, started_by: int | None = None) -> RunReport:
        """One run (an admin's, or None: the schedule's), then the payees told."""
        report = await self.payouts.run(started_by)
        await self.tell_payees()
        return report

    async def start(self, admin_id: int, chat_id: int, finished: Finished | None = None) -> Started:
        """An admin's run, in the background: its progress message is sent now and edited as it goes."""
        run_id, going = await self.payouts.begin(admin_id, chat_id)
        if going is not None:
            return Started(going=going)
        message = await self.notifier.send(chat_id, lambda: words.progress(run_id, 0, None))
        if message is not None:
            await self.payouts.set_message(run_id, message.message_id)
        message_id = message.message_id if message is not None else None
        self.background = spawn(self._background(run_id, admin_id, chat_id, message_id, finished),
                                name=f"payout_run:{run_id}")
        return Started(run_id=run_id, task=self.background)

    async def _background(self, run_id: int, admin_id: int, chat_id: int, message_id: int | None,
                          finished: Finished | None) -> RunReport:
        last = [self.monotonic()]

        async def progress(report: RunReport, total: int) -> None:
            done = len(report.paid) + len(report.failed) + len(report.waiting)
            if message_id is None or (done < total and self.monotonic() - last[0] < PROGRESS_EVERY):
                return
            last[0] = self.monotonic()
            try:
                await self.notifier.edit(chat_id, message_id,
                                         lambda: words.progress(run_id, done, total, len(report.paid)))
            except Exception:  # a progress edit never stops the run
                log.warning("payout run %s: progress message not edited", run_id, exc_info=True)

        report = await self.payouts.run(admin_id, run_id=run_id, progress=progress)
        markup = await finished(report) if finished is not None else None
        if message_id is None or not await self.notifier.edit(chat_id, message_id, lambda: words.report(report),
                                                              (lambda: markup) if markup else None):
            await self.notifier.send(chat_id, lambda: words.report(report), (lambda: markup) if markup else None)
        await self.tell_payees()
        return report

    async def monthly(self) -> None:
        report = await self.run(None)
        await self.notifier.alert_admins(lambda: words.report(report))

    async def resume(self) -> None:
        """Finish transfers a failed or dead run left open, show a dead admin's run's report in its message
        (its progress stopped when its process died), and tell the payees."""
        await self.payouts.resume()
        for run in await self.payouts.abandoned():
            report = await self.payouts.close(run.id)
            if report is None or run.chat_id is None:
                continue
            render = lambda r=report: words.report(r)  # noqa: E731
            if run.message_id is None or not await self.notifier.edit(run.chat_id, run.message_id, render):
                await self.notifier.send(run.chat_id, render)
        await self.tell_payees()

    async def tell_payees(self) -> None:
        for item in await self.payouts.to_notify():
            if item.user_id is not None:
                await self.notifier.send(item.user_id, lambda i=item: words.payee_notice(i), skip_blocked=True)
