"""The payout run: every seller with a payable balance is paid, exactly once, and nobody is skipped.

Generic over who is paid: a seller ("provider:7"; indicator developers later) is paid to the destination its
`PayeeLookup` gives (registered by the seller's kind, the part before ":"). A run, for each seller:

1. In one transaction (the seller's payable account locked): if the seller has no payout still open, an item
   is created for the whole payable balance AND the ledger moves it from `seller:S:payable` to `seller:S:paid`
   (cause `seller_payout`, the item's `spend_id`). So the balance can never be paid out twice, and a crash
   after this commit leaves an open item that the next run finishes.
2. Items to transfer ("sending", from this run or an earlier one that died) are claimed with a lease, then
   paid through a payment provider that can pay out (`PaysOut`, the first enabled one) with the item's
   `spend_id`: the provider makes a transfer once per spend id, and a retry returns the transfer made before.
   Paid: the item records the provider's reference. Refused for good (insufficient funds, a bad account): the
   item fails and its amount goes back to payable (cause `seller_payout_back`) for a later run. A network
   failure leaves the item open for the next run (or the hourly resume).
3. Address payouts become "manual" items: an admin sends the money and records its reference in /payouts.

A suspended seller is not paid while suspended (its balance waits: refunds of its subscribers may still
take from it).

A run holds a lease on its `payout_runs` row while it works (renewed by a heartbeat), so an admin's tap can
see that a run is going anywhere (`begin` refuses a second one) and a run whose process died stops counting
once its lease runs out. `progress` hears of each transfer as it completes (for the admin's progress message).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import or_, select, text, update

from db.base import utcnow
from db.engine import Database
from db.models_marketplace import SellerEarning
from db.models_payouts import PayoutItem, PayoutRun
from services.earnings import EarningsService, seller_account
from services.leader import advisory_key
from services.leases import heartbeat
from services.ledger import Cause, LedgerService, to_micros, to_usd
from services.payments.base import ProviderError

log = logging.getLogger(__name__)

#: Balances below this wait for a later run (a transfer of less than a cent is refused by providers).
MINIMUM = Decimal("0.01")
#: How long a claimed transfer stays ours; a run that died is taken over after it.
LEASE = timedelta(minutes=2)
REFERENCE = re.compile(r"[A-Za-z0-9:._/-]{6,200}")
SENDING, MANUAL, PAID, FAILED = "sending", "manual", "paid", "failed"
OPEN = (SENDING, MANUAL)


class PaysOut(Protocol):
    """What a payment provider offers when it can send money to a Telegram account by itself."""

    name: str

    async def pay_out(self, *, user_id: int, amount_usd: Decimal, spend_id: str, comment: str,
                      retry: bool = True) -> str:
        """Send `amount_usd` (in the provider's dollar asset); returns a reference. Exactly once per
        `spend_id` (a retry returns the first transfer's reference; `retry` False: this spend id was never
        sent before, so nothing needs looking up first). Raises ProviderError."""
        ...


@dataclass(frozen=True, slots=True)
class Payee:
    """Where a seller is paid: a Telegram account (`user_id`, transferred) or an `address` (paid by hand)."""

    name: str
    user_id: int
    address: str | None = None  # set: a manual payout to this address
    held: bool = False  # e.g. a suspended provider: not paid for now


PayeeLookup = Callable[[str], Awaitable[Payee | None]]


@dataclass(slots=True)
class RunReport:
    """What one run did: items paid now, left for an admin to send by hand, failed (back to payable), still
    open after a network failure, and sellers not paid (held, or no way to pay them)."""

    run_id: int
    paid: list[PayoutItem] = field(default_factory=list)
    manual: list[PayoutItem] = field(default_factory=list)
    failed: list[PayoutItem] = field(default_factory=list)
    waiting: list[PayoutItem] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    unpayable: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # seller -> name

    def total(self, items: list[PayoutItem]) -> Decimal:
        return sum((to_usd(i.amount_micros) for i in items), Decimal(0))


#: Told after each transfer of a run completes: the report so far and how many transfers the run makes.
Progress = Callable[[RunReport, int], Awaitable[None]]


def amount_of(item: PayoutItem) -> Decimal:
    return to_usd(item.amount_micros)


class PayoutRefused(Exception):
    """A manual payout's record was refused: `why` is "reference" (malformed) or "stale" (not open)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class PayoutService:
    def __init__(self, database: Database, ledger: LedgerService, earnings: EarningsService,
                 providers: Mapping[str, Any], payees: Mapping[str, PayeeLookup], *,
                 clock: Callable[[], datetime] = utcnow, lease: timedelta = LEASE) -> None:
        self.db, self.ledger, self.earnings, self.providers = database, ledger, earnings, providers
        self.payees, self.clock, self.lease = payees, clock, lease

    def payer(self) -> PaysOut | None:
        """The first enabled payment provider that can pay out by itself."""
        return next((p for p in self.providers.values() if hasattr(p, "pay_out")), None)

    async def payee(self, seller: str) -> Payee | None:
        lookup = self.payees.get(seller.partition(":")[0])
        return await lookup(seller) if lookup is not None else None

    async def sellers(self) -> list[str]:
        async with self.db.session() as session:
            return list(await session.scalars(select(SellerEarning.seller).distinct().order_by(SellerEarning.seller)))

    # -- the run ---------------------------------------------------------------------------------

    async def begin(self, started_by: int, chat_id: int | None = None) -> tuple[int, PayoutRun | None]:
        """Record a run an admin starts (to be made by `run(run_id=...)` in the background): (its id, None), or
        (0, the run already going) while another run holds its lease, on any replica."""
        now = self.clock()
        async with self.db.transaction() as session:
            if session.bind.dialect.name == "postgresql":  # two taps at once: one is first (SQLite: one writer)
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                      {"key": advisory_key("payout_run_start")})
            going = await session.scalar(select(PayoutRun).where(
                PayoutRun.finished_at.is_(None), PayoutRun.lease_until > now).order_by(PayoutRun.id).limit(1))
            if going is not None:
                return 0, going
            run = PayoutRun(started_by=started_by, started_at=now, lease_until=now + self.lease, chat_id=chat_id)
            session.add(run)
            await session.flush()
            return run.id, None

    async def set_message(self, run_id: int, message_id: int) -> None:
        """Where the run's progress is shown."""
        async with self.db.transaction() as session:
            await session.execute(update(PayoutRun).where(PayoutRun.id == run_id).values(message_id=message_id))

    async def run_row(self, run_id: int) -> PayoutRun | None:
        async with self.db.session() as session:
            return await session.get(PayoutRun, run_id)

    async def _renew_run(self, run_id: int) -> bool:
        async with self.db.transaction() as session:
            done = await session.execute(update(PayoutRun).where(
                PayoutRun.id == run_id, PayoutRun.finished_at.is_(None)).values(lease_until=self.clock() + self.lease))
        return done.rowcount == 1

    async def run(self, started_by: int | None = None, *, run_id: int | None = None,
                  progress: Progress | None = None) -> RunReport:
        """Pay every seller with a payable balance (and finish what an earlier run left open). `run_id`: the
        run `begin` recorded; `progress` hears of each transfer."""
        await self.earnings.release_due()
        if run_id is None:
            now = self.clock()
            async with self.db.transaction() as session:
                run = PayoutRun(started_by=started_by, started_at=now, lease_until=now + self.lease)
                session.add(run)
                await session.flush()
                run_id = run.id
        async with heartbeat(functools.partial(self._renew_run, run_id), self.lease, what=f"payout run {run_id}"):
            report = await self._run(run_id, progress)
        async with self.db.transaction() as session:
            await session.execute(update(PayoutRun).where(PayoutRun.id == run_id).values(
                finished_at=self.clock(), lease_until=None))
        return report

    async def abandoned(self) -> list[PayoutRun]:
        """Runs whose process died mid-run (unfinished, their lease run out): `close` them after a resume."""
        now = self.clock()
        async with self.db.session() as session:
            return list(await session.scalars(select(PayoutRun).where(
                PayoutRun.finished_at.is_(None), PayoutRun.lease_until <= now).order_by(PayoutRun.id)))

    async def close(self, run_id: int) -> RunReport | None:
        """Mark an abandoned run finished (once: None if it was not abandoned) and report its payouts as they
        stand now."""
        now = self.clock()
        async with self.db.transaction() as session:
            done = await session.execute(update(PayoutRun).where(
                PayoutRun.id == run_id, PayoutRun.finished_at.is_(None), PayoutRun.lease_until <= now)
                .values(finished_at=now, lease_until=None))
            if done.rowcount != 1:
                return None
            items = list(await session.scalars(select(PayoutItem).where(PayoutItem.run_id == run_id)
                                               .order_by(PayoutItem.id)))
        report = RunReport(run_id)
        for item in items:
            {PAID: report.paid, FAILED: report.failed, MANUAL: report.manual}.get(item.state, report.waiting).append(
                item)
            if item.seller not in report.names:
                payee = await self.payee(item.seller)
                report.names[item.seller] = payee.name if payee else item.seller
        return report

    async def _run(self, run_id: int, progress: Progress | None) -> RunReport:
        report = RunReport(run_id)
        payer = self.payer()
        for seller in await self.sellers():
            payee = await self.payee(seller)
            if payee is None:
                continue
            report.names[seller] = payee.name
            if payee.held:
                if await self.ledger.balance(seller_account(seller, "payable")) >= MINIMUM:
                    report.held.append(seller)
                continue
            if payee.address is None and payer is None:
                if await self.ledger.balance(seller_account(seller, "payable")) >= MINIMUM:
                    report.unpayable.append(seller)
                continue
            await self._open_item(run_id, seller, payee, payer)
        return await self.resume(report, progress)

    async def _open_item(self, run_id: int, seller: str, payee: Payee, payer: PaysOut | None) -> PayoutItem | None:
        """The seller's whole payable balance into a new item, with its ledger movement (one transaction);
        None when it has a payout still open or too little payable."""
        payable = seller_account(seller, "payable")
        async with self.db.transaction() as session:
            await self.ledger.lock_in(session, payable)
            open_item = await session.scalar(select(PayoutItem.id).where(
                PayoutItem.seller == seller, PayoutItem.state.in_(OPEN)).limit(1))
            if open_item is not None:
                return None
            amount = to_usd(await self.ledger.balance_in(session, payable))
            if amount < MINIMUM:
                return None
            manual = payee.address is not None
            item = PayoutItem(run_id=run_id, seller=seller, amount_micros=to_micros(amount),
                              method="manual" if manual else "transfer", user_id=payee.user_id,
                              address=payee.address, via=None if manual else payer.name,
                              spend_id=f"payout:{run_id}:{seller}"[:64], state=MANUAL if manual else SENDING,
                              created_at=self.clock())
            session.add(item)
            await session.flush()
            await self.ledger.post_in(session, Cause("seller_payout", item.spend_id),
                                      {payable: -amount, seller_account(seller, "paid"): amount})
            return item

    async def resume(self, report: RunReport | None = None, progress: Progress | None = None) -> RunReport:
        """Transfer every open "sending" item whose lease is free (this run's, or one a dead run left)."""
        report = report or RunReport(0)
        now = self.clock()
        async with self.db.session() as session:
            ids = list(await session.scalars(select(PayoutItem.id).where(
                PayoutItem.state == SENDING, or_(PayoutItem.lease_until.is_(None), PayoutItem.lease_until <= now))
                .order_by(PayoutItem.id)))
            manual = list(await session.scalars(select(PayoutItem).where(
                PayoutItem.state == MANUAL, PayoutItem.run_id == report.run_id)))
        report.manual.extend(manual)
        for item_id in ids:
            item = await self._transfer(item_id)
            if item is None:
                continue
            {PAID: report.paid, FAILED: report.failed}.get(item.state, report.waiting).append(item)
            if progress is not None:
                await progress(report, len(ids))
        for item in [*report.paid, *report.failed, *report.waiting, *report.manual]:
            if item.seller not in report.names:
                payee = await self.payee(item.seller)
                report.names[item.seller] = payee.name if payee else item.seller
        return report

    async def _transfer(self, item_id: int) -> PayoutItem | None:
        now = self.clock()
        async with self.db.transaction() as session:
            claimed = await session.execute(update(PayoutItem).where(
                PayoutItem.id == item_id, PayoutItem.state == SENDING,
                or_(PayoutItem.lease_until.is_(None), PayoutItem.lease_until <= now))
                .values(lease_until=now + self.lease, attempts=PayoutItem.attempts + 1))
            if claimed.rowcount != 1:
                return None
            item = await session.get(PayoutItem, item_id)
        payer = next((p for p in self.providers.values() if getattr(p, "name", None) == item.via
                      and hasattr(p, "pay_out")), None)
        try:
            if payer is None:
                raise ProviderError(f"{item.via} cannot pay out now")
            reference = await payer.pay_out(user_id=item.user_id, amount_usd=amount_of(item),
                                            spend_id=item.spend_id, comment=f"Payout #{item.id}",
                                            retry=item.attempts > 1)
        except ProviderError as exc:
            return await self._failed(item, str(exc)[:300], for_good=not exc.retryable)
        async with self.db.transaction() as session:
            await session.execute(update(PayoutItem).where(PayoutItem.id == item.id, PayoutItem.state == SENDING)
                                  .values(state=PAID, reference=reference[:200], paid_at=self.clock(),
                                          lease_until=None, error=None))
            return await session.get(PayoutItem, item.id, populate_existing=True)

    async def _failed(self, item: PayoutItem, error: str, *, for_good: bool) -> PayoutItem:
        """A refused transfer: for good, the item fails and its amount goes back to payable; else it stays
        open (lease released) for the next attempt."""
        log.warning("payout %s to %s: %s", item.id, item.seller, error)
        async with self.db.transaction() as session:
            if not for_good:
                await session.execute(update(PayoutItem).where(PayoutItem.id == item.id, PayoutItem.state == SENDING)
                                      .values(error=error, lease_until=None))
            else:
                done = await session.execute(update(PayoutItem).where(
                    PayoutItem.id == item.id, PayoutItem.state == SENDING)
                    .values(state=FAILED, error=error, lease_until=None))
                if done.rowcount == 1:
                    amount = amount_of(item)
                    await self.ledger.post_in(session, Cause("seller_payout_back", item.spend_id), {
                        seller_account(item.seller, "paid"): -amount,
                        seller_account(item.seller, "payable"): amount})
            return await session.get(PayoutItem, item.id, populate_existing=True)

    # -- manual payouts --------------------------------------------------------------------------

    async def record_manual(self, item_id: int, reference: str, admin_id: int) -> PayoutItem:
        """An admin sent a manual payout: its reference (a transaction id) closes the item. Raises
        PayoutRefused."""
        reference = (reference or "").strip()
        if not REFERENCE.fullmatch(reference):
            raise PayoutRefused("reference")
        async with self.db.transaction() as session:
            done = await session.execute(update(PayoutItem).where(PayoutItem.id == item_id,
                                                                  PayoutItem.state == MANUAL)
                                         .values(state=PAID, reference=reference, paid_at=self.clock(),
                                                 recorded_by=admin_id))
            if done.rowcount != 1:
                raise PayoutRefused("stale")
            return await session.get(PayoutItem, item_id, populate_existing=True)

    async def get(self, item_id: int) -> PayoutItem | None:
        async with self.db.session() as session:
            return await session.get(PayoutItem, item_id)

    async def open_manual(self) -> list[PayoutItem]:
        async with self.db.session() as session:
            return list(await session.scalars(select(PayoutItem).where(PayoutItem.state == MANUAL)
                                              .order_by(PayoutItem.id)))

    async def overview(self) -> tuple[PayoutRun | None, int, Decimal]:
        """The last run, and how many sellers now have a payable balance, for how much in all."""
        await self.earnings.release_due()
        sellers = await self.sellers()
        owed = [await self.ledger.balance(seller_account(s, "payable")) for s in sellers]
        async with self.db.session() as session:
            last = await session.scalar(select(PayoutRun).order_by(PayoutRun.id.desc()).limit(1))
        due = [a for a in owed if a >= MINIMUM]
        return last, len(due), sum(due, Decimal(0))

    async def of_seller(self, seller: str, limit: int = 10) -> list[PayoutItem]:
        """A seller's payouts, newest first."""
        async with self.db.session() as session:
            return list(await session.scalars(select(PayoutItem).where(PayoutItem.seller == seller)
                                              .order_by(PayoutItem.id.desc()).limit(limit)))

    async def to_notify(self) -> list[PayoutItem]:
        """Paid items whose payee has not been told yet (claimed: each is returned once)."""
        async with self.db.session() as session:
            ids = list(await session.scalars(select(PayoutItem.id).where(
                PayoutItem.state == PAID, PayoutItem.notified_at.is_(None)).order_by(PayoutItem.id)))
        found = []
        for item_id in ids:
            async with self.db.transaction() as session:
                done = await session.execute(update(PayoutItem).where(
                    PayoutItem.id == item_id, PayoutItem.notified_at.is_(None)).values(notified_at=self.clock()))
                if done.rowcount == 1:
                    found.append(await session.get(PayoutItem, item_id))
        return found
