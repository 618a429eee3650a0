"""Property: whatever the order of webhooks, polls, duplicates, expiry, fulfilment faults,
restarts and double taps (the same order placed twice at once, its payment method tapped again,
alone or at the same moment), every order paid in time is fulfilled exactly once, every order
paid late waits for review, every unpaid order ends expired, and each order has one invoice."""

import asyncio
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db import migrate
from db.engine import Database
from services.checkout import CheckoutService
from services.orders import PaymentReport, Status
from tests.support.core import Core
from tests.support.payments import ScriptedProvider

ORDERS = 3
ACTIONS = st.sampled_from([
    "pay", "pay_stars", "webhook", "duplicate_webhook", "duplicate_stars", "poll", "expire", "tick",
    "work", "crash_mid_fulfilment", "restart", "flaky_fulfilment", "tap_again", "double_tap",
])
STEPS = st.lists(st.tuples(ACTIONS, st.integers(0, ORDERS - 1)), max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, stars=st.lists(st.booleans(), min_size=ORDERS, max_size=ORDERS))
def test_every_paid_order_is_fulfilled_exactly_once(steps, stars):
    asyncio.run(scenario(steps, stars))


async def scenario(steps, stars) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'p.db'}")
        await migrate.upgrade(db)
        try:
            await play(Core(db), steps, stars)
        finally:
            await db.close()


async def play(core: Core, steps, stars) -> None:
    core.provider = ScriptedProvider(core.clock, name="cryptopay")  # a method checkout offers
    core.restart()
    checkout = CheckoutService(core.orders, {"cryptopay": core.provider})
    orders, invoices, charges = [], [], {}
    paid_at: dict[int, object] = {}  # order index -> time the money arrived
    for i in range(ORDERS):
        twice = await asyncio.gather(core.order(user_id=100 + i, cents=500 + i),
                                     core.order(user_id=100 + i, cents=500 + i))  # a double tap on "buy"
        assert twice[0].id == twice[1].id
        orders.append(twice[0])
        if stars[i]:
            invoices.append(None)
            continue
        first, second = await asyncio.gather(*(checkout.start(twice[0].id, 100 + i, "cryptopay") for _ in "ab"))
        made = [r for r in (first, second) if r.problem is None]
        assert made and all(r.invoice.external_id == made[0].invoice.external_id for r in made)
        assert {r.problem for r in (first, second)} <= {None, "busy"}
        invoices.append(made[0].invoice.external_id)

    async def stars_invoice(i):  # Stars invoices are recorded as the bot sends them
        external_id = f"order:{orders[i].id}:n"
        await core.orders.add_invoice(orders[i].id, provider="stars", external_id=external_id,
                                      amount=Decimal(385 + i), asset="XTR", expires_at=orders[i].expires_at)
        return external_id

    for i in range(ORDERS):
        if stars[i]:
            invoices[i] = await stars_invoice(i)

    for action, i in steps:
        if action == "pay" and not stars[i] and i not in paid_at:
            core.provider.pay(invoices[i])
            paid_at[i] = core.clock()
        elif action == "pay_stars" and stars[i] and i not in paid_at:
            # Telegram charges only after our pre-checkout says yes
            if await core.orders.precheckout_problem("stars", invoices[i], 100 + i, Decimal(385 + i), "XTR") is None:
                charges[i] = PaymentReport("stars", invoices[i], f"charge-{i}", Decimal(385 + i), "XTR")
                await core.processor.record(charges[i])
                paid_at[i] = core.clock()
        elif action in ("webhook", "duplicate_webhook") and not stars[i]:
            body = f'{{"invoice_id": "{invoices[i]}"}}'.encode()
            for _ in range(2 if action == "duplicate_webhook" else 1):
                await core.processor.handle_webhook("cryptopay", {"x-test-signature": "ok"}, body)
        elif action in ("tap_again", "double_tap") and not stars[i]:
            taps = await asyncio.gather(*(checkout.start(orders[i].id, 100 + i, "cryptopay")
                                          for _ in range(2 if action == "double_tap" else 1)))
            for result in taps:  # the live invoice again, or a refusal once the order is no longer pending
                assert result.problem in (None, "busy", "not_pending", "expired"), result.problem
                assert result.problem is not None or result.invoice.external_id == invoices[i]
        elif action == "duplicate_stars" and i in charges:
            await core.processor.record(charges[i])
        elif action == "poll":
            await core.processor.poll()
        elif action == "expire":
            await core.processor.expire()
        elif action == "tick":
            core.clock.advance(minutes=11)
        elif action == "work":
            await core.worker.run_once()
        elif action == "crash_mid_fulfilment":
            due = await core.worker._due(1)
            if due and await core.worker._claim(due[0][0]):
                core.restart()  # the process died holding the job
        elif action == "restart":
            core.restart()
            await core.processor.reconcile()
        elif action == "flaky_fulfilment":
            core.product.fail_next += 1

    # Let time pass and everything settle, as a running bot would.
    core.clock.advance(hours=1)
    core.product.fail_next = 0
    for i in paid_at:  # the provider's callback for each payment arrives in the end (polling stops
        if not stars[i]:  # asking once the provider reports an invoice expired)
            await core.processor.handle_webhook("cryptopay", {"x-test-signature": "ok"},
                                                f'{{"invoice_id": "{invoices[i]}"}}'.encode())
    await core.processor.reconcile()
    await core.drain()

    for i, order in enumerate(orders):
        final = Status((await core.orders.get(order.id)).status)
        if i in paid_at and paid_at[i] <= order.expires_at:
            assert final == Status.FULFILLED, (i, final)
            assert core.product.created.get(order.id) == 1
            events = [e for e in await core.orders.events(order.id) if e.to_status == "fulfilled"]
            assert len(events) == 1
        elif i in paid_at:
            assert final == Status.PAID_LATE, (i, final)
            assert order.id not in core.product.created
        else:
            assert final == Status.EXPIRED, (i, final)
            assert order.id not in core.product.created
        assert len(await core.orders.payments(order.id)) == (1 if i in paid_at else 0)
        if not stars[i]:  # one invoice at the provider and in the database, however often it was tapped
            assert [k for k in core.provider.invoices if k.startswith(f"inv-{order.id}-")] == [invoices[i]]
            assert [v.external_id for v in await core.orders.invoices(order.id)] == [invoices[i]]
