"""Fulfilment: deliver what paid orders bought, from a durable queue.

A job row is written in the same transaction that marks an order paid. The worker claims due
jobs with a lease (a conditional UPDATE), runs the product's `Fulfiller`, sends the delivery
message, and marks the order fulfilled. While it works, a heartbeat renews the lease (services/leases.py);
a crash leaves the job leased, and when the lease runs out (30 s without a renewal) the next worker, on any
replica, takes it again, so a restart resumes where the last process died. A job is never taken from a
worker that is still renewing it.
Fulfillers must be idempotent: a retried job may run `fulfil` again for the same order. A secret a
fulfiller keeps for re-delivery (services.vault) is wiped in the transaction that records the
delivery or gives up on it. A refund that lands while a delivery runs is completed here: what the
delivery made is taken back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update

from db.base import utcnow
from db.engine import Database
from db.models import FulfilmentJob, Order
from services.leases import LEASE, heartbeat
from services.orders import FULFIL_ON, OrderService, Status, TransitionRefused
from services.products import Delivery, Fulfiller, FulfilmentFailed
from services.vault import SecretVault

log = logging.getLogger(__name__)


class Deliverer(Protocol):
    async def deliver(self, order: Order, delivery: Delivery) -> None: ...

    async def fulfilment_failed(self, order: Order, error: str) -> None: ...


class FulfilmentWorker:
    def __init__(
        self, database: Database, orders: OrderService, fulfillers: dict[str, Fulfiller], deliverer: Deliverer,
        *, clock: Callable[[], datetime] = utcnow, max_attempts: int = 6, base_delay: float = 2.0,
        max_delay: float = 300.0, lease: timedelta = LEASE, idle_wait: float = 1.0,
    ) -> None:
        self.db, self.orders, self.fulfillers, self.deliverer = database, orders, fulfillers, deliverer
        self.clock = clock
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.lease, self.idle_wait = lease, idle_wait
        self._wake = asyncio.Event()
        self._stopping = False
        self._held: dict[int, int] = {}  # job id -> the attempt this worker claimed (fences its writes)

    async def recover(self) -> int:
        """At start-up: jobs a dead process was working on go back to the queue at once instead of
        waiting out their lease, and queued ones are retried now rather than after their backoff (a
        restart is when conditions change). Only for a single process (no REDIS_URL: the app calls it then);
        replicas take over only expired leases. Fulfillers are idempotent anyway."""
        now = self.clock()
        async with self.db.transaction() as session:
            result = await session.execute(update(FulfilmentJob)
                                           .where(FulfilmentJob.status.in_(("running", "queued")))
                                           .values(status="queued", lease_until=None, next_attempt_at=now,
                                                   updated_at=now))
        if result.rowcount:
            log.warning("resuming %s unfinished fulfilment jobs", result.rowcount)
        return result.rowcount

    def wake(self) -> None:
        """Something was queued: look now rather than at the next idle tick."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                done = await self.run_once()
            except Exception:
                log.exception("fulfilment sweep failed")
                done = 0
            if not done and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_wait)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run_once(self, limit: int = 20) -> int:
        """Claim and process due jobs; returns how many were processed."""
        processed = 0
        for job_id, order_id in await self._due(limit):
            attempt = await self._claim(job_id)
            if attempt is not None:
                renew = functools.partial(self._renew, job_id, attempt)
                self._held[job_id] = attempt
                try:
                    async with heartbeat(renew, self.lease, what=f"fulfilment job {job_id}"):
                        await self._process(job_id, order_id)
                finally:
                    self._held.pop(job_id, None)
                processed += 1
        return processed

    @staticmethod
    def _claimable(now: datetime):
        """Queued and due, or running under a lease that ran out (its process died)."""
        return or_((FulfilmentJob.status == "queued") & (FulfilmentJob.next_attempt_at <= now),
                   (FulfilmentJob.status == "running") & (FulfilmentJob.lease_until < now))

    async def _due(self, limit: int) -> list[tuple[int, int]]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(FulfilmentJob.id, FulfilmentJob.order_id).where(self._claimable(self.clock()))
                .order_by(FulfilmentJob.next_attempt_at).limit(limit))
            return [tuple(r) for r in rows]

    async def _claim(self, job_id: int) -> int | None:
        """Take the job; returns its attempt number (which fences this claim: a takeover bumps it), or None."""
        now = self.clock()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(FulfilmentJob).where(FulfilmentJob.id == job_id, self._claimable(now))
                .values(status="running", attempts=FulfilmentJob.attempts + 1, lease_until=now + self.lease,
                        updated_at=now))
            if result.rowcount != 1:
                return None
            return await session.scalar(select(FulfilmentJob.attempts).where(FulfilmentJob.id == job_id))

    async def _renew(self, job_id: int, attempt: int) -> bool:
        """Extend the lease while the job is still this claim's (running, same attempt)."""
        now = self.clock()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(FulfilmentJob).where(FulfilmentJob.id == job_id, FulfilmentJob.status == "running",
                                            FulfilmentJob.attempts == attempt)
                .values(lease_until=now + self.lease))
            return result.rowcount == 1

    async def _process(self, job_id: int, order_id: int) -> None:
        order = await self.orders.get(order_id)
        if order is None or Status(order.status) not in FULFIL_ON:
            await self._finish(job_id, "done", note=f"order is {order.status if order else 'gone'}")
            return
        fulfiller = self.fulfillers.get(order.product)
        try:
            if fulfiller is None:
                raise FulfilmentFailed(f"no fulfiller for product {order.product!r}")
            delivery = await fulfiller.fulfil(order)
            await self.deliverer.deliver(order, delivery)
        except Exception as exc:
            await self._failed(job_id, order, exc)
            return
        try:
            async with self.db.transaction() as session:
                await self.orders.transition_in(session, order_id, Status.FULFILLED, cause="fulfilment",
                                              detail=delivery.record, extra={"delivery": delivery.record})
                await SecretVault.wipe_in(session, order_id)  # delivered and recorded: the secret goes
                await self._set_job(session, job_id, "done")
        except TransitionRefused as exc:  # refunded meanwhile: keep the job from looping
            log.warning("order %s fulfilled but not marked: %s", order_id, exc)
            await self._finish(job_id, "done", note=str(exc), wipe=order_id)
            await self._take_back_if_refunded(order_id, fulfiller)

    async def _take_back_if_refunded(self, order_id: int, fulfiller: Fulfiller) -> None:
        """A refund that landed while this delivery ran found nothing to take back yet: do it now."""
        order = await self.orders.get(order_id)
        if order is None or order.status != Status.REFUNDED:
            return
        try:
            await fulfiller.revoke(order)
        except Exception:
            log.exception("order %s was refunded during delivery and could not be taken back", order_id)

    async def _failed(self, job_id: int, order: Order, exc: Exception) -> None:
        async with self.db.session() as session:
            status, attempts = (await session.execute(select(FulfilmentJob.status, FulfilmentJob.attempts)
                                                      .where(FulfilmentJob.id == job_id))).one()
        if job_id in self._held and (status, attempts) != ("running", self._held[job_id]):
            log.warning("fulfilment of order %s failed after its job was taken over: %s", order.id, exc)
            return  # the worker that holds it now decides
        final = isinstance(exc, FulfilmentFailed) or attempts >= self.max_attempts
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("fulfilment of order %s failed (attempt %s%s): %s", order.id, attempts,
                    ", giving up" if final else "", error)
        if not final:
            delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
            await self._finish(job_id, "queued", note=error, next_at=self.clock() + timedelta(seconds=delay))
            return
        try:
            async with self.db.transaction() as session:
                await self.orders.transition_in(session, order.id, Status.FULFIL_FAILED, cause="fulfilment",
                                              detail={"error": error, "attempts": attempts})
                await SecretVault.wipe_in(session, order.id)
                await self._set_job(session, job_id, "failed", note=error)
        except TransitionRefused:
            await self._finish(job_id, "failed", note=error, wipe=order.id)
            return
        await self.deliverer.fulfilment_failed(order, error)

    async def _finish(self, job_id: int, status: str, *, note: str | None = None,
                      next_at: datetime | None = None, wipe: int | None = None) -> None:
        async with self.db.transaction() as session:
            if wipe is not None:
                await SecretVault.wipe_in(session, wipe)
            await self._set_job(session, job_id, status, note=note, next_at=next_at)

    async def _set_job(self, session, job_id: int, status: str, *, note: str | None = None,
                       next_at: datetime | None = None) -> None:
        values: dict = {"status": status, "lease_until": None, "updated_at": self.clock()}
        if note is not None:
            values["last_error"] = note
        if next_at is not None:
            values["next_attempt_at"] = next_at
        mine = (FulfilmentJob.status == "running", FulfilmentJob.attempts == self._held[job_id]) \
            if job_id in self._held else ()  # a job taken over after a lapsed lease is left to its new holder
        await session.execute(update(FulfilmentJob).where(FulfilmentJob.id == job_id, *mine).values(**values))
