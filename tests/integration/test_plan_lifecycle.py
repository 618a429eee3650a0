"""Reminders 3 days and 1 day before the paid time ends, each exactly once however often the job
runs; expiry drops the user to Free, removes them from the private channel and tells them how to
renew. The clock is injected."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from processing.subscriptions import SubscriptionLifecycle
from services.channel import PrivateChannel
from services.orders import Status
from services.plan_notices import PlanNotices
from services.subscriptions import SubscriptionService
from tests.support.core import Core

CHANNEL = -100555


@pytest.fixture
async def life(database):
    core = Core(database)
    for uid in (1, 2, 3):
        await core.user(uid)
    subs = SubscriptionService(database, clock=core.clock)
    job = SubscriptionLifecycle(subs, PlanNotices(database, clock=core.clock),
                                PrivateChannel(core.bot, CHANNEL, clock=core.clock), core.notifier,
                                ZoneInfo("UTC"), clock=core.clock)
    return core, subs, job


def texts(core, user_id):
    return core.session.texts_to(user_id)


async def run_twice(job):
    first = await job.run()
    second = await job.run()
    assert second == 0, "a second run must send nothing new"
    return first


async def test_reminders_then_expiry_each_once(life):
    core, subs, job = life
    await subs.add_time(1, "pro", 10, source="grant")  # ends 2026-12-01 12:00 UTC
    assert await run_twice(job) == 0 and texts(core, 1) == []

    core.clock.advance(days=6, hours=23)  # 3 days and an hour left: nothing yet
    assert await run_twice(job) == 0
    core.clock.advance(hours=2)  # inside 3 days
    assert await run_twice(job) == 1
    assert texts(core, 1) == [
        "⏰ Your <b>Pro</b> plan ends in 3 days, on 2026-12-01 12:00 UTC.\n"
        "Renew in /plans to keep your signals: the new time is added to what's left."]

    core.clock.advance(days=1)  # still more than a day left
    assert await run_twice(job) == 0
    core.clock.advance(days=1)  # 23 hours left
    assert await run_twice(job) == 1
    assert "ends within a day, on 2026-12-01 12:00 UTC" in texts(core, 1)[-1]
    assert len(texts(core, 1)) == 2

    core.clock.advance(hours=23)  # ended an hour ago
    assert await run_twice(job) == 1
    assert (await subs.current(1)).plan.code == "free"
    assert "has ended, so you're on the Free plan now" in texts(core, 1)[-1]
    assert "private channel has ended too" in texts(core, 1)[-1]
    assert "/plans" in texts(core, 1)[-1]
    [ban] = core.session.of("BanChatMember")
    [unban] = core.session.of("UnbanChatMember")
    assert (ban.chat_id, ban.user_id) == (CHANNEL, 1) and (unban.user_id, unban.only_if_banned) == (1, True)
    assert len(texts(core, 1)) == 3
    core.clock.advance(days=3)
    assert await run_twice(job) == 0


async def test_renewal_moves_the_end_and_gets_fresh_reminders(life):
    core, subs, job = life
    await subs.add_time(2, "basic", 2, source="grant")  # 2 days: the 3-day reminder at once
    assert await run_twice(job) == 1
    await subs.add_time(2, "basic", 30, source="grant")  # renewed: stacks to 32 days
    core.clock.advance(days=2, hours=1)  # the old end passed: no expiry, no removal
    assert await run_twice(job) == 0
    assert (await subs.current(2)).plan.code == "basic" and core.session.of("BanChatMember") == []
    core.clock.advance(days=29)  # 3 days before the new end
    assert await run_twice(job) == 1
    assert "on 2026-12-23 12:00 UTC" in texts(core, 2)[-1]


async def test_a_user_who_blocked_the_bot_is_removed_but_not_messaged(life):
    core, subs, job = life
    await subs.add_time(3, "enterprise", 1, source="grant")
    await core.users.mark_blocked(3)
    core.clock.advance(days=2)
    assert await run_twice(job) == 1  # only the expiry is due now: a missed reminder is not sent late
    assert texts(core, 3) == []
    assert [m.user_id for m in core.session.of("BanChatMember")] == [3]


async def paid_plan_order(core, subs, user_id, days=30):
    order = await core.orders.create(user_id=user_id, product="plan", product_ref="pro:month", title="Pro plan",
                                     amount_cents=2999, ttl=timedelta(minutes=30))
    await core.orders.transition(order.id, Status.PAID, cause="test")
    await subs.add_time(user_id, "pro", days, source="order", order_id=order.id)
    await core.orders.transition(order.id, Status.FULFILLED, cause="test")
    return order


async def test_a_refund_takes_back_the_time_not_yet_used(life):
    core, subs, job = life
    first = await paid_plan_order(core, subs, 1)
    second = await paid_plan_order(core, subs, 1)  # stacked: days 30..60
    core.clock.advance(days=10)
    await core.orders.refund(first.id, cause="admin_refund")
    assert await job.run() == 0
    assert await job.run() == 0
    current = await subs.current(1)  # the second month moved up: 30 days from now
    assert current.plan.code == "pro" and current.ends_at == core.clock() + timedelta(days=30)

    await core.orders.refund(second.id, cause="admin_refund")
    assert await job.run() == 1
    assert (await subs.current(1)).plan.code == "free"
    assert "you're on the Free plan now" in texts(core, 1)[-1]
    assert [m.user_id for m in core.session.of("BanChatMember")] == [1]
    assert await job.run() == 0
