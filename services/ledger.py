"""The product's one money ledger, double entry. API credit lives here; the marketplace pays providers
from it too.

A movement is a set of entries (account, signed amount) that sum to zero, recorded with its cause
(`kind`, `ref`), which is unique: a retried movement is recorded once. A balance is the sum of an
account's entries, never a stored counter. Sign convention: an account's balance is what it holds, so a
user's `user:<id>:api_credit` is positive while it has credit, and `platform:sales` goes negative by what
was sold (the money came in from outside through it).

Amounts are integers of micro-dollars (1 USD = 1,000,000): sums are exact in SQL on SQLite and
PostgreSQL alike (SQLite would SUM an ExactDecimal's text as floats), and they hold every price we
charge (fractions of a cent included) and an 80% provider share of any cent amount exactly.

Concurrency: charging a user locks that user's account row (SELECT ... FOR UPDATE on PostgreSQL; on
SQLite every write transaction already holds the database's one write lock, BEGIN IMMEDIATE) before the
balance is read, so concurrent charges in any number of processes can never take credit below zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.engine import Database, dialect_insert
from db.models_ledger import LedgerAccount, LedgerEntry, LedgerMovement

MICROS = 1_000_000
SALES = "platform:sales"
API_REVENUE = "platform:api_revenue"


def api_credit_account(user_id: int) -> str:
    return f"user:{user_id}:api_credit"


def to_micros(amount: Decimal) -> int:
    """Exact micro-dollars of a USD amount; finer amounts are refused rather than rounded."""
    value = amount * MICROS
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"not a whole number of micro-dollars: {amount!r}")
    return int(value)


def to_usd(micros: int) -> Decimal:
    return Decimal(micros) / MICROS


@dataclass(frozen=True, slots=True)
class Cause:
    """Why money moved: e.g. Cause("order", "42"), Cause("api_call", request_id)."""

    kind: str
    ref: str


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One movement as an account sees it: `amount` (USD) is signed, positive when money came in."""

    at: datetime
    kind: str
    ref: str
    amount: Decimal


class LedgerService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.clock = database, clock

    # reading

    async def balance(self, account: str) -> Decimal:
        async with self.db.session() as session:
            return to_usd(await self._balance(session, account))

    async def credit(self, user_id: int) -> Decimal:
        """A user's API credit left (USD)."""
        return await self.balance(api_credit_account(user_id))

    async def history(self, user_id: int, limit: int = 20) -> list[LedgerLine]:
        """The latest movements of a user's API credit, newest first."""
        return await self.account_history(api_credit_account(user_id), limit)

    async def account_history(self, account: str, limit: int = 20) -> list[LedgerLine]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(LedgerMovement.created_at, LedgerMovement.kind, LedgerMovement.ref, LedgerEntry.amount)
                .join(LedgerEntry, LedgerEntry.movement_id == LedgerMovement.id)
                .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                .where(LedgerAccount.name == account)
                .order_by(LedgerMovement.id.desc()).limit(limit))
            return [LedgerLine(at, kind, ref, to_usd(amount)) for at, kind, ref, amount in rows]

    async def moved(self, account: str, cause: Cause) -> Decimal | None:
        """What `cause` moved on `account` (None: no such movement)."""
        async with self.db.session() as session:
            amount = await self._moved(session, account, cause)
        return None if amount is None else to_usd(amount)

    # writing

    async def post(self, cause: Cause, entries: Mapping[str, Decimal]) -> bool:
        """Record one movement (entries by account name, summing to zero). False: `cause` was recorded
        before (nothing is written again)."""
        async with self.db.transaction() as session:
            return await self.post_in(session, cause, entries)

    async def post_in(self, session: AsyncSession, cause: Cause, entries: Mapping[str, Decimal]) -> bool:
        """`post` inside the caller's transaction (e.g. with the answer the movement pays for)."""
        amounts = {account: to_micros(amount) for account, amount in entries.items()}
        if sum(amounts.values()) != 0 or not any(amounts.values()):
            raise ValueError(f"a movement's entries must sum to zero and move something: {amounts}")
        movement_id = await session.scalar(
            self._insert(session, LedgerMovement.__table__)
            .values(kind=cause.kind, ref=cause.ref, created_at=self.clock())
            .on_conflict_do_nothing(index_elements=["kind", "ref"]).returning(LedgerMovement.id))
        if movement_id is None:
            return False
        for account, amount in amounts.items():
            session.add(LedgerEntry(movement_id=movement_id, account_id=await self._account(session, account),
                                    amount=amount))
        await session.flush()
        return True

    async def top_up(self, user_id: int, amount: Decimal, cause: Cause) -> bool:
        """Add API credit sold to a user (`cause`: the order). False: recorded before."""
        if amount <= 0:
            raise ValueError("a top-up must be positive")
        return await self.post(cause, {api_credit_account(user_id): amount, SALES: -amount})

    async def charge(self, user_id: int, amount: Decimal, cause: Cause) -> bool:
        """Take `amount` of the user's API credit for `cause`. True: charged (now, or already before for
        this cause); False: too little credit, nothing taken. Credit never goes below zero."""
        async with self.db.transaction() as session:
            return await self.charge_in(session, user_id, amount, cause)

    async def charge_in(self, session: AsyncSession, user_id: int, amount: Decimal, cause: Cause) -> bool:
        """`charge` inside the caller's transaction (so a charge and what it pays for commit together)."""
        if amount <= 0:
            raise ValueError("a charge must be positive")
        account = api_credit_account(user_id)
        await self._lock(session, account, user_id)
        if await self._moved(session, account, cause) is not None:
            return True
        if await self._balance(session, account) < to_micros(amount):
            return False
        return await self.post_in(session, cause, {account: -amount, API_REVENUE: amount})

    async def take_back(self, user_id: int, up_to: Decimal, cause: Cause) -> Decimal:
        """Remove up to `up_to` of the user's unused API credit (a refunded top-up: what is left of it,
        never more than the user has). Idempotent per `cause`: a repeat returns what was taken the first
        time. The credit goes back to `platform:sales` (the sale is undone)."""
        account = api_credit_account(user_id)
        async with self.db.transaction() as session:
            await self._lock(session, account, user_id)
            before = await self._moved(session, account, cause)
            if before is not None:
                return to_usd(-before)
            taken = to_usd(min(to_micros(up_to), max(await self._balance(session, account), 0)))
            if taken > 0:
                await self.post_in(session, cause, {account: -taken, SALES: taken})
            return taken

    async def lock_in(self, session: AsyncSession, account: str) -> None:
        """Hold `account`'s row until the caller's transaction ends (its writers queue up)."""
        await self._lock(session, account, None)

    async def balance_in(self, session: AsyncSession, account: str) -> int:
        """`account`'s balance in micro-dollars, inside the caller's transaction."""
        return await self._balance(session, account)

    async def moved_in(self, session: AsyncSession, account: str, cause: Cause) -> int | None:
        """What `cause` moved on `account` (micro-dollars), inside the caller's transaction."""
        return await self._moved(session, account, cause)

    # internals

    @staticmethod
    def _insert(session: AsyncSession, table):
        return dialect_insert(table, session.bind.dialect.name)

    async def _account(self, session: AsyncSession, name: str, user_id: int | None = None) -> int:
        """The account's id, created on first use (concurrent first uses make one row)."""
        account_id = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.name == name))
        if account_id is None:
            await session.execute(self._insert(session, LedgerAccount.__table__)
                                  .values(name=name, user_id=user_id, created_at=self.clock())
                                  .on_conflict_do_nothing(index_elements=["name"]))
            account_id = await session.scalar(select(LedgerAccount.id).where(LedgerAccount.name == name))
        return account_id

    async def _lock(self, session: AsyncSession, name: str, user_id: int | None) -> None:
        """Hold the account's row until the transaction ends: its charges queue up, one at a time."""
        account_id = await self._account(session, name, user_id)
        await session.execute(select(LedgerAccount.id).where(LedgerAccount.id == account_id).with_for_update())

    @staticmethod
    async def _balance(session: AsyncSession, account: str) -> int:
        return int(await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerAccount.name == account)) or 0)

    @staticmethod
    async def _moved(session: AsyncSession, account: str, cause: Cause) -> int | None:
        return await session.scalar(
            select(LedgerEntry.amount)
            .join(LedgerMovement, LedgerMovement.id == LedgerEntry.movement_id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerMovement.kind == cause.kind, LedgerMovement.ref == cause.ref,
                   LedgerAccount.name == account))
