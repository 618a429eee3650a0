"""Developer-API figures for admins, read from where they are recorded (never kept as counters of their own):
money from the ledger, calls from `api_usage_days`, charged calls from `api_charges`.

Days are UTC days, the API's quota day (`api_usage_days` and `api_charges` record the UTC date only).

* API revenue: credit spent (on calls over the quota, on datasets), i.e. what moved into `platform:api_revenue`,
  by the day of its movement and by its cause's kind ("api_call", "dataset").
* Credit sold: API credit bought (top-ups: money out of `platform:sales` into users' credit); credit taken back
  on refunds is the opposite movement and is shown on its own.
* Unspent credit: what every user's `user:<id>:api_credit` holds now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models_api import ApiCharge, ApiUsageDay
from db.models_ledger import LedgerAccount, LedgerEntry, LedgerMovement
from services.ledger import API_REVENUE, SALES, to_usd

PERIODS = {"today": 0, "7d": 6, "30d": 29}  # period -> days before today it starts
SHOWN_DAYS = 7


@dataclass(frozen=True, slots=True)
class ApiDay:
    day: date  # UTC
    calls: int
    charged: int  # calls paid from API credit
    revenue: Decimal  # USD credit spent that day (calls and datasets)


@dataclass(frozen=True, slots=True)
class ApiFigures:
    """What /stats shows of the developer API."""

    days: list[ApiDay]  # the last SHOWN_DAYS UTC days, oldest first
    revenue: dict[str, Decimal]  # period ("today", "7d", "30d") -> USD spent from credit
    revenue_by_kind: dict[str, Decimal]  # 30 days: cause kind ("api_call", "dataset") -> USD
    sold: dict[str, Decimal]  # period -> USD of credit bought
    taken_back: Decimal  # 30 days: USD of credit taken back on refunds
    unspent: Decimal  # USD all users hold now


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """One user's API use, for the admin's user card."""

    today: int  # calls on the current UTC day
    week: int  # calls in the last 7 UTC days, today included
    charged_week: int  # of those, calls paid from API credit
    charged_total: int  # calls paid from API credit ever


def _utc_day(session: AsyncSession, column):
    """The UTC date of a timestamp column as 'YYYY-MM-DD', on SQLite (stored in UTC) and PostgreSQL."""
    if session.bind.dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d", column)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")


def _moves_per_day(session: AsyncSession, account: str, since: datetime, *sums):
    """(UTC day 'YYYY-MM-DD', cause kind, *sums) of an account's entries since `since`."""
    day = _utc_day(session, LedgerMovement.created_at)
    return (select(day, LedgerMovement.kind, *sums)
            .select_from(LedgerEntry)
            .join(LedgerMovement, LedgerMovement.id == LedgerEntry.movement_id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerAccount.name == account, LedgerMovement.created_at >= since)
            .group_by(day, LedgerMovement.kind))


async def api_figures(database: Database, now: datetime) -> ApiFigures:
    today = now.astimezone(UTC).date()
    starts = {name: today - timedelta(days=back) for name, back in PERIODS.items()}
    since = datetime.combine(starts["30d"], time(), UTC)
    week = [today - timedelta(days=back) for back in range(SHOWN_DAYS - 1, -1, -1)]
    async with database.session() as session:
        revenue_rows = (await session.execute(_moves_per_day(
            session, API_REVENUE, since, func.sum(LedgerEntry.amount)))).all()
        sales_rows = (await session.execute(_moves_per_day(  # sold: out of sales; taken back: into it
            session, SALES, since, func.coalesce(func.sum(-LedgerEntry.amount).filter(LedgerEntry.amount < 0), 0),
            func.coalesce(func.sum(LedgerEntry.amount).filter(LedgerEntry.amount > 0), 0)))).all()
        calls = dict((await session.execute(
            select(ApiUsageDay.day, func.sum(ApiUsageDay.calls)).where(ApiUsageDay.day >= week[0])
            .group_by(ApiUsageDay.day))).all())
        charged = dict((await session.execute(
            select(ApiCharge.day, func.count()).where(ApiCharge.day >= week[0]).group_by(ApiCharge.day))).all())
        unspent = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerAccount.name.like("user:%:api_credit")))

    revenue_per_day: dict[date, int] = {}
    by_kind: dict[str, int] = {}
    for day_text, kind, micros in revenue_rows:
        day = date.fromisoformat(day_text)
        revenue_per_day[day] = revenue_per_day.get(day, 0) + int(micros or 0)
        by_kind[kind] = by_kind.get(kind, 0) + int(micros or 0)
    sold_per_day: dict[date, int] = {}
    taken_back = 0
    for day_text, _kind, sold, back in sales_rows:
        day = date.fromisoformat(day_text)
        sold_per_day[day] = sold_per_day.get(day, 0) + int(sold)
        taken_back += int(back)

    def period_sums(per_day: dict[date, int]) -> dict[str, Decimal]:
        return {name: to_usd(sum(v for d, v in per_day.items() if d >= start)) for name, start in starts.items()}

    return ApiFigures(
        days=[ApiDay(day, int(calls.get(day, 0)), int(charged.get(day, 0)), to_usd(revenue_per_day.get(day, 0)))
              for day in week],
        revenue=period_sums(revenue_per_day),
        revenue_by_kind={kind: to_usd(micros) for kind, micros in sorted(by_kind.items()) if micros},
        sold=period_sums(sold_per_day), taken_back=to_usd(taken_back), unspent=to_usd(int(unspent or 0)))


async def user_api_usage(database: Database, user_id: int, now: datetime) -> ApiUsage:
    today = now.astimezone(UTC).date()
    week_start = today - timedelta(days=SHOWN_DAYS - 1)
    async with database.session() as session:
        calls = (await session.execute(
            select(func.coalesce(func.sum(ApiUsageDay.calls).filter(ApiUsageDay.day == today), 0),
                   func.coalesce(func.sum(ApiUsageDay.calls), 0))
            .where(ApiUsageDay.user_id == user_id, ApiUsageDay.day >= week_start))).one()
        charged = (await session.execute(
            select(func.count().filter(ApiCharge.day >= week_start), func.count())
            .select_from(ApiCharge).where(ApiCharge.user_id == user_id))).one()
    return ApiUsage(today=int(calls[0]), week=int(calls[1]), charged_week=int(charged[0]),
                    charged_total=int(charged[1]))
