"""Developer-API limits and metering: the plan's calls per minute and per UTC day, counted with the `limits`
library (in this process's memory, or in Redis when `REDIS_URL` is set, so every replica counts together),
calls over the day's quota charged to the caller's API credit in the ledger, and calls per day recorded.

* Per minute: a sliding-window counter (no burst of twice the limit across a minute's edge).
* Per day: a counter in the same storage keyed by the user and the UTC date (a fixed window that resets at
  00:00 UTC, whenever the first call came, and that survives a plan change mid-day); its value is "calls
  today", and calls beyond the plan's quota are charged.
* Limits count per user: all of a user's keys together.
* A charge is one ledger movement (kind "api_call", ref the request id) and one `ApiCharge` row, in one
  transaction: a call is charged once, and never beyond the credit left, in any number of processes.
* Calls per day (`ApiUsageDay`) are a statistic, added up in memory and written in batches.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import func, select

from db.base import utcnow
from db.engine import Database
from db.models_api import ApiCharge, ApiUsageDay
from db.models_ledger import LedgerAccount, LedgerEntry, LedgerMovement
from services.ledger import API_REVENUE, Cause, LedgerService, api_credit_account, to_usd

log = logging.getLogger(__name__)

DAY_KEY_SECONDS = 2 * 86_400  # a day's counter outlives its day (its key names the date)
FLUSH_SECONDS = 10


@dataclass(frozen=True, slots=True)
class PlanLimits:
    per_minute: int | None
    per_day: int | None


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One UTC day of a user's API use."""

    day: date
    calls: int
    charged_calls: int
    calls_usd: Decimal  # credit spent on calls over the quota
    datasets_usd: Decimal  # credit spent on datasets


@dataclass(frozen=True, slots=True)
class Window:
    """One limit's state for the rate-limit headers: `remaining` calls and `reset` seconds."""

    name: str  # "minute" / "day"
    quota: int
    seconds: int  # the window's length
    remaining: int
    reset: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What the limits say about one call: `allowed` within the minute; `charge` the USD to take from credit
    (None: within the day's quota); `retry_after` seconds when refused."""

    allowed: bool
    charge: Decimal | None
    windows: tuple[Window, ...]
    retry_after: int = 0
    today: int = 0


def storage_for(redis_url: str | None) -> Storage:
    """`limits`' storage: memory with one process; Redis (redis-py) when `REDIS_URL` is set."""
    if not redis_url:
        return MemoryStorage()
    scheme, rest = redis_url.split("://", 1)
    return RedisStorage(f"async+{scheme}://{rest}", implementation="redispy", key_prefix="api-limits")


def _log_failure(done: asyncio.Future) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("could not write API calls per day (kept for the next write): %s", done.exception())


def seconds_to_utc_midnight(now: datetime) -> int:
    tomorrow = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, math.ceil((tomorrow - now).total_seconds()))


class ApiMeter:
    def __init__(self, database: Database, ledger: LedgerService, *, limits: Mapping[str, Mapping[str, int | None]],
                 prices: Mapping[str, Decimal], storage: Storage | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.ledger, self.clock = database, ledger, clock
        self.limits = {plan: PlanLimits(pair.get("per_minute"), pair.get("per_day")) for plan, pair in limits.items()}
        self.prices = dict(prices)
        self.storage = storage or MemoryStorage()
        self._minute = SlidingWindowCounterRateLimiter(self.storage)
        self._pending: Counter[tuple[int, date, str]] = Counter()
        self._flushed_at = time.monotonic()
        self._flush_lock = asyncio.Lock()
        self._flushing: asyncio.Future | None = None  # the background write in progress (kept referenced)

    def plan_limits(self, plan: str) -> PlanLimits:
        return self.limits.get(plan, PlanLimits(None, None))

    # counting ------------------------------------------------------------------------------------

    def _day_key(self, user_id: int) -> str:
        return f"day/{user_id}/{self.clock().astimezone(UTC).date().isoformat()}"

    async def today(self, user_id: int) -> int:
        """Calls counted today (UTC) for this user."""
        return int(await self.storage.get(self._day_key(user_id)) or 0)

    async def windows(self, user_id: int, plan: str) -> tuple[Window, ...]:
        """The caller's limits as they stand (for answers that are not counted)."""
        limits = self.plan_limits(plan)
        return await self._windows(user_id, limits, await self.today(user_id))

    async def _windows(self, user_id: int, limits: PlanLimits, today: int) -> tuple[Window, ...]:
        windows = []
        if limits.per_minute is not None:
            item = RateLimitItemPerMinute(limits.per_minute)
            stats = await self._minute.get_window_stats(item, str(user_id))
            reset = max(0, math.ceil(stats.reset_time - time.time())) if stats.remaining < limits.per_minute else 0
            windows.append(Window("minute", limits.per_minute, 60, stats.remaining, reset))
        if limits.per_day is not None:
            windows.append(Window("day", limits.per_day, 86_400, max(0, limits.per_day - today),
                                  seconds_to_utc_midnight(self.clock())))
        return tuple(windows)

    async def count(self, user_id: int, plan: str, group: str) -> Decision:
        """Count one call of `group` against the plan's limits: refused over the minute's limit; charged at
        the group's price once the day's quota is used."""
        limits = self.plan_limits(plan)
        if limits.per_minute is not None and not await self._minute.hit(
                RateLimitItemPerMinute(limits.per_minute), str(user_id)):
            windows = await self._windows(user_id, limits, await self.today(user_id))
            return Decision(False, None, windows, retry_after=max(1, windows[0].reset))
        today = int(await self.storage.incr(self._day_key(user_id), DAY_KEY_SECONDS))
        self._record(user_id, group)
        over = limits.per_day is not None and today > limits.per_day
        price = self.prices.get(group, Decimal(0))
        charge = price if over and price > 0 else None
        return Decision(True, charge, await self._windows(user_id, limits, today), today=today)

    # charging ------------------------------------------------------------------------------------

    async def charge(self, user_id: int, key_id: int, group: str, path: str, request_id: str,
                     amount: Decimal) -> bool:
        """Take `amount` of credit for one call; False: too little credit (nothing taken)."""
        now = self.clock()
        async with self.db.transaction() as session:
            if not await self.ledger.charge_in(session, user_id, amount, Cause("api_call", request_id)):
                return False
            session.add(ApiCharge(request_id=request_id, user_id=user_id, key_id=key_id, group=group,
                                  path=path[:200], day=now.astimezone(UTC).date(), created_at=now))
        return True

    # usage ---------------------------------------------------------------------------------------

    def _record(self, user_id: int, group: str) -> None:
        self._pending[(user_id, self.clock().astimezone(UTC).date(), group)] += 1

    def maybe_flush(self) -> None:
        """Every FLUSH_SECONDS, write the counted calls in the background (no request waits for it)."""
        if time.monotonic() - self._flushed_at >= FLUSH_SECONDS and not self._flush_lock.locked():
            self._flushed_at = time.monotonic()
            self._flushing = asyncio.ensure_future(self.flush())
            self._flushing.add_done_callback(_log_failure)

    async def flush(self) -> int:
        """Add the calls counted in memory to `api_usage_days` (one transaction); how many rows."""
        async with self._flush_lock:
            self._flushed_at = time.monotonic()
            pending, self._pending = self._pending, Counter()
            if not pending:
                return 0
            try:
                async with self.db.transaction() as session:
                    for (user_id, day, group), calls in pending.items():
                        statement = self.db.insert(ApiUsageDay).values(user_id=user_id, day=day, group=group,
                                                                       calls=calls)
                        await session.execute(statement.on_conflict_do_update(
                            index_elements=["user_id", "day", "group"],
                            set_={"calls": ApiUsageDay.calls + statement.excluded.calls}))
            except Exception:
                self._pending.update(pending)  # kept for the next flush
                raise
            return len(pending)

    async def usage(self, user_id: int, days: int) -> list[UsageLine]:
        """The last `days` UTC days with calls or dataset purchases, newest first. Money is read from the
        ledger: what moved into API revenue for this user's calls, and what datasets took from their credit."""
        await self.flush()
        since = self.clock().astimezone(UTC).date() - timedelta(days=days - 1)
        async with self.db.session() as session:
            calls = dict((await session.execute(
                select(ApiUsageDay.day, func.sum(ApiUsageDay.calls))
                .where(ApiUsageDay.user_id == user_id, ApiUsageDay.day >= since)
                .group_by(ApiUsageDay.day))).all())
            charged = {day: (count, spent) for day, count, spent in (await session.execute(
                select(ApiCharge.day, func.count(), func.sum(LedgerEntry.amount))
                .join(LedgerMovement,
                      (LedgerMovement.kind == "api_call") & (LedgerMovement.ref == ApiCharge.request_id))
                .join(LedgerEntry, LedgerEntry.movement_id == LedgerMovement.id)
                .join(LedgerAccount, (LedgerAccount.id == LedgerEntry.account_id) & (LedgerAccount.name == API_REVENUE))
                .where(ApiCharge.user_id == user_id, ApiCharge.day >= since)
                .group_by(ApiCharge.day))).all()}
            datasets: dict[date, int] = {}
            for at, amount in (await session.execute(  # bucketed here: UTC days alike on SQLite and PostgreSQL
                    select(LedgerMovement.created_at, LedgerEntry.amount)
                    .join(LedgerEntry, LedgerEntry.movement_id == LedgerMovement.id)
                    .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                    .where(LedgerMovement.kind == "dataset", LedgerAccount.name == api_credit_account(user_id),
                           LedgerMovement.created_at >= datetime.combine(since, time_of_day.min, UTC)))).all():
                day = at.astimezone(UTC).date()
                datasets[day] = datasets.get(day, 0) - amount
        return [UsageLine(day, int(calls.get(day, 0)), int(charged.get(day, (0, 0))[0]),
                          to_usd(int(charged.get(day, (0, 0))[1] or 0)), to_usd(datasets.get(day, 0)))
                for day in sorted(set(calls) | set(charged) | set(datasets), reverse=True)]
