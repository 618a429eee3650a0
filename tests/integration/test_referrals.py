"""The referral programme (issue #16): a `ref_` start link tells the referrer, "Invite friends" shows the link and
its results, and the referred user's first fulfilled order adds REFERRAL_REWARD_DAYS to the referrer's plan, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.keyboards import Menu
from db.models_referrals import ReferralReward
from db.models_subscriptions import Subscription
from services.orders import PaymentReport
from tests.conftest import make_settings
from tests.support.harness import Harness

REFERRER, FRIEND, STRANGER = 700, 701, 702


@pytest.fixture
async def h(database_url) -> AsyncIterator[Harness]:
    harness = await Harness(make_settings(database_url=database_url, referral_reward_days=7)).start()
    yield harness
    await harness.close()


async def buy_plan(h: Harness, user_id: int, n: int) -> int:
    """A paid Basic month for `user_id`, delivered by the fulfilment worker; returns the order id."""
    order = (await h.app.plan_shop.place(user_id, "basic", "month")).order
    amount = Decimal(order.amount_cents) / 100
    await h.app.orders.add_invoice(order.id, provider="stars", external_id=f"inv-{n}", amount=amount, asset="USD",
                                   expires_at=order.expires_at)
    await h.app.orders.apply_payment(PaymentReport("stars", f"inv-{n}", f"pay-{n}", amount, "USD"))
    while await h.app.worker.run_once():
        pass
    return order.id


async def referral_rows(h: Harness, model, **where) -> int:
    async with h.db.session() as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return await session.scalar(query)


async def test_invite_link_join_notice_and_one_reward_for_the_first_order(h):
    await h.send(REFERRER, "/start")
    h.session.clear()
    await h.send(h.user(FRIEND, first_name="Bob <b>"), f"/start ref_{REFERRER}")
    told = h.session.texts_to(REFERRER)
    assert told == ["👥 Bob &lt;b&gt; joined through your invite link.\n"
                    "When they make their first purchase, you get 7 days of a paid plan."]
    await h.send(FRIEND, "/start ref_700")  # not new any more: nothing recorded or told again
    await h.send(STRANGER, f"/start ref_{STRANGER}")  # one's own link does nothing
    assert h.session.texts_to(REFERRER) == told

    await h.send(REFERRER, "/settings")
    assert "👥 Invite friends" in str(h.session.of("SendMessage")[-1].reply_markup)
    await h.press(REFERRER, Menu(section="referrals").pack())
    screen = h.session.of("EditMessageText")[-1].text
    assert f"https://t.me/test_bot?start=ref_{REFERRER}" in screen
    assert "Joined through your link: 1" in screen and "Rewards earned: 0 (0 days)" in screen

    assert (await h.app.subscriptions.current_plan(REFERRER)).code == "free"
    await buy_plan(h, FRIEND, 1)
    assert h.session.texts_to(REFERRER)[-1] == ("🎁 A friend you invited made their first purchase: 7 days of Basic "
                                                "added to your subscription.")
    current = await h.app.subscriptions.current(REFERRER)
    assert current.plan.code == "basic"
    await buy_plan(h, FRIEND, 2)  # a second order earns nothing more
    assert await referral_rows(h, Subscription, user_id=REFERRER, source="referral") == 1
    assert (await h.app.subscriptions.current(REFERRER)).ends_at == current.ends_at

    await h.press(REFERRER, Menu(section="referrals").pack())
    assert "Rewards earned: 1 (7 days)" in h.session.of("EditMessageText")[-1].text


async def test_the_reward_is_granted_once_under_retries_and_concurrency(h):
    await h.send(REFERRER, "/start")
    await h.send(FRIEND, f"/start ref_{REFERRER}")
    await h.send(REFERRER + 10, "/start")  # a Pro referrer gets Pro days
    await h.app.subscriptions.add_time(REFERRER + 10, "pro", 30, source="grant")
    await h.send(FRIEND + 10, f"/start ref_{REFERRER + 10}")
    first = await h.app.plan_shop.place(FRIEND, "basic", "month")
    second = await h.app.plan_shop.place(FRIEND, "basic", "year")
    rewards = await asyncio.gather(*(h.app.referrals.reward(o) for o in (first.order, second.order, first.order)))
    assert [r.days for r in rewards if r is not None] == [7]
    assert await h.app.referrals.reward(first.order) is None  # a retried delivery
    assert await referral_rows(h, ReferralReward, referred_user_id=FRIEND) == 1
    assert await referral_rows(h, Subscription, user_id=REFERRER, source="referral") == 1

    pro = await h.app.referrals.reward((await h.app.plan_shop.place(FRIEND + 10, "basic", "month")).order)
    assert (pro.plan.code, pro.days) == ("pro", 7)


async def test_no_reward_setting_means_no_reward_and_no_promise(database_url):
    h = await Harness(make_settings(database_url=database_url)).start()
    try:
        await h.send(REFERRER, "/start")
        h.session.clear()
        await h.send(FRIEND, f"/start ref_{REFERRER}")
        assert h.session.texts_to(REFERRER) == ["👥 Alice joined through your invite link."]
        await buy_plan(h, FRIEND, 1)
        assert await referral_rows(h, ReferralReward) == 0
        assert (await h.app.subscriptions.current_plan(REFERRER)).code == "free"
        await h.press(REFERRER, Menu(section="referrals").pack())
        screen = h.session.of("EditMessageText")[-1].text
        assert "Joined through your link: 1" in screen and "Rewards earned" not in screen and "days" not in screen
    finally:
        await h.close()


async def test_a_failing_reward_never_repeats_the_buyers_delivery(h, monkeypatch):
    await h.send(REFERRER, "/start")
    await h.send(FRIEND, f"/start ref_{REFERRER}")

    add_time = h.app.subscriptions.add_time

    async def broken(*args, source: str, **kwargs):
        if source == "referral":
            raise RuntimeError("database went away")
        return await add_time(*args, source=source, **kwargs)

    monkeypatch.setattr(h.app.subscriptions, "add_time", broken)
    h.session.clear()
    order_id = await buy_plan(h, FRIEND, 1)
    assert (await h.app.orders.get(order_id)).status == "fulfilled"
    assert len([t for t in h.session.texts_to(FRIEND) if "Receipt" in t]) == 1  # delivered once, not retried
    assert h.session.texts_to(REFERRER) == []  # no reward promised that was not given
    assert await referral_rows(h, ReferralReward) == 0  # the claim was taken back
