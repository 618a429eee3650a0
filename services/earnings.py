"""Sellers' earnings: each paid order of a seller's product (a marketplace provider's subscription; indicator
developers later) is split in the one ledger (services.ledger) into the seller's share and the platform's fee.

Accounts of a seller `S` ("provider:7"): `seller:S:pending` (shares still inside the refund window),
`seller:S:payable` (what the platform owes the seller now; negative = a debt against future earnings) and
`seller:S:paid` (what was paid out). The platform's fees are `platform:seller_fees`; the money came in through
`platform:sales`, like every sale. Each order moves, once per cause:

* sale (when fulfilled):   sales −price, S:pending +share, fees +fee;
* release (PAYOUT_HOLD_DAYS after payment): S:pending −share, S:payable +share;
* refund inside the hold:  S:pending −share, fees −fee, sales +price (the sale is undone);
* refund after the hold:   (released first) S:payable −share, fees −fee, sales +price: the share comes out of
  the seller's balance, which may go below zero, a debt the next earnings pay back.
* a pro-rata refund (a suspended provider's unused time) moves the same accounts by the refunded part of the
  price only (rounded half-up to the cent), the share and the fee in the price's own proportion (the share
  rounded half-up to the micro-dollar, the fee the rest); the order keeps the used part for good, so its share
  is released at once (a refunded order cannot be refunded again: nothing is left to hold it for).

So an order's movements sum to what was paid (or to nothing once refunded, or to the kept part). Shares are
exact: the price is whole cents and MARKETPLACE_PROVIDER_SHARE has at most 4 decimals, so every share is whole
micro-dollars.
A seller_earnings row per order schedules the release; its state changes are conditional UPDATEs in the same
transaction as the ledger movement, so a release and a refund racing each other do one thing or the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.engine import Database
from db.models_marketplace import SellerEarning
from services.ledger import SALES, Cause, LedgerService, to_micros, to_usd
from services.money import part_of

FEES = "platform:seller_fees"


def seller_account(seller: str, bucket: str) -> str:
    """`bucket`: "pending", "payable" or "paid"."""
    return f"seller:{seller}:{bucket}"


@dataclass(frozen=True, slots=True)
class Split:
    price: Decimal
    share: Decimal  # the seller's
    fee: Decimal  # the platform's


@dataclass(frozen=True, slots=True)
class Balance:
    """A seller's money, USD: `payable` is owed now (negative: a debt), `pending` waits out the hold,
    `paid` was paid out; `next_release` is when the next pending share becomes payable."""

    payable: Decimal
    pending: Decimal
    paid: Decimal
    next_release: datetime | None

    @property
    def debt(self) -> Decimal:
        return max(-self.payable, Decimal(0))


@dataclass(frozen=True, slots=True)
class Reversed:
    """What a refund did to the seller's share: `inside_hold` (taken from pending) or after it (taken from the
    balance: a debt if the balance is short). `share` is zero when there was no sale to reverse; `price` is the
    part of the price given back (all of it, or a pro-rata refund's part)."""

    share: Decimal
    inside_hold: bool
    price: Decimal = Decimal(0)


def reversal(price: Decimal, share: Decimal, part: Fraction | None) -> tuple[Decimal, Decimal]:
    """(price back, share back) of a refund of `part` of an order (None: all of it): the price back rounded
    half-up to the cent, the share back in the same proportion to the micro-dollar; never more than they were."""
    if part is None or part >= 1:
        return price, share
    back = part_of(price, part, Decimal("0.01"))
    if not price:
        return back, Decimal(0)
    return back, part_of(share, Fraction(back) / Fraction(price), Decimal("0.000001"))


def split(price: Decimal, share_ratio: Decimal) -> Split:
    share = price * share_ratio
    to_micros(share)  # exact, or refused
    return Split(price, share, price - share)


class EarningsService:
    def __init__(self, database: Database, ledger: LedgerService, *, share: Decimal, hold: timedelta,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.ledger, self.share, self.hold, self.clock = database, ledger, share, hold, clock

    async def record_sale(self, order_id: int, seller: str, price: Decimal, paid_at: datetime) -> bool:
        """Split a paid order (once per order: False when recorded before)."""
        parts = split(price, self.share)
        async with self.db.transaction() as session:
            if await session.scalar(select(SellerEarning.id).where(SellerEarning.order_id == order_id)) is not None:
                return False
            session.add(SellerEarning(order_id=order_id, seller=seller, price_micros=to_micros(parts.price),
                                      share_micros=to_micros(parts.share), paid_at=paid_at,
                                      payable_at=paid_at + self.hold, state="pending"))
            await session.flush()
            return await self.ledger.post_in(session, Cause("seller_sale", str(order_id)), {
                SALES: -parts.price, seller_account(seller, "pending"): parts.share, FEES: parts.fee})

    async def release_due(self, seller: str | None = None) -> int:
        """Make every share whose hold has passed payable (of one seller, or all); how many were released."""
        now = self.clock()
        query = select(SellerEarning.id).where(SellerEarning.state == "pending", SellerEarning.payable_at <= now)
        if seller is not None:
            query = query.where(SellerEarning.seller == seller)
        async with self.db.session() as session:
            due = list(await session.scalars(query.order_by(SellerEarning.id)))
        released = 0
        for earning_id in due:
            async with self.db.transaction() as session:
                released += await self._release(session, earning_id, now)
        return released

    async def _release(self, session: AsyncSession, earning_id: int, now: datetime) -> bool:
        done = await session.execute(update(SellerEarning).where(
            SellerEarning.id == earning_id, SellerEarning.state == "pending", SellerEarning.payable_at <= now)
            .values(state="payable"))
        if done.rowcount != 1:
            return False
        earning = await session.get(SellerEarning, earning_id)
        share = to_usd(earning.share_micros)
        await self.ledger.post_in(session, Cause("seller_release", str(earning.order_id)), {
            seller_account(earning.seller, "pending"): -share, seller_account(earning.seller, "payable"): share})
        return True

    async def refund(self, order_id: int, part: Fraction | None = None) -> Reversed:
        """Undo an order's split, all of it or `part` of it (a pro-rata refund), once: a repeat returns what the
        first did. Inside the hold the share leaves pending; after it, the seller's balance (below zero if need
        be: a debt)."""
        now = self.clock()
        async with self.db.transaction() as session:
            earning = await session.scalar(select(SellerEarning).where(SellerEarning.order_id == order_id))
            if earning is None:
                return Reversed(Decimal(0), True)
            share, price = to_usd(earning.share_micros), to_usd(earning.price_micros)
            if earning.state == "refunded":
                return await self._reversed_before(session, earning)
            inside = earning.state == "pending" and earning.payable_at > now
            if not inside:  # its hold has passed: the share is the seller's already
                await self._release(session, earning.id, now)
            done = await session.execute(update(SellerEarning).where(
                SellerEarning.id == earning.id, SellerEarning.state.in_(("pending", "payable")))
                .values(state="refunded", refunded_at=now, note="inside hold" if inside else "after hold"))
            if done.rowcount != 1:
                return Reversed(share, inside, price)
            price_back, share_back = reversal(price, share, part)
            bucket = "pending" if inside else "payable"
            if part is not None and price_back < price:  # the used part stays the seller's: it becomes payable
                kept = share - share_back
                if inside and kept:
                    await self.ledger.post_in(session, Cause("seller_release", str(order_id)), {
                        seller_account(earning.seller, "pending"): -kept,
                        seller_account(earning.seller, "payable"): kept})
            if price_back:
                await self.ledger.post_in(session, Cause("seller_refund", str(order_id)), {
                    seller_account(earning.seller, bucket): -share_back, FEES: -(price_back - share_back),
                    SALES: price_back})
            return Reversed(share_back, inside, price_back)

    async def _reversed_before(self, session: AsyncSession, earning: SellerEarning) -> Reversed:
        inside = (earning.note or "") == "inside hold"
        account = seller_account(earning.seller, "pending" if inside else "payable")
        cause = Cause("seller_refund", str(earning.order_id))
        share = await self.ledger.moved_in(session, account, cause)
        sales = await self.ledger.moved_in(session, SALES, cause)
        return Reversed(to_usd(-(share or 0)), inside, to_usd(sales or 0))

    async def record_payout(self, seller: str, amount: Decimal, reference: str) -> bool:
        """Money paid out to the seller (`reference`: the transfer's or manual payout's, once): from payable to
        paid. Never more than is payable. False: recorded before."""
        if amount <= 0:
            raise ValueError("a payout must be positive")
        await self.release_due(seller)
        payable = seller_account(seller, "payable")
        async with self.db.transaction() as session:
            await self.ledger.lock_in(session, payable)
            if await self.ledger.moved_in(session, payable, Cause("seller_payout", reference)) is not None:
                return False
            if to_usd(await self.ledger.balance_in(session, payable)) < amount:
                raise ValueError(f"{seller} has less than {amount} payable")
            return await self.ledger.post_in(session, Cause("seller_payout", reference),
                                             {payable: -amount, seller_account(seller, "paid"): amount})

    async def balance(self, seller: str) -> Balance:
        """The seller's money now (shares whose hold has passed are released first)."""
        await self.release_due(seller)
        async with self.db.session() as session:
            next_release = await session.scalar(
                select(SellerEarning.payable_at).where(SellerEarning.seller == seller,
                                                       SellerEarning.state == "pending")
                .order_by(SellerEarning.payable_at).limit(1))
        return Balance(payable=await self.ledger.balance(seller_account(seller, "payable")),
                       pending=await self.ledger.balance(seller_account(seller, "pending")),
                       paid=await self.ledger.balance(seller_account(seller, "paid")), next_release=next_release)
