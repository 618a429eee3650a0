"""Changing plan while one runs (issue 14 item 4): an upgrade credits the unused value of the lower
plan exactly (prorated, rounded up to the cent, recorded on the order as base, credit and cause)
and ends it; a credit worth more than the new plan keeps the lower time after the higher plan; a
downgrade starts when the higher plan ends. Real database, virtual clock."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from presentation.plans import PlanTexts
from services.channel import PrivateChannel
from services.orders import Status
from services.plan_sales import PlanFulfiller, PlanShop
from services.subscriptions import SubscriptionService
from tests.support.core import Core

USER = 55


@pytest.fixture
async def shop(database):
    core = Core(database)
    await core.user(USER)
    core.shop = PlanShop(core.orders, ttl=timedelta(minutes=30))
    core.subs = SubscriptionService(database, clock=core.clock)
    core.fulfiller = PlanFulfiller(core.subs, PrivateChannel(core.bot, None), PlanTexts(ZoneInfo("UTC")))
    return core


async def buy(core, plan: str, period: str = "month"):
    placed = await core.shop.place(USER, plan, period)
    await core.orders.transition(placed.order.id, Status.PAID, cause="test")
    order = await core.orders.get(placed.order.id)
    delivery = await core.fulfiller.fulfil(order)
    await core.orders.transition(order.id, Status.FULFILLED, cause="test")
    return order, delivery


async def periods(core, plan: str):
    from sqlalchemy import select

    from db.models_subscriptions import Subscription
    async with core.db.session() as session:
        rows = await session.scalars(select(Subscription).where(Subscription.user_id == USER,
                                                                Subscription.plan == plan,
                                                                Subscription.ends_at > Subscription.starts_at)
                                     .order_by(Subscription.starts_at))
        return [(r.starts_at, r.ends_at) for r in rows]


async def test_upgrade_credits_the_unused_lower_plan_exactly_and_ends_it(shop):
    await buy(shop, "basic")
    shop.clock.advance(days=10)
    pro = (await shop.shop.place(USER, "pro", "month")).order
    # 20 of 30 days unused: 999 × 20 / 30 = 666 cents exactly
    assert pro.details["base_cents"] == 2999 and pro.amount_cents == 2999 - 666
    assert pro.details["credit"] == {"cents": 666, "exact": "666", "cause": "upgrade", "from_plan": "basic",
                                     "periods": pro.details["credit"]["periods"]}
    await shop.orders.transition(pro.id, Status.CANCELLED, cause="test")
    shop.clock.advance(days=7, seconds=13)  # 12 days 23:59:47 left, counted from the minute: 13 days
    odd = (await shop.shop.place(USER, "pro", "month")).order
    assert odd.details["credit"]["cents"] == 433  # 999 × 13/30 = 432.9: rounded up, the buyer's way
    await shop.orders.transition(odd.id, Status.PAID, cause="test")
    await shop.fulfiller.fulfil(await shop.orders.get(odd.id))
    now = shop.clock()
    assert (await periods(shop, "basic"))[-1][1] == now  # its value went into the credit
    assert (await periods(shop, "pro")) == [(now, now + timedelta(days=30))]
    assert (await shop.subs.current(USER)).plan.code == "pro"


async def test_a_credit_worth_more_than_the_new_plan_keeps_the_time_after_it(shop):
    await buy(shop, "basic", "year")  # $99.90 for 365 days
    shop.clock.advance(days=5)
    order, _ = await buy(shop, "pro")  # $29.99: the credit (~$98.53) would pay for all of it
    assert "credit" not in order.details and order.amount_cents == 2999
    assert order.details["plan_change"]["mode"] == "after"
    now = shop.clock()
    pro_end = now + timedelta(days=30)
    assert await periods(shop, "basic") == [(now - timedelta(days=5), now), (pro_end, pro_end + timedelta(days=360))]
    shop.clock.advance(days=31)
    assert (await shop.subs.current(USER)).plan.code == "basic"


async def test_a_downgrade_starts_when_the_higher_plan_ends(shop, i18n_context):
    await buy(shop, "pro")
    pro_end = shop.clock() + timedelta(days=30)
    shop.clock.advance(days=3)
    placed = (await shop.shop.place(USER, "basic", "month")).order
    assert placed.details["plan_change"]["mode"] == "downgrade" and placed.amount_cents == 999
    await shop.orders.transition(placed.id, Status.CANCELLED, cause="test")
    _order, delivery = await buy(shop, "basic")
    assert await periods(shop, "basic") == [(pro_end, pro_end + timedelta(days=30))]
    assert "it starts" in delivery.text()
    assert (await shop.subs.current(USER)).plan.code == "pro"
