"""Property (issue 17): the one ledger under concurrent top-ups and charges from several processes (each
its own engine and pool, as replicas have), retries of the same cause included. Nothing is lost or counted
twice: every cause is recorded at most once, every movement sums to zero, a user's credit is the sum of
their entries and equals what was topped up minus what was charged, and it is never below zero. Runs on
SQLite and on PostgreSQL (`database_url`)."""

import asyncio
import itertools
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from db import migrate
from db.engine import Database
from db.models_ledger import LedgerAccount, LedgerEntry, LedgerMovement
from services.ledger import API_REVENUE, MICROS, Cause, LedgerService, api_credit_account

PROCESSES = 3
_users = itertools.count(10_000)
#: ("top_up", cents, process, cause n) or ("charge", micro-dollars, process, cause n); a repeated cause n is
#: a retry of the same movement (its amount is the first one's).
OPS = st.one_of(
    st.tuples(st.just("top_up"), st.integers(100, 1_000), st.integers(0, PROCESSES - 1), st.integers(0, 5)),
    st.tuples(st.just("charge"), st.integers(1, 4 * MICROS), st.integers(0, PROCESSES - 1), st.integers(0, 12)),
)
BATCHES = st.lists(st.lists(OPS, min_size=1, max_size=8), min_size=1, max_size=5)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(batches=BATCHES)
@example(batches=[[("top_up", 500, 0, 0)], [("charge", 2 * MICROS, p, n) for p in range(3) for n in range(3)]])
@example(batches=[[("top_up", 100, p, 0) for p in range(3)] + [("charge", MICROS, p, 0) for p in range(3)]])
def test_concurrent_top_ups_and_charges_never_lose_or_double_count(database_url, batches):
    asyncio.run(scenario(database_url, batches))


async def scenario(url: str, batches) -> None:
    databases = [Database(url) for _p in range(PROCESSES)]
    await migrate.upgrade(databases[0])
    ledgers = [LedgerService(db) for db in databases]
    user = next(_users)
    account = api_credit_account(user)
    try:
        revenue_before = await ledgers[0].balance(API_REVENUE)
        amounts: dict[tuple[str, int], int] = {}  # cause -> micro-dollars (a retry keeps the first amount)
        topped, charged = set(), set()
        for batch in batches:
            calls = []
            for kind, amount, process, n in batch:
                micros = amounts.setdefault((kind, n), amount * 10_000 if kind == "top_up" else amount)
                cause = Cause(f"test_{kind}", f"{user}:{n}")
                usd = Decimal(micros) / MICROS
                ledger = ledgers[process]
                calls.append(ledger.top_up(user, usd, cause) if kind == "top_up" else ledger.charge(user, usd, cause))
            results = await asyncio.gather(*calls)
            for (kind, _amount, _process, n), done in zip(batch, results, strict=True):
                if done:
                    (topped if kind == "top_up" else charged).add(n)
            expected = sum(amounts[("top_up", n)] for n in topped) - sum(amounts[("charge", n)] for n in charged)
            credit = await ledgers[1].credit(user)
            assert credit == Decimal(expected) / MICROS and credit >= 0
        async with databases[2].session() as session:
            for kind, seen in (("test_top_up", topped), ("test_charge", charged)):
                refs = list(await session.scalars(select(LedgerMovement.ref).where(
                    LedgerMovement.kind == kind, LedgerMovement.ref.like(f"{user}:%"))))
                assert sorted(refs) == sorted(f"{user}:{n}" for n in seen)  # each recorded once, none lost
            sums = await session.execute(select(LedgerEntry.movement_id, func.sum(LedgerEntry.amount))
                                         .group_by(LedgerEntry.movement_id))
            assert all(total == 0 for _movement, total in sums)
            assert await session.scalar(select(func.sum(LedgerEntry.amount))) == 0
            entries = await session.scalar(
                select(func.sum(LedgerEntry.amount)).join(LedgerAccount).where(LedgerAccount.name == account))
            assert Decimal(entries or 0) / MICROS == await ledgers[0].credit(user)
        spent = sum(amounts[("charge", n)] for n in charged)
        assert await ledgers[0].balance(API_REVENUE) - revenue_before == Decimal(spent) / MICROS
    finally:
        for db in databases:
            await db.close()


async def test_twenty_concurrent_callers_charge_exactly_what_the_credit_covers(database):
    ledger = LedgerService(database)
    others = [LedgerService(Database(str(database.url.render_as_string(hide_password=False)))) for _n in range(3)]
    try:
        assert await ledger.top_up(7, Decimal("0.07"), Cause("order", "1"))
        assert not await ledger.top_up(7, Decimal("0.07"), Cause("order", "1"))  # a retried fulfilment
        callers = [others[n % 3].charge(7, Decimal("0.01"), Cause("api_call", f"r{n}")) for n in range(20)]
        results = await asyncio.gather(*callers)
        assert results.count(True) == 7 and await ledger.credit(7) == 0
        again = await asyncio.gather(*(others[n % 3].charge(7, Decimal("0.01"), Cause("api_call", "r-same"))
                                       for n in range(20)))
        assert not any(again)  # no credit left: refused, never below zero
        assert await ledger.top_up(7, Decimal("0.05"), Cause("order", "2"))
        again = await asyncio.gather(*(others[n % 3].charge(7, Decimal("0.01"), Cause("api_call", "r-same"))
                                       for n in range(20)))
        assert all(again) and await ledger.credit(7) == Decimal("0.04")  # one call, charged once
        history = await ledger.history(7, limit=50)
        assert [line.kind for line in history].count("api_call") == 8 and history[0].ref == "r-same"
    finally:
        for other in others:
            await other.db.close()
