"""Whale follows and the alert queue (filled by ingest; processing/whale_alerts sends it).

* **Alerts**: a new trade of a followed wallet whose USD value is at least the follower's threshold
  queues one alert row per (follow, trade) in the ingest transaction. Trades older than
  `ALERT_MAX_AGE` when they arrive (backfills, CSV imports) do not alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, literal, select, update

from db.engine import Database
from db.models_whales import WhaleAlert, WhaleFollow, WhaleTrade, WhaleWallet

ALERT_MAX_AGE = timedelta(hours=1)
THRESHOLDS_USD = (10_000, 50_000, 100_000, 500_000)
CHUNK = 500


class FollowProblem(StrEnum):
    """Why a follow was refused (the values are what was stored and compared before)."""

    UNKNOWN_WALLET = "unknown_wallet"
    NOT_INCLUDED = "not_included"  # the plan includes no follows
    LIMIT = "limit"  # the plan's maximum is reached


@dataclass(frozen=True, slots=True)
class FollowResult:
    ok: bool
    problem: FollowProblem | None = None
    count: int = 0
    limit: int = 0


class WhaleFollows:
    """Follows and the alert queue; expects `db` and `clock` from the service."""

    db: Database
    clock: Callable[[], datetime]

    async def _queue_alerts(self, session, trade_ids: list[int], now: datetime) -> int:
        queued = 0
        for start in range(0, len(trade_ids), CHUNK):
            part = trade_ids[start:start + CHUNK]
            source = (select(WhaleFollow.id, WhaleFollow.user_id, WhaleTrade.id, literal("pending"),
                             literal(now, type_=WhaleAlert.queued_at.type))
                      .join(WhaleTrade, WhaleTrade.wallet_id == WhaleFollow.wallet_id)
                      .where(WhaleTrade.id.in_(part), WhaleTrade.usd_cents >= WhaleFollow.threshold_cents))
            stmt = (self.db.insert(WhaleAlert)
                    .from_select(["follow_id", "user_id", "trade_id", "status", "queued_at"], source)
                    .on_conflict_do_nothing(index_elements=["follow_id", "trade_id"]))
            result = await session.execute(stmt)
            queued += max(result.rowcount or 0, 0)
        return queued


    # Follows --------------------------------------------------------------------------------------

    async def follow_of(self, user_id: int, wallet_id: int) -> WhaleFollow | None:
        async with self.db.session() as session:
            return await session.scalar(select(WhaleFollow).where(
                WhaleFollow.user_id == user_id, WhaleFollow.wallet_id == wallet_id))

    async def follows(self, user_id: int) -> list[tuple[WhaleFollow, WhaleWallet]]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(WhaleFollow, WhaleWallet).join(WhaleWallet, WhaleWallet.id == WhaleFollow.wallet_id)
                .where(WhaleFollow.user_id == user_id).order_by(WhaleFollow.id))
            return [(f, w) for f, w in rows.all()]

    async def follow(self, user_id: int, wallet_id: int, threshold_cents: int, *, limit: int) -> FollowResult:
        """Follow (or change the threshold of) a wallet, within the plan's maximum."""
        if threshold_cents <= 0:
            raise ValueError("threshold must be positive")
        async with self.db.transaction() as session:
            if await session.get(WhaleWallet, wallet_id) is None:
                return FollowResult(False, FollowProblem.UNKNOWN_WALLET)
            count = await session.scalar(select(func.count()).where(WhaleFollow.user_id == user_id)) or 0
            changed = await session.execute(update(WhaleFollow).where(
                WhaleFollow.user_id == user_id, WhaleFollow.wallet_id == wallet_id).values(
                threshold_cents=threshold_cents))
            if changed.rowcount:
                return FollowResult(True, count=count, limit=limit)
            if limit <= 0:
                return FollowResult(False, FollowProblem.NOT_INCLUDED, count, limit)
            if count >= limit:
                return FollowResult(False, FollowProblem.LIMIT, count, limit)
            session.add(WhaleFollow(user_id=user_id, wallet_id=wallet_id, threshold_cents=threshold_cents,
                                    created_at=self.clock()))
        return FollowResult(True, count=count + 1, limit=limit)

    async def unfollow(self, user_id: int, wallet_id: int) -> bool:
        async with self.db.transaction() as session:
            result = await session.execute(delete(WhaleFollow).where(
                WhaleFollow.user_id == user_id, WhaleFollow.wallet_id == wallet_id))
            return bool(result.rowcount)

    # Alert queue (the worker in processing/whale_alerts sends) ------------------------------------

    async def due_alert_users(self, now: datetime, window: timedelta) -> list[int]:
        """Users whose oldest pending alert has waited a full batching window (or whose claimed batch
        was abandoned by a dead worker)."""
        async with self.db.session() as session:
            pending = select(WhaleAlert.user_id).where(
                WhaleAlert.status == "pending").group_by(WhaleAlert.user_id).having(
                func.min(WhaleAlert.queued_at) <= now - window)
            stale = select(WhaleAlert.user_id).where(WhaleAlert.status == "sending",
                                                     WhaleAlert.lease_until < now).distinct()
            users = set(await session.scalars(pending)) | set(await session.scalars(stale))
        return sorted(users)

    async def claim_alerts(self, user_id: int, now: datetime, lease: timedelta
                           ) -> list[tuple[WhaleAlert, WhaleTrade, WhaleWallet]]:
        """Claim every pending (or abandoned) alert of the user with one conditional update."""
        async with self.db.transaction() as session:
            claimable = (WhaleAlert.status == "pending") | (
                (WhaleAlert.status == "sending") & (WhaleAlert.lease_until < now))
            ids = list(await session.scalars(select(WhaleAlert.id).where(WhaleAlert.user_id == user_id, claimable)))
            if not ids:
                return []
            until = now + lease
            await session.execute(update(WhaleAlert).where(WhaleAlert.id.in_(ids), claimable)
                                  .values(status="sending", lease_until=until))
            # Only what this claim took (a concurrent worker may have taken some rows first).
            rows = await session.execute(
                select(WhaleAlert, WhaleTrade, WhaleWallet)
                .join(WhaleTrade, WhaleTrade.id == WhaleAlert.trade_id)
                .join(WhaleWallet, WhaleWallet.id == WhaleTrade.wallet_id)
                .where(WhaleAlert.id.in_(ids), WhaleAlert.status == "sending", WhaleAlert.lease_until == until)
                .order_by(WhaleTrade.ts, WhaleTrade.id))
            return [(a, t, w) for a, t, w in rows.all()]

    async def renew_alerts(self, ids: list[int], held: datetime, until: datetime) -> bool:
        """Extend the lease of a claimed batch while it is still ours (`sending` with the lease we last wrote);
        False once it was taken over or finished."""
        async with self.db.transaction() as session:
            renewed = await session.execute(update(WhaleAlert).where(
                WhaleAlert.id.in_(ids), WhaleAlert.status == "sending", WhaleAlert.lease_until == held)
                .values(lease_until=until))
        return renewed.rowcount > 0

    async def finish_alerts(self, ids: list[int], status: str, now: datetime) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(WhaleAlert).where(
                WhaleAlert.id.in_(ids), WhaleAlert.status == "sending").values(
                status=status, sent_at=now, lease_until=None))

