"""Renewal reminders for marketplace subscriptions: which are due, and claiming each exactly once.

A user's time with a provider ends when their last paid period with it ends (renewals stack). Reminders go
out 3 days and 1 day before that end, by the plans' rule (services.plan_notices.kind_for: a reminder whose
moment was missed is not sent late, except that the 1-day one still is). A reminder is keyed by (user,
provider, end, kind) in `provider_notices`: the row is the claim, so two runs, two replicas or a restart never
send one twice, and a renewal (which moves the end) gets fresh reminders for the new end. Only approved
providers' subscribers are reminded: a suspended provider's are refunded, and nobody can renew with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from db.base import utcnow
from db.engine import Database
from db.models_marketplace import Provider, ProviderNotice, ProviderSubscription
from services.plan_notices import CLAIM_LEASE, REMIND_1D, REMIND_3D, kind_for

REMINDERS = (REMIND_3D, REMIND_1D)


@dataclass(frozen=True, slots=True)
class DueReminder:
    user_id: int
    provider_id: int
    ends_at: datetime
    kind: str


class ProviderNotices:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.clock = database, clock

    async def due(self, limit: int = 1000) -> list[DueReminder]:
        """Reminders due now and not claimed (or whose claim's process died), soonest end first."""
        now = self.clock()
        async with self.db.session() as session:
            rows = (await session.execute(
                select(ProviderSubscription.user_id, ProviderSubscription.provider_id,
                       func.max(ProviderSubscription.ends_at))
                .join(Provider, Provider.id == ProviderSubscription.provider_id)
                .where(Provider.status == "approved")
                .group_by(ProviderSubscription.user_id, ProviderSubscription.provider_id)
                .having(func.max(ProviderSubscription.ends_at) > now))).all()
            candidates = [DueReminder(user_id, provider_id, end, kind) for user_id, provider_id, end in rows
                          if (kind := kind_for(end, now)) in REMINDERS]
            if not candidates:
                return []
            done = set((await session.execute(
                select(ProviderNotice.user_id, ProviderNotice.provider_id, ProviderNotice.ends_at,
                       ProviderNotice.kind)
                .where(ProviderNotice.user_id.in_({c.user_id for c in candidates}),
                       (ProviderNotice.status != "claimed") | (ProviderNotice.claimed_at > now - CLAIM_LEASE))
            )).all())
        due = [c for c in candidates if (c.user_id, c.provider_id, c.ends_at, c.kind) not in done]
        return sorted(due, key=lambda d: d.ends_at)[:limit]

    def _this(self, item: DueReminder):
        return (ProviderNotice.user_id == item.user_id, ProviderNotice.provider_id == item.provider_id,
                ProviderNotice.ends_at == item.ends_at, ProviderNotice.kind == item.kind)

    async def claim(self, item: DueReminder) -> datetime | None:
        """Take this reminder for sending: the claim's time (renewed by `renew`); None when another run has it
        (or had it)."""
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                stale = await session.execute(update(ProviderNotice).where(
                    *self._this(item), ProviderNotice.status == "claimed",
                    ProviderNotice.claimed_at <= now - CLAIM_LEASE).values(claimed_at=now))
                if stale.rowcount == 1:
                    return now
                session.add(ProviderNotice(user_id=item.user_id, provider_id=item.provider_id, ends_at=item.ends_at,
                                           kind=item.kind, status="claimed", claimed_at=now))
        except IntegrityError:
            return None
        return now

    async def renew(self, item: DueReminder, held: datetime) -> datetime | None:
        """Extend a claim while it is still the one made at `held` (never one taken over); its new time."""
        now = self.clock()
        async with self.db.transaction() as session:
            renewed = await session.execute(update(ProviderNotice).where(
                *self._this(item), ProviderNotice.status == "claimed", ProviderNotice.claimed_at == held)
                .values(claimed_at=now))
        return now if renewed.rowcount == 1 else None

    async def finish(self, item: DueReminder, status: str = "sent") -> None:
        async with self.db.transaction() as session:
            await session.execute(update(ProviderNotice).where(*self._this(item))
                                  .values(status=status, done_at=self.clock()))

    async def sent(self, user_id: int) -> list[ProviderNotice]:
        async with self.db.session() as session:
            return list(await session.scalars(
                select(ProviderNotice).where(ProviderNotice.user_id == user_id).order_by(ProviderNotice.id)))
