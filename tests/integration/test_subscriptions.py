"""Plans and subscription time: renewal stacks on what is left; the best covering plan wins."""

from datetime import timedelta

import pytest

from services.plans import PLANS
from services.subscriptions import SubscriptionService
from tests.support.core import Core


@pytest.fixture
async def subs(database):
    core = Core(database)
    for uid in (1, 2, 3):
        await core.user(uid)
    return SubscriptionService(database, clock=core.clock), core.clock, core


def test_plan_catalogue_matches_the_brief():
    assert [(p.code, p.monthly_cents, p.signals_per_day, p.history_days) for p in PLANS.values()] == [
        ("free", 0, 10, 7), ("basic", 999, 100, 30), ("pro", 2999, 1000, 90), ("enterprise", 9999, None, 365)]
    assert PLANS["pro"].annual_cents == 29990


async def test_free_until_paid_and_renewal_stacks(subs):
    service, clock, _ = subs
    assert (await service.current(1)).plan.code == "free"
    first = await service.add_time(1, "basic", 30, source="grant")
    clock.advance(days=10)
    second = await service.add_time(1, "basic", 30, source="grant")  # 20 days left + 30
    assert second.starts_at == first.ends_at
    current = await service.current(1)
    assert current.plan.code == "basic" and current.ends_at == first.ends_at + timedelta(days=30)
    clock.advance(days=51)
    assert (await service.current(1)).plan.code == "free"


async def test_best_plan_wins_and_lapses_back(subs):
    service, clock, _ = subs
    await service.add_time(2, "basic", 30, source="grant")
    await service.add_time(2, "pro", 7, source="grant")
    assert (await service.current_plan(2)).code == "pro"
    clock.advance(days=8)
    assert (await service.current_plan(2)).code == "basic"
    assert await service.subscribers(["basic"]) == [2] and await service.subscribers(["pro"]) == []


async def test_one_period_per_order(subs):
    service, _, core = subs
    order = await core.order(user_id=3)
    a = await service.add_time(3, "pro", 30, source="order", order_id=order.id)
    b = await service.add_time(3, "pro", 30, source="order", order_id=order.id)
    assert a.id == b.id


@pytest.mark.parametrize(("plan", "days"), [("free", 30), ("gold", 30), ("pro", 0), ("pro", -5)])
async def test_bad_grants_are_refused(subs, plan, days):
    service, _, _ = subs
    with pytest.raises(ValueError):
        await service.add_time(1, plan, days, source="grant")
    assert (await service.current_plan(1)).code == "free"


