"""Payout run for 1,000 sellers: time, and the calls made to the Crypto Pay stand-in (over real HTTP).

Each seller is a marketplace provider with one paid month whose hold has passed (PAYOUT_HOLD_DAYS=0; the shares
are released first, as the hourly job does); one run pays them all by `transfer`. Then a run killed a third of
the way through and run again: the calls the second run needs and that nobody was paid twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from db.base import utcnow
from sandbox.cryptopay import CryptoPayStandIn
from services.marketplace import Application, Review
from services.orders import Status
from tests.conftest import make_settings
from tests.support.harness import Harness

SELLERS = 1000


async def seed(h: Harness, count: int, first_user: int) -> None:
    buyer = first_user - 1
    await h.users.seen(buyer, username=None, first_name="Buyer", language_code="en")
    for n in range(count):
        user_id = first_user + n
        await h.users.seen(user_id, username=None, first_name="P", language_code="en")
        provider = await h.app.marketplace.apply(user_id, Application(
            name=f"Provider {n}", description="Swing trades on majors", ecosystems=("crypto",),
            price_cents=2500, payout_method="telegram"))
        await h.app.marketplace.review(provider.id, Review.APPROVE, 1)
        order = await h.app.marketplace.place(buyer, provider.id)
        await h.app.orders.transition(order.id, Status.PAID, cause="bench")
        await h.app.products.fulfillers["provider_sub"].fulfil(await h.app.orders.get(order.id))


def calls(cp: CryptoPayStandIn) -> dict[str, int]:
    return {name: len(cp.calls_of(name)) for name in ("transfer", "getTransfers")}


async def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with CryptoPayStandIn() as cp:
            cp.balance = lambda: {"USDT": 10 ** 9}  # a wallet big enough for every payout
            settings = make_settings(database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
                                     crypto_pay_token=cp.token, crypto_pay_api_url=cp.base_url, payout_hold_days=0)
            h = await Harness(settings).start()
            try:
                started = time.perf_counter()
                await seed(h, SELLERS, 100_000)
                print(f"seeded {SELLERS} sellers with a paid month in {time.perf_counter() - started:.1f} s")
                started = time.perf_counter()
                await h.app.earnings.release_due()  # the hourly job's work, done before the run
                print(f"released {SELLERS} shares past the hold in {time.perf_counter() - started:.1f} s")
                started = time.perf_counter()
                report = await h.app.payouts.run(1)
                took = time.perf_counter() - started
                print(f"payout run: {len(report.paid)} paid in {took:.1f} s "
                      f"({took / max(len(report.paid), 1) * 1000:.1f} ms each); Crypto Pay calls {calls(cp)}")

                await seed(h, SELLERS // 4, 200_000)
                before = calls(cp)
                run = asyncio.create_task(h.app.payouts.run(1))
                target = len(cp.transfers) + SELLERS // 12
                cp.on_transfer.append(lambda _t: run.cancel() if len(cp.transfers) == target else None)
                with contextlib.suppress(asyncio.CancelledError):
                    await run
                h.app.payouts.clock = lambda: utcnow() + timedelta(minutes=5)  # the dead run's claim has run out
                report = await h.app.payouts.run(1)
                after = calls(cp)
                per_user: dict[int, int] = {}
                for transfer in cp.transfers.values():
                    per_user[transfer["user_id"]] = per_user.get(transfer["user_id"], 0) + 1
                print(f"killed after {SELLERS // 12} of {SELLERS // 4}, run again: {len(report.paid)} paid; calls "
                      f"{ {k: after[k] - before[k] for k in after} }; paid twice: "
                      f"{sum(1 for c in per_user.values() if c > 1)}, sellers paid: {len(per_user)}")
            finally:
                await h.close()
