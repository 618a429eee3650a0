"""Property (issue 14): refunds around an upgrade never pay the credited value twice. Basic is bought,
some days pass, Pro is bought with Basic's unused value as credit. Whatever refunds an admin then
tries, in whatever order, with restarts and retries: Basic is never refunded while Pro still holds its
credit; refunding Pro gives Basic's credited time back (exactly, once); refunding both leaves no paid
time; and no more money goes back than was paid."""

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from db import migrate
from db.engine import Database
from presentation.plans import PlanTexts
from processing.refunds import RefundProblem, RefundService
from services.channel import PrivateChannel
from services.orders import Status
from services.plan_sales import PlanFulfiller, PlanShop
from services.subscriptions import SubscriptionService
from tests.conftest import ADMIN_ID
from tests.integration.test_refund_property import PayingBackProvider
from tests.support.core import Core

USER = 301
ACTIONS = st.lists(st.sampled_from(["refund_basic", "refund_pro", "advance", "restart", "sweep",
                                    "provider_down", "provider_up"]), max_size=12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days_used=st.integers(0, 29), steps=ACTIONS)
@example(days_used=10, steps=["refund_basic", "refund_pro", "refund_basic"])
@example(days_used=0, steps=["provider_down", "refund_pro", "restart", "refund_pro", "sweep", "refund_basic"])
def test_refunds_around_an_upgrade_never_pay_the_credit_twice(days_used, steps):
    asyncio.run(scenario(days_used, steps))


async def scenario(days_used, steps) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'u.db'}")
        await migrate.upgrade(db)
        try:
            await play(Core(db), days_used, steps)
        finally:
            await db.close()


async def play(core: Core, days_used: int, steps) -> None:
    provider = PayingBackProvider(core.clock)
    core.provider = provider
    core.restart()
    subscriptions = SubscriptionService(core.db, clock=core.clock)
    fulfiller = PlanFulfiller(subscriptions, PrivateChannel(core.bot, None, clock=core.clock),
                              PlanTexts(ZoneInfo("UTC")))
    shop = PlanShop(core.orders, ttl=timedelta(minutes=30))
    await core.user(USER)
    await core.user(ADMIN_ID)

    async def buy(plan):
        order = (await shop.place(USER, plan, "month")).order
        provider.pay(await core.invoice(order))
        await core.processor.poll()
        await fulfiller.fulfil(await core.orders.get(order.id))
        await core.orders.transition(order.id, Status.FULFILLED, cause="test")
        return await core.orders.get(order.id)

    def service():
        return RefundService(core.db, core.orders, core.notifier, {provider.name: provider},
                             {"plan": fulfiller}, clock=core.clock)

    basic = await buy("basic")
    core.clock.advance(days=days_used)
    pro = await buy("pro")
    unused = timedelta(days=30 - days_used)  # what the credit consumed of Basic
    assert pro.details["credit"]["cents"] > 0
    refunds, refunded, pro_refunded_at = service(), [], None
    for action in steps:
        if action in ("refund_basic", "refund_pro"):
            order = basic if action == "refund_basic" else pro
            result = await refunds.refund(order.id, admin_id=ADMIN_ID)
            if action == "refund_basic" and pro.id not in refunded:
                assert not result.ok and result.refusal is RefundProblem.CREDITED  # Pro holds its value
                assert result.credited_to == pro.id
            if result.ok:
                refunded.append(order.id)
                if order is pro:
                    pro_refunded_at = core.clock()
        elif action == "advance":
            core.clock.advance(days=3)
        elif action == "restart":
            core.restart()
            refunds = service()
        elif action == "sweep":
            await refunds.sweep()
        else:
            provider.down = action == "provider_down"

    provider.down = False
    core.clock.advance(minutes=5)
    await refunds.sweep()
    now = core.clock()
    current = await subscriptions.current(USER)
    if basic.id in refunded:
        assert not current.plan.is_paid and refunded.index(pro.id) < refunded.index(basic.id)
    elif pro.id in refunded:  # Basic's credited time is back, from Pro's refund on
        expected_end = pro_refunded_at + unused
        if expected_end > now:
            assert current.plan.code == "basic" and current.ends_at == expected_end
        else:
            assert not current.plan.is_paid
    else:
        assert current.plan.code == "pro"
    sent = sum(amount for _user, amount in provider.sent.values())
    paid = sum(o.amount_cents for o in (basic, pro) if o.id in refunded)
    assert sent * 100 == paid  # each refunded order's payment once, nothing more
