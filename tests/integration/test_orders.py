"""The payment core: one state machine, payments counted once, fulfilment queued in the same
transaction and resumed after a crash."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from db.models import FulfilmentJob
from services.orders import TRANSITIONS, PaymentReport, Status, TransitionRefused
from tests.support.core import ADMIN, Core


@pytest.fixture
async def core(database):
    return Core(database)


async def status(core, order_id) -> Status:
    return Status((await core.orders.get(order_id)).status)


async def test_paid_by_webhook_is_fulfilled_once_with_receipt(core):
    order = await core.order(user_id=5)
    invoice = await core.invoice(order)
    core.provider.pay(invoice)
    body = f'{{"invoice_id": "{invoice}"}}'.encode()
    assert await core.processor.handle_webhook("fakepay", {"x-test-signature": "ok"}, body) == 200
    assert await core.processor.handle_webhook("fakepay", {"x-test-signature": "ok"}, body) == 200  # replay
    assert await status(core, order.id) == Status.PAID
    await core.drain()
    assert await status(core, order.id) == Status.FULFILLED
    assert core.product.created == {order.id: 1}
    texts = core.session.texts_to(5)
    assert texts[0].startswith(f"✅ Payment received for order #{order.id}")
    assert "Here is item" in texts[1] and f"Receipt: order #{order.id}" in texts[1] and "$9.99" in texts[1]
    events = [(e.from_status, e.to_status, e.cause) for e in await core.orders.events(order.id)]
    assert events == [(None, "pending", "created"), ("pending", "paid", "payment"),
                      ("paid", "fulfilled", "fulfilment")]


async def test_forged_webhook_changes_nothing(core):
    order = await core.order()
    invoice = await core.invoice(order)
    core.provider.pay(invoice)
    body = f'{{"invoice_id": "{invoice}"}}'.encode()
    assert await core.processor.handle_webhook("fakepay", {"x-test-signature": "forged"}, body) == 401
    assert await core.processor.handle_webhook("nosuchpay", {}, body) == 404
    assert await status(core, order.id) == Status.PENDING
    assert await core.orders.payments(order.id) == []


async def test_webhook_for_an_unpaid_invoice_does_not_count(core):
    """The notification says paid, the provider says not: the provider wins."""
    order = await core.order()
    invoice = await core.invoice(order)
    body = f'{{"invoice_id": "{invoice}"}}'.encode()
    assert await core.processor.handle_webhook("fakepay", {"x-test-signature": "ok"}, body) == 200
    assert await status(core, order.id) == Status.PENDING


async def test_provider_down_during_webhook_asks_for_retry_and_poll_catches_up(core):
    order = await core.order()
    invoice = await core.invoice(order)
    core.provider.pay(invoice)
    core.provider.down = True
    body = f'{{"invoice_id": "{invoice}"}}'.encode()
    assert await core.processor.handle_webhook("fakepay", {"x-test-signature": "ok"}, body) == 503
    await core.processor.poll()  # still down: logged, nothing changes
    assert await status(core, order.id) == Status.PENDING
    core.provider.down = False
    await core.processor.poll()
    assert await status(core, order.id) == Status.PAID


async def test_poll_batches_a_thousand_invoices_into_ten_requests(core):
    for n in range(1000):
        order = await core.order(user_id=1000 + n % 7)
        await core.invoice(order)
    await core.processor.poll()
    assert core.provider.fetch_requests == 10


async def test_start_up_asks_the_provider_about_each_open_invoice_once(core):
    for n in range(3):
        await core.invoice(await core.order(user_id=1100 + n, ttl_minutes=1))
    for remote in core.provider.invoices.values():
        remote.expires_at += timedelta(hours=1)  # the provider still takes payment; the orders are due
    core.clock.advance(minutes=5)  # the process was down while they ran out
    await core.processor.reconcile()
    assert core.provider.fetch_requests == 1
    assert {await status(core, order_id) for order_id in (1, 2, 3)} == {Status.EXPIRED}


async def test_partial_then_top_up_then_paid(core):
    order = await core.order(user_id=6, cents=1000)
    invoice = await core.invoice(order)
    core.provider.pay(invoice, Decimal("4"))
    await core.processor.poll()
    assert await status(core, order.id) == Status.PAID_PARTIAL
    assert "We received $4.00 of $10.00" in core.session.texts_to(6)[-1]
    assert f"Order #{order.id} is 🟡 partly paid" in core.session.texts_to(ADMIN)[-1]
    await core.processor.poll()  # the same partial payment seen again: counted once
    assert len(await core.orders.payments(order.id)) == 1
    core.provider.pay(invoice, Decimal("6"))
    await core.processor.poll()
    assert await status(core, order.id) == Status.PAID
    await core.drain()
    assert await status(core, order.id) == Status.FULFILLED


async def test_overpayment_is_delivered_and_flagged(core):
    order = await core.order(user_id=7, cents=1000)
    invoice = await core.invoice(order)
    core.provider.pay(invoice, Decimal("15"))
    await core.processor.poll()
    assert await status(core, order.id) == Status.PAID_OVER
    assert "will return the overpaid $5.00" in core.session.texts_to(7)[-1]
    assert "overpaid" in core.session.texts_to(ADMIN)[-1]
    await core.drain()
    assert await status(core, order.id) == Status.FULFILLED


async def test_expiry_then_late_payment_goes_to_review(core):
    order = await core.order(user_id=8)
    invoice = await core.invoice(order)
    core.clock.advance(minutes=31)
    await core.processor.expire()
    assert await status(core, order.id) == Status.EXPIRED
    assert "expired before we saw a payment" in core.session.texts_to(8)[-1]
    await core.processor.poll()  # the provider has closed it: polling stops asking
    core.provider.pay(invoice)  # on-chain money can still arrive; the provider's callback says so
    body = f'{{"invoice_id": "{invoice}"}}'.encode()
    assert await core.processor.handle_webhook("fakepay", {"x-test-signature": "ok"}, body) == 200
    assert await status(core, order.id) == Status.PAID_LATE
    await core.drain()
    assert core.product.created == {}  # held for a person to decide
    await core.orders.transition(order.id, Status.PAID, cause="admin_accept")
    await core.drain()
    assert core.product.created == {order.id: 1}


async def test_fulfilment_retries_with_backoff_then_succeeds(core):
    order = await core.order(user_id=9)
    invoice = await core.invoice(order)
    core.provider.pay(invoice)
    await core.processor.poll()
    core.product.fail_next = 2
    assert await core.worker.run_once() == 1
    assert await core.worker.run_once() == 0  # backing off
    await core.drain()
    assert await status(core, order.id) == Status.FULFILLED and core.product.created == {order.id: 1}


async def test_fulfilment_gives_up_honestly(core):
    order = await core.order(user_id=10)
    invoice = await core.invoice(order)
    core.provider.pay(invoice)
    await core.processor.poll()
    core.product.fail_next = 99
    await core.drain()
    assert await status(core, order.id) == Status.FULFIL_FAILED
    assert "could not deliver it" in core.session.texts_to(10)[-1]
    assert f"Fulfilment failed for order #{order.id}" in core.session.texts_to(ADMIN)[-1]
    refunded = await core.orders.refund(order.id, cause="admin_refund")
    assert len(refunded) == 1 and await status(core, order.id) == Status.REFUNDED


async def test_crash_between_paid_and_fulfilled_is_fulfilled_once_after_restart(core):
    order = await core.order(user_id=11)
    invoice = await core.invoice(order)
    core.provider.pay(invoice)
    await core.processor.poll()
    async with core.db.session() as s:
        job = await s.scalar(select(FulfilmentJob).where(FulfilmentJob.order_id == order.id))
    assert await core.worker._claim(job.id)  # the process takes the job... and dies
    core.restart()
    assert await core.worker.run_once() == 0  # the lease would hold it for minutes...
    assert await core.worker.recover() == 1  # ...but a starting process takes it back at once
    assert await core.worker.run_once() == 1
    assert await status(core, order.id) == Status.FULFILLED and core.product.created == {order.id: 1}


async def test_duplicate_payment_ids_count_once(core):
    order = await core.order()
    invoice = await core.invoice(order)
    report = PaymentReport("fakepay", invoice, "charge-1", Decimal("9.99"), "USD")
    first = await core.processor.record(report)
    again = await core.processor.record(report)
    assert (first.kind, again.kind) == ("applied", "duplicate")
    assert len(await core.orders.payments(order.id)) == 1


async def test_second_payment_for_a_paid_order_alerts_admins(core):
    order = await core.order(user_id=12)
    invoice = await core.invoice(order)
    await core.processor.record(PaymentReport("fakepay", invoice, "a", Decimal("9.99"), "USD"))
    outcome = await core.processor.record(PaymentReport("fakepay", invoice, "b", Decimal("9.99"), "USD"))
    assert outcome.kind == "extra_payment" and await status(core, order.id) == Status.PAID
    assert f"Extra payment for order #{order.id}" in core.session.texts_to(ADMIN)[-1]


async def test_payment_for_unknown_invoice_is_ignored(core):
    outcome = await core.processor.record(PaymentReport("fakepay", "nope", "x", Decimal(1), "USD"))
    assert outcome.kind == "unknown_invoice"


@pytest.mark.parametrize(("start", "target"), [
    (s, t) for s in Status for t in Status if t not in TRANSITIONS[s] and t != s])
async def test_impossible_transitions_are_refused(core, start, target):
    order = await core.order()
    path = {Status.PENDING: [], Status.PAID: [Status.PAID], Status.PAID_OVER: [Status.PAID_OVER],
            Status.PAID_PARTIAL: [Status.PAID_PARTIAL], Status.EXPIRED: [Status.EXPIRED],
            Status.CANCELLED: [Status.CANCELLED], Status.PAID_LATE: [Status.EXPIRED, Status.PAID_LATE],
            Status.FULFILLED: [Status.PAID, Status.FULFILLED], Status.FULFIL_FAILED: [Status.PAID,
            Status.FULFIL_FAILED], Status.REFUNDED: [Status.PAID, Status.REFUNDED]}[start]
    for step in path:
        await core.orders.transition(order.id, step, cause="setup")
    with pytest.raises(TransitionRefused):
        await core.orders.transition(order.id, target, cause="test")
    assert await status(core, order.id) == start


async def test_precheckout_rules(core):
    order = await core.order(user_id=13)
    invoice = await core.invoice(order)
    check = core.orders.precheckout_problem
    assert await check("fakepay", invoice, 13, Decimal("9.99"), "USD") is None
    assert await check("fakepay", invoice, 14, Decimal("9.99"), "USD") == "not_yours"
    assert await check("fakepay", invoice, 13, Decimal("9.98"), "USD") == "amount"
    assert await check("fakepay", "forged", 13, Decimal("9.99"), "USD") == "unknown"
    core.clock.advance(minutes=31)
    assert await check("fakepay", invoice, 13, Decimal("9.99"), "USD") == "expired"
    await core.processor.expire()
    assert await check("fakepay", invoice, 13, Decimal("9.99"), "USD") == "not_pending"


async def test_paid_just_before_expiry_but_noticed_after_is_on_time(core):
    """Found by the property test: the provider's payment time decides lateness, not ours."""
    order = await core.order(user_id=15)
    invoice = await core.invoice(order)
    core.clock.advance(minutes=29)
    core.provider.pay(invoice)  # paid in time...
    core.clock.advance(minutes=5)
    await core.processor.expire()  # ...but the expiry job runs before any poll or webhook
    assert await status(core, order.id) == Status.PAID
    await core.drain()
    assert await status(core, order.id) == Status.FULFILLED


async def test_a_newer_stars_invoice_supersedes_the_older_one(core):
    order = await core.order(user_id=16)
    for payload in ("order:1:a", "order:1:b"):
        await core.orders.add_invoice(order.id, provider="stars", external_id=payload, amount=Decimal(769),
                                      asset="XTR", expires_at=order.expires_at)
    check = core.orders.precheckout_problem
    assert await check("stars", "order:1:a", 16, Decimal(769), "XTR") == "not_pending"
    assert await check("stars", "order:1:b", 16, Decimal(769), "XTR") is None


async def test_a_restart_retries_backed_off_deliveries_at_once(core):
    order = await core.order(user_id=17)
    invoice = await core.invoice(order)
    core.provider.pay(invoice)
    await core.processor.poll()
    core.product.fail_next = 3
    for attempt in range(3):  # three failures, backing off 1 s, 2 s, then 4 s
        if attempt:
            core.clock.advance(seconds=2.5)
        assert await core.worker.run_once() == 1
    core.product.fail_next = 0
    core.restart()
    assert await core.worker.run_once() == 0  # still backing off...
    assert await core.worker.recover() == 1  # ...until the new process starts
    assert await core.worker.run_once() == 1
    assert await status(core, order.id) == Status.FULFILLED
