"""Admin broadcasts on the signal delivery queue: audiences, queuing, cancelling and progress.

Audiences: `all` (everyone who has not blocked the bot), `paying` (paid time covering now),
`plan-<code>` (paid time on that plan now), `lapsed` (had paid time, none now). Any of them can leave out
given users (the admins, who need not get their own broadcast).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, case, func, select, update

from db.base import utcnow
from db.engine import Database
from db.models import User
from db.models_signals import Broadcast, Outbox
from db.models_subscriptions import Subscription
from services import outbox
from services.plans import PLANS


def audiences() -> list[str]:
    return ["all", "paying", *(f"plan-{code}" for code, plan in PLANS.items() if plan.is_paid), "lapsed"]


@dataclass(frozen=True, slots=True)
class Progress:
    broadcast: Broadcast
    total: int
    sent: int
    blocked: int
    failed: int
    waiting: int
    cancelled: int

    @property
    def finished(self) -> bool:
        return self.waiting == 0

    def eta(self, rate: float) -> timedelta:
        """Time left at the outgoing gate's `rate` (TELEGRAM_RATE_LIMIT, one request per waiting recipient)."""
        return sending_time(self.waiting, rate)


def sending_time(recipients: int, rate: float) -> timedelta:
    """How long `recipients` messages take at `rate` requests per second (the gate's global spacing)."""
    return timedelta(seconds=math.ceil(recipients / rate))


class BroadcastService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.clock = database, clock

    def _audience(self, audience: str, exclude: Collection[int] = ()) -> Select:
        """The ids of the audience's users who have not blocked the bot, without `exclude`."""
        if audience not in audiences():
            raise ValueError(f"unknown audience {audience!r}")
        active = select(Subscription.user_id).where(Subscription.ends_at > self.clock())
        query = select(User.id).where(User.is_blocked.is_(False))
        if exclude:
            query = query.where(User.id.not_in(list(exclude)))
        if audience == "paying":
            return query.where(User.id.in_(active))
        if audience.startswith("plan-"):
            return query.where(User.id.in_(active.where(Subscription.plan == audience.removeprefix("plan-"))))
        if audience == "lapsed":
            return query.where(User.id.in_(select(Subscription.user_id)), User.id.not_in(active))
        return query

    async def recipients(self, audience: str, exclude: Collection[int] = ()) -> list[int]:
        async with self.db.session() as session:
            return list(await session.scalars(self._audience(audience, exclude).order_by(User.id)))

    async def count(self, audience: str, exclude: Collection[int] = ()) -> int:
        async with self.db.session() as session:
            return await session.scalar(select(func.count()).select_from(
                self._audience(audience, exclude).subquery()))

    async def create(self, admin_id: int, from_chat_id: int, message_id: int, audience: str,
                     exclude: Collection[int] = ()) -> Broadcast:
        """Queue the message for every recipient of the audience but `exclude`, in one transaction."""
        users = await self.recipients(audience, exclude)
        now = self.clock()
        async with self.db.transaction() as session:
            broadcast = Broadcast(admin_id=admin_id, from_chat_id=from_chat_id, message_id=message_id,
                                  audience=audience, status="sending", total=len(users), created_at=now)
            session.add(broadcast)
            await session.flush()
            await outbox.enqueue(session, [outbox.row("broadcast", broadcast.id, uid, uid, due=now, now=now)
                                           for uid in users])
        return broadcast

    async def set_progress_message(self, broadcast_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id)
                                  .values(progress_chat_id=chat_id, progress_message_id=message_id))

    async def cancel(self, broadcast_id: int) -> bool:
        """Stop a broadcast: rows not yet sent are never sent (copies already on their way are counted when they
        come back: the broadcast stays open until its progress message shows them). False if it had already
        finished."""
        async with self.db.transaction() as session:
            result = await session.execute(update(Broadcast).where(
                Broadcast.id == broadcast_id, Broadcast.status == "sending").values(status="cancelled"))
            if result.rowcount != 1:
                return False
            await session.execute(update(Outbox).where(
                Outbox.kind == "broadcast", Outbox.item_id == broadcast_id, Outbox.status == "queued").values(
                status="cancelled"))
        return True

    async def progress(self, broadcast_id: int) -> Progress | None:
        async with self.db.session() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            if broadcast is None:
                return None
            counts = dict((await session.execute(
                select(Outbox.status, func.count()).where(Outbox.kind == "broadcast", Outbox.item_id == broadcast_id)
                .group_by(Outbox.status))).all())
        return Progress(broadcast, broadcast.total, counts.get("sent", 0),
                        counts.get("blocked", 0) + counts.get("skipped", 0), counts.get("failed", 0),
                        counts.get("queued", 0) + counts.get("sending", 0), counts.get("cancelled", 0))

    async def running(self) -> list[int]:
        """Broadcasts not closed yet: sending, or done or cancelled but their progress message not final."""
        async with self.db.session() as session:
            return list(await session.scalars(select(Broadcast.id).where(Broadcast.finished_at.is_(None))))

    async def finish(self, broadcast_id: int) -> bool:
        """Close a broadcast whose progress message shows its final state (nothing is in flight): a sending one
        is done, a cancelled one stays cancelled. False if it was closed already."""
        async with self.db.transaction() as session:
            result = await session.execute(update(Broadcast).where(
                Broadcast.id == broadcast_id, Broadcast.finished_at.is_(None)).values(
                status=case((Broadcast.status == "sending", "done"), else_=Broadcast.status),
                finished_at=self.clock()))
            return result.rowcount == 1
