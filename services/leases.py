"""Leases kept alive by a heartbeat while their work runs.

Work taken from a shared queue (a fulfilment job, outbox rows, webhook deliveries, whale alerts, refunds) is
claimed with a short lease (`LEASE`, 30 s). While the work runs, `heartbeat()` renews it every third of the
lease, so a slow job keeps what it holds however long it takes, while the work of a replica that died (kill -9:
no more renewals) is taken over by another one soon after its lease ran out (within `LEASE` plus a poll).

Every renewal is a conditional UPDATE that only succeeds while the row is still ours (its claim token, or the
lease value we wrote, and its in-flight status), so a renewal never takes back a row another worker took over.
`renew()` answers whether it still held anything: False (lost, or nothing left to hold) stops the heartbeat
with a warning. A renewal that raises (the database briefly unreachable) is logged and tried again at the next
beat: while the row still carries our mark, renewing late is harmless, and once it is taken over the renewal
finds nothing and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

log = logging.getLogger(__name__)

#: How long claimed work stays ours without a renewal (a dead replica's work is taken over after this).
LEASE = timedelta(seconds=30)

Renew = Callable[[], Awaitable[bool]]


def renew_every(lease: timedelta) -> float:
    """Seconds between renewals: a third of the lease, so two renewals can fail before it runs out."""
    return lease.total_seconds() / 3


class Heartbeat:
    """Calls `renew` every `every` seconds until stopped or until it answers False."""

    def __init__(self, renew: Renew, every: float, *, what: str) -> None:
        self.renew, self.every, self.what = renew, every, what
        self.lost = False  # True once a renewal found nothing of ours (taken over, or finished)
        self.renewals = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat(), name=f"heartbeat:{self.what}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                held = await self.renew()
            except Exception as exc:  # transient (database unreachable): try again at the next beat
                log.warning("renewing the lease of %s failed (tried again in %g s): %r", self.what, self.every, exc)
                continue
            if not held:
                self.lost = True
                log.warning("the lease of %s is no longer ours; renewals stop", self.what)
                return
            self.renewals += 1


@contextlib.asynccontextmanager
async def heartbeat(renew: Renew, lease: timedelta, *, what: str) -> AsyncIterator[Heartbeat]:
    """Renew a lease every `lease / 3` while the block runs; the renewals stop when it exits (any way)."""
    beat = Heartbeat(renew, renew_every(lease), what=what)
    beat.start()
    try:
        yield beat
    finally:
        await beat.stop()
