"""Leases renewed by a heartbeat (issue 18): work that runs longer than its lease keeps it, a worker that died
has its work taken over once the lease ran out, and a late renewal never takes back what was taken over.

Real SQLite and PostgreSQL; leases shortened to 0.9 s (renewed every 0.3 s) so the tests wait seconds, not
the 30 s of production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from db.base import utcnow
from db.models import FulfilmentJob, Order
from db.models_refunds import Refund
from db.models_signals import Outbox
from processing.fulfilment import FulfilmentWorker
from processing.signal_delivery import SignalDelivery
from services.leases import LEASE, Heartbeat, heartbeat, renew_every
from services.orders import OrderService, Status
from services.products import Delivery, TakenBack
from services.signals import SignalIn, validate
from services.users import UserService
from tests.conftest import make_settings
from tests.support.harness import Harness

SHORT = timedelta(seconds=0.9)


def test_production_leases_are_short_and_renewed_three_times_per_lease():
    assert timedelta(seconds=30) == LEASE and renew_every(LEASE) == 10


async def test_the_heartbeat_stops_when_the_lease_is_lost_and_rides_out_a_failed_renewal():
    answers = iter([RuntimeError("database unreachable"), True, False, True])
    calls = 0

    async def renew() -> bool:
        nonlocal calls
        calls += 1
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with heartbeat(renew, timedelta(seconds=0.06), what="test") as beat:
        await asyncio.sleep(0.3)
    assert isinstance(beat, Heartbeat)
    assert beat.lost and beat.renewals == 1 and calls == 3  # failed, renewed, lost: then no more renewals


async def test_the_heartbeat_stops_with_its_block():
    calls = 0

    async def renew() -> bool:
        nonlocal calls
        calls += 1
        return True

    async with heartbeat(renew, timedelta(seconds=0.06), what="test"):
        await asyncio.sleep(0.1)
    stopped_at = calls
    await asyncio.sleep(0.1)
    assert stopped_at >= 1 and calls == stopped_at


# -- fulfilment -------------------------------------------------------------------------------------------------


class SlowProduct:
    """A fulfiller that waits for `release` (a slow upstream), counting the runs that started."""

    product = "test"

    def __init__(self) -> None:
        self.runs = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def fulfil(self, order: Order) -> Delivery:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        return Delivery(text=lambda: f"Here is item {order.id}", record={"item": order.id})

    def takes_back(self, order: Order) -> str:
        return "nothing"

    async def revoke(self, order: Order) -> TakenBack:
        return TakenBack(text=lambda: "taken back", record={})


class Deliveries:
    """Where the worker hands what it delivered (the chat, in the app)."""

    def __init__(self) -> None:
        self.delivered: list[int] = []

    async def deliver(self, order: Order, delivery: Delivery) -> None:
        self.delivered.append(order.id)

    async def fulfilment_failed(self, order: Order, error: str) -> None:
        raise AssertionError(error)


async def paid_order(database) -> int:
    await UserService(database).seen(7, username=None, first_name="Ann", language_code="en")
    orders = OrderService(database)
    order = await orders.create(user_id=7, product="test", product_ref="item", title="Item", amount_cents=500,
                                ttl=timedelta(minutes=30))
    await orders.transition(order.id, Status.PAID, cause="test")
    return order.id


def worker(database, product, deliveries) -> FulfilmentWorker:
    return FulfilmentWorker(database, OrderService(database), {"test": product}, deliveries, lease=SHORT)


async def job(database) -> FulfilmentJob:
    async with database.session() as session:
        return await session.scalar(select(FulfilmentJob))


async def order_status(database, order_id: int) -> str:
    async with database.session() as session:
        return await session.scalar(select(Order.status).where(Order.id == order_id))


async def test_a_slow_fulfilment_keeps_its_job_past_its_lease_and_no_second_worker_takes_it(database):
    order_id = await paid_order(database)
    product, deliveries = SlowProduct(), Deliveries()
    first, second = worker(database, product, deliveries), worker(database, product, deliveries)
    running = asyncio.create_task(first.run_once())
    await asyncio.wait_for(product.started.wait(), 5)

    deadline = time.monotonic() + 2.5 * SHORT.total_seconds()  # well past the lease it was claimed with
    while time.monotonic() < deadline:
        assert await second.run_once() == 0  # the job is renewed: never due for another worker
        await asyncio.sleep(0.1)
    assert (await job(database)).lease_until > utcnow()

    product.release.set()
    assert await running == 1
    assert product.runs == 1 and deliveries.delivered == [order_id]
    assert await order_status(database, order_id) == Status.FULFILLED
    assert (await job(database)).status == "done"


async def test_a_dead_workers_job_is_taken_over_once_its_lease_ran_out(database):
    order_id = await paid_order(database)
    product, deliveries = SlowProduct(), Deliveries()
    first = worker(database, product, deliveries)
    dying = asyncio.create_task(first.run_once())
    await asyncio.wait_for(product.started.wait(), 5)
    dying.cancel()  # the replica dies: no more renewals, the job stays `running` with its lease
    with pytest.raises(asyncio.CancelledError):
        await dying
    died_at = time.monotonic()
    assert (await job(database)).status == "running"

    product.release.set()  # the upstream answers the next try at once
    second = worker(database, product, deliveries)
    assert await second.run_once() == 0  # its lease still runs: not taken yet
    while not await second.run_once():
        assert time.monotonic() - died_at < SHORT.total_seconds() + 2, "never taken over"
        await asyncio.sleep(0.05)
    assert time.monotonic() - died_at >= SHORT.total_seconds() * 0.9  # not before the lease ran out
    assert deliveries.delivered == [order_id] and product.runs == 2
    assert await order_status(database, order_id) == Status.FULFILLED


async def test_a_late_renewal_does_not_take_back_a_fulfilment_job_taken_over(database):
    await paid_order(database)
    product, deliveries = SlowProduct(), Deliveries()
    stalled, other = worker(database, product, deliveries), worker(database, product, deliveries)
    [(job_id, _order_id)] = await stalled._due(5)
    attempt = await stalled._claim(job_id)
    async with database.transaction() as session:  # it stalled (a long pause) until its lease ran out
        await session.execute(update(FulfilmentJob).values(lease_until=utcnow() - timedelta(seconds=1)))
    taken = await other._claim(job_id)
    assert taken == attempt + 1
    lease_of_the_new_holder = (await job(database)).lease_until

    beat = Heartbeat(lambda: stalled._renew(job_id, attempt), 0.01, what="stalled")
    beat.start()
    await asyncio.sleep(0.1)
    await beat.stop()
    assert beat.lost and beat.renewals == 0
    row = await job(database)
    assert row.attempts == taken and row.lease_until == lease_of_the_new_holder


async def test_a_worker_that_lost_its_job_leaves_the_row_to_the_worker_that_took_it_over(database):
    order_id = await paid_order(database)
    product, deliveries = SlowProduct(), Deliveries()
    stalled = worker(database, product, deliveries)
    first_run = asyncio.create_task(stalled.run_once())
    await asyncio.wait_for(product.started.wait(), 5)
    async with database.transaction() as session:  # it stalled past its lease; another worker takes the job
        await session.execute(update(FulfilmentJob).values(lease_until=utcnow() - timedelta(seconds=1)))
    product.started.clear()
    first_release, product.release = product.release, asyncio.Event()  # the second run waits on its own
    taker = worker(database, product, deliveries)
    second_run = asyncio.create_task(taker.run_once())
    await asyncio.wait_for(product.started.wait(), 5)
    assert (await job(database)).attempts == 2

    first_release.set()
    assert await first_run == 1  # the stalled worker delivered (the one duplicate a stall can cost)...
    row = await job(database)
    assert (row.status, row.attempts) == ("running", 2)  # ...but leaves the job to its new holder
    assert await order_status(database, order_id) == Status.FULFILLED

    product.release.set()
    assert await second_run == 1
    assert (await job(database)).status == "done"
    assert product.runs == 2


# -- signal fan-out ---------------------------------------------------------------------------------------------

USERS = (501, 502, 503)


@pytest.fixture
async def h(database_url) -> AsyncIterator[Harness]:
    harness = await Harness(make_settings(database_url=database_url)).start()
    for uid in USERS:
        await harness.users.seen(uid, username=None, first_name="U", language_code="en")
        await harness.app.subscriptions.add_time(uid, "basic", 30, source="grant")
    await harness.app.signals.ingest(validate(SignalIn, {
        "id": "lease-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
        "take_profits": ["150"], "stop_loss": "136"}))
    yield harness
    await harness.close()


async def outbox(h) -> list[Outbox]:
    async with h.db.session() as session:
        return list(await session.scalars(select(Outbox).where(Outbox.user_id.in_(USERS)).order_by(Outbox.id)))


def slow_telegram(h) -> tuple[asyncio.Event, asyncio.Event, list[int]]:
    """Sends wait for `release` (Telegram answering slowly); returns (started, release, chats answered)."""
    started, release, answered = asyncio.Event(), asyncio.Event(), []
    send = h.session.make_request

    async def slow(bot, method, **kwargs):
        if type(method).__name__ == "SendMessage":
            started.set()
            await release.wait()
            answered.append(method.chat_id)
        return await send(bot, method, **kwargs)

    h.session.make_request = slow
    return started, release, answered


async def test_a_slow_fan_out_keeps_its_rows_past_their_lease_and_a_second_worker_sends_none(h):
    assert len(await outbox(h)) == len(USERS)
    started, release, answered = slow_telegram(h)
    first = SignalDelivery(h.db, h.bot, h.app.i18n, lease=SHORT)
    second = SignalDelivery(h.db, h.bot, h.app.i18n, lease=SHORT)
    running = asyncio.create_task(first.run_once())
    await asyncio.wait_for(started.wait(), 5)

    deadline = time.monotonic() + 2.5 * SHORT.total_seconds()
    while time.monotonic() < deadline:
        assert await second.run_once() == 0
        await asyncio.sleep(0.1)
    rows = await outbox(h)
    assert {r.status for r in rows} == {"sending"} and all(r.lease_until > utcnow() for r in rows)

    release.set()
    assert await running == len(USERS)
    assert sorted(answered) == sorted(USERS)  # each user once
    assert {r.status for r in await outbox(h)} == {"sent"}


async def test_a_dead_fan_out_workers_rows_are_taken_over_after_their_lease_and_sent_once(h):
    started, release, answered = slow_telegram(h)
    first = SignalDelivery(h.db, h.bot, h.app.i18n, lease=SHORT)
    dying = asyncio.create_task(first.run())
    await asyncio.wait_for(started.wait(), 5)
    dying.cancel()  # killed mid-send: Telegram never got these requests
    with pytest.raises(asyncio.CancelledError):
        await dying
    died_at = time.monotonic()
    release.set()

    second = SignalDelivery(h.db, h.bot, h.app.i18n, lease=SHORT)
    assert await second.run_once() == 0  # their lease still runs
    handled = 0
    while handled < len(USERS):
        handled += await second.run_once()
        assert time.monotonic() - died_at < SHORT.total_seconds() + 2, "never taken over"
        await asyncio.sleep(0.05)
    assert sorted(answered) == sorted(USERS)
    assert {r.status for r in await outbox(h)} == {"sent"}


async def test_a_late_renewal_does_not_take_back_outbox_rows_taken_over(h):
    stalled = SignalDelivery(h.db, h.bot, h.app.i18n, lease=SHORT)
    jobs = await stalled._claim()
    assert len(jobs) == len(USERS)
    async with h.db.transaction() as session:  # stalled until the lease ran out; another worker claims them
        await session.execute(update(Outbox).values(lease_until=utcnow() - timedelta(seconds=1)))
    other = SignalDelivery(h.db, h.bot, h.app.i18n, lease=SHORT)
    taken = await other._claim()
    before = {r.id: (r.claim, r.lease_until) for r in await outbox(h)}

    assert await stalled._renew()  # the stalled worker's heartbeat beats again...
    assert {r.id: (r.claim, r.lease_until) for r in await outbox(h)} == before  # ...and changes nothing
    assert {r.claim for r in await outbox(h)} == {taken[0].claim} and not stalled._held


async def test_a_slow_webhook_receiver_keeps_the_batch_with_its_worker_and_gets_each_delivery_once(database_url):
    from aiohttp import web

    from db.models_webhooks import ApiWebhookDelivery
    from processing.webhook_delivery import WebhookWorker

    answered, release, posted = asyncio.Event(), asyncio.Event(), []

    async def slow_receiver(request: web.Request) -> web.Response:
        posted.append(request.headers["X-Webhook-Id"])
        answered.set()
        await release.wait()
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", slow_receiver)
    runner = web.AppRunner(receiver)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    h = await Harness(make_settings(database_url=database_url, api_webhook_allow_private=True)).start()
    first = WebhookWorker(h.db, h.app.webhooks, h.app.notifier, lease=SHORT)
    second = WebhookWorker(h.db, h.app.webhooks, h.app.notifier, lease=SHORT)
    try:
        await h.users.seen(31, username=None, first_name="Dev", language_code="en")
        await h.app.subscriptions.add_time(31, "pro", 30, source="test")
        await h.app.webhooks.register(31, f"http://127.0.0.1:{runner.addresses[0][1]}/hook")
        await h.app.signals.ingest(validate(SignalIn, {
            "id": "hook-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
            "take_profits": ["150"], "stop_loss": "136"}))
        running = asyncio.create_task(first.run_once())
        await asyncio.wait_for(answered.wait(), 5)
        deadline = time.monotonic() + 2.5 * SHORT.total_seconds()
        while time.monotonic() < deadline:
            assert await second.run_once() == 0  # renewed: not taken over while the receiver thinks
            await asyncio.sleep(0.1)
        release.set()
        assert await running == 1
        async with h.db.session() as session:
            statuses = list(await session.scalars(select(ApiWebhookDelivery.status)))
        assert statuses == ["delivered"] and len(posted) == 1
    finally:
        release.set()
        await first.close()
        await second.close()
        await h.close()
        await runner.cleanup()


# -- refunds ----------------------------------------------------------------------------------------------------


async def test_a_late_renewal_does_not_take_back_a_refund_taken_over(h):
    """The refund worker's lease: a slow provider keeps it; a renewal after a takeover finds nothing."""
    order_id = await paid_order(h.db)
    async with h.db.transaction() as session:
        session.add(Refund(order_id=order_id, kind="full", takeback="pending", created_at=utcnow(),
                           updated_at=utcnow()))
    refunds = h.app.services.refunds
    refunds.lease = SHORT
    async with h.db.session() as session:
        refund_id = await session.scalar(select(Refund.id))
    held = await refunds._lease(Refund, refund_id, Refund.takeback == "pending")
    async with refunds._heartbeat(Refund, refund_id, held, Refund.takeback == "pending") as beat:
        await asyncio.sleep(2 * SHORT.total_seconds())  # slow provider: still ours
        assert await refunds._lease(Refund, refund_id, Refund.takeback == "pending") is None
        assert beat.renewals >= 3 and not beat.lost
        async with h.db.transaction() as session:  # it stalls; the lease runs out; another worker takes it
            await session.execute(update(Refund).values(lease_until=utcnow() - timedelta(seconds=1)))
        other = await refunds._lease(Refund, refund_id, Refund.takeback == "pending")
        assert other is not None
        await asyncio.sleep(renew_every(SHORT) * 1.5)
        assert beat.lost
    async with h.db.session() as session:
        assert await session.scalar(select(Refund.lease_until)) == other[0]


# -- plan notices -----------------------------------------------------------------------------------------------


async def test_a_plan_notice_claim_is_renewed_taken_over_only_once_it_lapsed_and_never_taken_back(database):
    from services.plan_notices import REMIND_1D, Due, PlanNotices
    from tests.support.clock import Clock

    await UserService(database).seen(8, username=None, first_name="Bo", language_code="en")
    clock = Clock()
    notices = PlanNotices(database, clock=clock)
    item = Due(8, clock() + timedelta(hours=20), "basic", REMIND_1D)
    held = await notices.claim(item)
    assert held is not None
    clock.advance(seconds=20)
    held = await notices.renew(item, held)  # the sender's heartbeat
    assert held == clock()
    clock.advance(seconds=20)  # 40 s after the claim, 20 s after the renewal: still live
    assert await notices.claim(item) is None
    clock.advance(seconds=LEASE.total_seconds())  # the sender died: no renewal for a whole lease
    taken = await notices.claim(item)
    assert taken == clock()
    assert await notices.renew(item, held) is None  # the old sender's late beat takes nothing back
    assert await notices.renew(item, taken) == taken


# -- whale alerts -----------------------------------------------------------------------------------------------


async def test_whale_alerts_claimed_by_a_worker_are_renewed_and_a_late_renewal_takes_nothing_back(database):
    from decimal import Decimal

    from db.models_whales import WhaleAlert, WhaleFollow, WhaleTrade, WhaleWallet
    from services.whales import WhaleService

    await UserService(database).seen(9, username=None, first_name="Cy", language_code="en")
    now = utcnow()
    async with database.transaction() as session:
        wallet = WhaleWallet(address="0xabc", chain="eth")
        session.add(wallet)
        await session.flush()
        trade = WhaleTrade(external_id="t1", wallet_id=wallet.id, symbol="ETH", side="buy",
                           usd_value=Decimal("250000"), usd_cents=25_000_000, ts=now)
        follow = WhaleFollow(user_id=9, wallet_id=wallet.id, threshold_cents=0, created_at=now)
        session.add_all([trade, follow])
        await session.flush()
        session.add(WhaleAlert(follow_id=follow.id, user_id=9, trade_id=trade.id, queued_at=now))
    whales = WhaleService(database)
    [(alert, _trade, _wallet)] = await whales.claim_alerts(9, utcnow(), SHORT)
    held = alert.lease_until
    renewed = utcnow() + SHORT
    assert await whales.renew_alerts([alert.id], held, renewed)  # the sender's heartbeat
    assert await whales.claim_alerts(9, utcnow(), SHORT) == []  # live: not claimable

    later = renewed + timedelta(seconds=1)  # the sender stalled past its lease: another worker claims
    [(taken, _trade, _wallet)] = await whales.claim_alerts(9, later, SHORT)
    assert not await whales.renew_alerts([alert.id], renewed, later + timedelta(minutes=5))
    async with database.session() as session:
        assert await session.scalar(select(WhaleAlert.lease_until)) == taken.lease_until == later + SHORT
