"""Property (issue 19): a seller's earnings in the one ledger over random sequences of paid orders, time passing,
releases, refunds (inside and after the hold, repeated, whole or pro rata) and payouts. Always: each order's entries
outside `platform:sales` sum to its price while it stands, to nothing once refunded and to the kept part once
refunded pro rata (the part back rounded half-up to the cent, the share back in the same proportion; share + fee =
price, exactly);
the seller's pending + payable + paid is the sum of the standing orders' shares; the platform's fees and sales
move by exactly the standing orders' fees and prices; pending holds just the shares still inside their hold;
and the balance never goes below its debt floor (minus the shares refunded after the hold). Runs on SQLite
and on PostgreSQL (`database_url`)."""

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from db import migrate
from db.engine import Database
from db.models_ledger import LedgerAccount, LedgerEntry, LedgerMovement
from services.earnings import FEES, EarningsService, seller_account, split
from services.ledger import SALES, LedgerService, to_micros, to_usd
from services.orders import OrderService
from services.users import UserService

SHARE, HOLD = Decimal("0.80"), timedelta(days=7)
_sellers = itertools.count(1)
OPS = st.one_of(
    st.tuples(st.just("sale"), st.integers(1, 50_000)),  # a paid order of this many cents
    st.tuples(st.just("later"), st.integers(1, 24 * 10)),  # hours pass
    st.tuples(st.just("refund"), st.integers(0, 9)),  # the n-th order (again: a retry)
    st.tuples(st.just("part"), st.tuples(st.integers(0, 9), st.integers(0, 100))),  # the n-th order, this % back
    st.tuples(st.just("release"), st.just(0)),
    st.tuples(st.just("payout"), st.integers(1, 100)),  # this percentage of what is payable
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, min_size=1, max_size=14))
@example(ops=[("sale", 1999), ("later", 24 * 8), ("payout", 100), ("refund", 0), ("sale", 500), ("later", 200),
              ("refund", 1), ("refund", 0)])
@example(ops=[("sale", 1), ("sale", 3), ("refund", 0), ("later", 170), ("refund", 1), ("release", 0)])
@example(ops=[("sale", 2500), ("later", 24), ("part", (0, 67)), ("part", (0, 10)), ("sale", 999), ("later", 200),
              ("part", (1, 33)), ("payout", 100), ("refund", 1)])
def test_a_sellers_money_always_adds_up(database_url, ops):
    asyncio.run(scenario(database_url, ops))


def back_of(price: Decimal, percent: int) -> tuple[Decimal, Decimal]:
    """(price back, share back) of a refund of `percent` % of an order: half-up to the cent, the share in the
    same proportion half-up to the micro-dollar."""
    share = split(price, SHARE).share
    price_back = min(price, (price * percent / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    share_back = (share * price_back / price).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP) if price else 0
    return price_back, min(share, share_back)


async def total(db: Database, account: str) -> Decimal:
    async with db.session() as session:
        return to_usd(int(await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id).where(LedgerAccount.name == account))))


async def order_total(db: Database, order_id: int) -> Decimal:
    """The order's entries outside platform:sales (the seller's share and the platform's fee)."""
    async with db.session() as session:
        return to_usd(int(await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(LedgerMovement, LedgerMovement.id == LedgerEntry.movement_id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerMovement.ref == str(order_id), LedgerMovement.kind.like("seller_%"),
                   LedgerAccount.name != SALES))))


async def scenario(url: str, ops) -> None:
    db, clock = Database(url), Clock()
    await migrate.upgrade(db)
    number = next(_sellers)
    buyer, seller = 70_000 + number, f"test:{number}"
    earnings = EarningsService(db, LedgerService(db, clock=clock), share=SHARE, hold=HOLD, clock=clock)
    orders = OrderService(db)
    try:
        await UserService(db).seen(buyer, username=None, first_name="B", language_code="en")
        fees_before, sales_before = await total(db, FEES), await total(db, SALES)
        sold: list[tuple[int, Decimal, datetime]] = []  # (order id, price, paid at)
        refunded: dict[int, bool] = {}  # order id -> inside the hold
        backs: dict[int, tuple[Decimal, Decimal]] = {}  # order id -> (price back, share back)
        paid_out, payouts = Decimal(0), 0
        for kind, value in ops:
            if kind == "sale":
                order = await orders.create(user_id=buyer, product="test_sale", product_ref=f"{seller}:{len(sold)}",
                                            title=f"sale {len(sold)}", amount_cents=value, ttl=timedelta(hours=1))
                price = Decimal(value) / 100
                assert await earnings.record_sale(order.id, seller, price, clock.now)
                sold.append((order.id, price, clock.now))
            elif kind == "later":
                clock.now += timedelta(hours=value)
            elif kind == "refund" and value < len(sold):
                order_id, _price, paid_at = sold[value]
                done = await earnings.refund(order_id)
                expected_inside = refunded.setdefault(order_id, clock.now < paid_at + HOLD)
                assert done.inside_hold == expected_inside
                backs.setdefault(order_id, (_price, split(_price, SHARE).share))
            elif kind == "part" and value[0] < len(sold):
                order_id, price, paid_at = sold[value[0]]
                done = await earnings.refund(order_id, Fraction(value[1], 100))
                expected_inside = refunded.setdefault(order_id, clock.now < paid_at + HOLD)
                back = backs.setdefault(order_id, back_of(price, value[1]))  # a repeat does what the first did
                assert (done.inside_hold, done.price, done.share) == (expected_inside, *back)
            elif kind == "release":
                await earnings.release_due()
            elif kind == "payout":
                payable = (await earnings.balance(seller)).payable
                amount = to_usd(to_micros(payable) * value // 100)
                if amount > 0:
                    payouts += 1
                    assert await earnings.record_payout(seller, amount, f"{seller}:payout:{payouts}")
                    paid_out += amount

            standing = [(o, p, at) for o, p, at in sold if o not in refunded]
            kept = [(p - backs[o][0], split(p, SHARE).share - backs[o][1]) for o, p, _at in sold if o in refunded]
            for order_id, price, _at in sold:
                assert await order_total(db, order_id) == price - backs.get(order_id, (0, 0))[0]
            shares = sum((split(p, SHARE).share for _o, p, _at in standing), Decimal(0)) + \
                sum((share for _p, share in kept), Decimal(0))
            pending, payable = await total(db, seller_account(seller, "pending")), \
                await total(db, seller_account(seller, "payable"))
            paid = await total(db, seller_account(seller, "paid"))
            assert pending + payable + paid == shares and paid == paid_out
            assert await total(db, FEES) - fees_before == sum((split(p, SHARE).fee for _o, p, _at in standing),
                                                              Decimal(0)) + sum((p - sh for p, sh in kept), Decimal(0))
            assert await total(db, SALES) - sales_before == -sum((p for _o, p, _at in standing), Decimal(0)) - \
                sum((p for p, _sh in kept), Decimal(0))
            balance = await earnings.balance(seller)  # releases what is due
            assert balance.pending == sum((split(p, SHARE).share for _o, p, at in standing
                                           if clock.now < at + HOLD), Decimal(0))
            refunded_late = sum((backs[o][1] for o, p, _at in sold if refunded.get(o) is False), Decimal(0))
            assert balance.payable >= -refunded_late  # the debt floor
    finally:
        await db.close()
