"""An update delivered twice is handled once: ``first_time(update_id)`` is True for exactly one caller,
across every replica.

Telegram retries a webhook delivery that got no answer (a replica died mid-request, a timeout), so the same
``update_id`` can arrive twice, at two replicas. With Redis: ``SET <prefix><id> 1 NX EX 86400``. Without:
a row in ``update_dedup`` inserted with ``ON CONFLICT DO NOTHING`` (the primary key decides; ``prune()``
drops rows older than a day: schedule it, e.g. hourly). Either way the check and the mark are one atomic
step, so two racing deliveries cannot both be first. Telegram keeps an undelivered update for at most
24 hours, hence the day. Errors (Redis or the database unreachable) propagate: answer the delivery with an
error so that Telegram retries it, rather than handling it unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import delete

from db.base import utcnow
from db.engine import Database
from db.models_update_dedup import SeenUpdate

#: How long an update id is remembered.
REMEMBER = timedelta(days=1)


class UpdateDedup:
    """Remembers update ids in Redis when given a client, else in the database."""

    def __init__(self, database: Database, redis: Redis | None = None, *, prefix: str = "tg:update:",
                 now: Callable[[], datetime] = utcnow) -> None:
        self._db = database
        self._redis = redis
        self._prefix = prefix
        self._now = now

    async def first_time(self, update_id: int) -> bool:
        """Whether this is the first delivery of ``update_id`` (marking it seen)."""
        if self._redis is not None:
            return bool(await self._redis.set(f"{self._prefix}{update_id}", 1, nx=True,
                                              ex=int(REMEMBER.total_seconds())))
        statement = (self._db.insert(SeenUpdate).values(update_id=update_id, seen_at=self._now())
                     .on_conflict_do_nothing(index_elements=[SeenUpdate.update_id]))
        async with self._db.transaction() as session:
            return (await session.execute(statement)).rowcount == 1

    async def prune(self) -> int:
        """Forget the database's ids older than a day (Redis expires its own); returns how many."""
        if self._redis is not None:
            return 0
        async with self._db.transaction() as session:
            result = await session.execute(delete(SeenUpdate).where(SeenUpdate.seen_at < self._now() - REMEMBER))
            return result.rowcount
