"""Which reminders and expiry steps are due, and claiming each exactly once.

A user's "end" is when all their paid time runs out (the latest `ends_at` over every plan): that is
when they drop to Free and lose the private channel. Reminders go out 3 days and 1 day before it;
a notice is keyed by (user, end, kind), so running the job twice sends nothing twice, and a renewal
(which moves the end) gets fresh reminders for the new end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from db.base import utcnow
from db.engine import Database
from db.models_plans import PlanNotice
from db.models_subscriptions import Subscription
from services.leases import LEASE
from services.plans import PLANS

REMIND_3D, REMIND_1D, EXPIRED = "remind_3d", "remind_1d", "expired"
#: Ends further back than this are not acted on (e.g. after a very long outage, or on first deploy).
LOOKBACK = timedelta(days=30)
#: A claim not renewed within this (the process died mid-send) may be taken again; the sender renews it every
#: third of it while it works (processing/subscriptions.py, services/leases.py).
CLAIM_LEASE = LEASE


@dataclass(frozen=True, slots=True)
class Due:
    user_id: int
    ends_at: datetime
    plan_code: str  # the plan whose time ends last (the best one if several end together)
    kind: str


def kind_for(ends_at: datetime, now: datetime) -> str | None:
    if ends_at <= now:
        return EXPIRED
    if ends_at - now <= timedelta(days=1):
        return REMIND_1D
    if ends_at - now <= timedelta(days=3):
        return REMIND_3D
    return None


class PlanNotices:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.clock = database, clock

    async def due(self, limit: int = 1000) -> list[Due]:
        now = self.clock()
        async with self.db.session() as session:
            rows = (await session.execute(
                select(Subscription.user_id, Subscription.plan, func.max(Subscription.ends_at))
                .where(Subscription.ends_at > now - LOOKBACK)
                .group_by(Subscription.user_id, Subscription.plan))).all()
            ends: dict[int, tuple[datetime, str]] = {}
            for user_id, plan_code, ends_at in rows:
                rank = PLANS[plan_code].rank if plan_code in PLANS else -1
                best = ends.get(user_id)
                if best is None or (ends_at, rank) > (best[0], PLANS[best[1]].rank if best[1] in PLANS else -1):
                    ends[user_id] = (ends_at, plan_code)
            candidates = [Due(uid, end, code, kind) for uid, (end, code) in ends.items()
                          if (kind := kind_for(end, now)) is not None]
            if not candidates:
                return []
            done = set((await session.execute(
                select(PlanNotice.user_id, PlanNotice.ends_at, PlanNotice.kind)
                .where(PlanNotice.user_id.in_([c.user_id for c in candidates]),
                       (PlanNotice.status != "claimed") | (PlanNotice.claimed_at > now - CLAIM_LEASE)))).all())
        due = [c for c in candidates if (c.user_id, c.ends_at, c.kind) not in done]
        return sorted(due, key=lambda d: d.ends_at)[:limit]

    async def claim(self, item: Due) -> datetime | None:
        """Take this notice for sending: the claim's time (renewed by `renew`); None when another run has it
        (or had it)."""
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                stale = await session.execute(
                    update(PlanNotice).where(
                        PlanNotice.user_id == item.user_id, PlanNotice.ends_at == item.ends_at,
                        PlanNotice.kind == item.kind, PlanNotice.status == "claimed",
                        PlanNotice.claimed_at <= now - CLAIM_LEASE)
                    .values(claimed_at=now))
                if stale.rowcount == 1:
                    return now
                session.add(PlanNotice(user_id=item.user_id, ends_at=item.ends_at, kind=item.kind,
                                       status="claimed", claimed_at=now))
        except IntegrityError:
            return None
        return now

    async def renew(self, item: Due, held: datetime) -> datetime | None:
        """Extend a claim while it is still the one made at `held` (never one taken over); its new time."""
        now = self.clock()
        async with self.db.transaction() as session:
            renewed = await session.execute(
                update(PlanNotice).where(
                    PlanNotice.user_id == item.user_id, PlanNotice.ends_at == item.ends_at,
                    PlanNotice.kind == item.kind, PlanNotice.status == "claimed", PlanNotice.claimed_at == held)
                .values(claimed_at=now))
        return now if renewed.rowcount == 1 else None

    async def finish(self, item: Due, status: str = "sent") -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(PlanNotice).where(PlanNotice.user_id == item.user_id, PlanNotice.ends_at == item.ends_at,
                                         PlanNotice.kind == item.kind)
                .values(status=status, done_at=self.clock()))

    async def sent(self, user_id: int) -> list[PlanNotice]:
        async with self.db.session() as session:
            return list(await session.scalars(
                select(PlanNotice).where(PlanNotice.user_id == user_id).order_by(PlanNotice.id)))
