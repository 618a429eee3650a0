"""Buying a plan end to end through the whole sandbox with Telegram Stars: the plan is active, the
private channel invite admits the buyer once, a second purchase stacks on the time left, and at the
end the user drops to Free, leaves the channel and is told how to renew."""

import re
from datetime import timedelta

import pytest

from bot.middlewares import ThrottleMiddleware
from processing.subscriptions import SubscriptionLifecycle
from sandbox.runner import SANDBOX_PRIVATE_CHANNEL_ID, running_sandbox
from sandbox.telegram import JoinRefused
from services.channel import PrivateChannel
from services.orders import Status
from services.plan_notices import PlanNotices
from services.subscriptions import SubscriptionService

BUYER, FRIEND = 801, 802


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[1000]) as sandbox:
        for middleware in sandbox.app.dp.callback_query.outer_middleware:  # two purchases in a few seconds
            if isinstance(middleware, ThrottleMiddleware):
                middleware.limit = 100
        yield sandbox


def message_with(sb, fragment, chat_id=BUYER, after=0):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True)
                 if fragment in m.get("text", "") and m["message_id"] > after]
        return found[-1] if found else None
    return check


async def buy(sb, button: str, *, first: bool) -> int:
    after = max([m["message_id"] for m in sb.telegram.chat_messages(BUYER)], default=0)
    sb.telegram.send_text(BUYER, "/plans")
    await sb.telegram.wait_for(message_with(sb, "Signal plans", after=after))
    sb.telegram.press_button(BUYER, button)
    await sb.telegram.wait_for(message_with(sb, "Choose how to pay", after=after))
    sb.telegram.press_button(BUYER, "Telegram Stars")
    if first:
        await sb.telegram.wait_for(message_with(sb, "accept our terms", after=after))
        sb.telegram.press_button(BUYER, "I accept")
    await sb.telegram.wait_for(message_with(sb, "Invoice sent below", after=after))
    order = (await sb.app.orders.for_user(BUYER))[0]
    invoice = await sb.telegram.wait_for(lambda: next((m for m in sb.telegram.chat_messages(BUYER, bot_only=True)
                                                       if "invoice" in m and m["message_id"] > after), None))
    paid = await sb.telegram.pay_invoice(BUYER, invoice["message_id"])
    assert paid["ok"], paid

    async def delivered():
        return (await sb.app.orders.get(order.id)).status == Status.FULFILLED and message_with(
            sb, "plan active", after=after)()
    await sb.telegram.wait_for(delivered, timeout=10)
    return order.id


async def test_buy_pro_with_stars_join_once_renew_and_expire(sb):
    sb.telegram.add_user(BUYER, "Buyer")
    sb.telegram.add_user(FRIEND, "Friend")
    first_id = await buy(sb, "Pro · month", first=True)
    first = await sb.app.orders.get(first_id)
    assert (first.product_ref, first.amount_cents) == ("pro:month", 2999)
    activation = message_with(sb, "plan active")()
    message = activation["text"]
    assert f"Receipt: order #{first_id}" in message
    [[join]] = activation["reply_markup"]["inline_keyboard"]  # the invite is also a Join button
    assert join["text"] == "🔑 Join the private channel" and join["url"] in message
    current = await sb.app.subscriptions.current(BUYER)
    assert current.plan.code == "pro"
    assert current.ends_at.strftime("%Y-%m-%d %H:%M") in message

    link = re.search(r"https://t\.me/\+\S+", message).group(0)
    assert sb.telegram.join_via_link(BUYER, link)["status"] == "member"
    with pytest.raises(JoinRefused):  # single use: a forwarded link admits nobody else
        sb.telegram.join_via_link(FRIEND, link)

    # A fresh link from /plans: no invite button while in the channel; after leaving, a new single-use one
    sb.telegram.send_text(BUYER, "/plans")
    member_screen = await sb.telegram.wait_for(message_with(sb, "Your plan: Pro until"))
    assert not [b for row in member_screen["reply_markup"]["inline_keyboard"] for b in row
                if "Private channel invite" in b["text"]]
    sb.telegram.leave_channel(BUYER, SANDBOX_PRIVATE_CHANNEL_ID)
    before = max(m["message_id"] for m in sb.telegram.chat_messages(BUYER))
    sb.telegram.send_text(BUYER, "/plans")
    await sb.telegram.wait_for(message_with(sb, "Your plan: Pro until", after=before))
    sb.telegram.press_button(BUYER, "Private channel invite")
    again = await sb.telegram.wait_for(message_with(sb, "Your private channel invite", after=before))
    fresh = re.search(r"https://t\.me/\+\S+", again["text"]).group(0)
    assert again["reply_markup"]["inline_keyboard"] == [[{"text": "🔑 Join the private channel", "url": fresh}]]
    assert fresh != link and sb.telegram.join_via_link(BUYER, fresh)["status"] == "member"

    # Telegram delivers the payment again: still one month
    [payment] = await sb.app.orders.payments(first_id)
    sb.telegram.resend_successful_payment(payment.external_id)
    await sb.telegram.wait_for(lambda: not sb.telegram.updates)

    # Renewal: a year bought while the month runs stacks on what is left
    second_id = await buy(sb, "Pro · year", first=False)
    renewed = await sb.app.subscriptions.current(BUYER)
    assert renewed.ends_at == current.ends_at + timedelta(days=365)
    renewal_text = message_with(sb, "plan active")()["text"]
    assert renewed.ends_at.strftime("%Y-%m-%d %H:%M") in renewal_text
    assert "t.me/+" not in renewal_text  # already in the channel: no spare link to pass on
    assert second_id != first_id

    # The end: run the lifecycle job as if 396 days had passed
    later = current.ends_at + timedelta(days=366)
    subs = SubscriptionService(sb.app.db, clock=lambda: later)
    job = SubscriptionLifecycle(subs, PlanNotices(sb.app.db, clock=lambda: later),
                                PrivateChannel(sb.app.bot, SANDBOX_PRIVATE_CHANNEL_ID, clock=lambda: later),
                                sb.app.notifier, sb.app.settings.tz, clock=lambda: later)
    assert await job.run() == 1
    assert await job.run() == 0
    assert (await subs.current(BUYER)).plan.code == "free"
    assert sb.telegram.member_status(SANDBOX_PRIVATE_CHANNEL_ID, BUYER)["status"] == "left"
    ended = await sb.telegram.wait_for(message_with(sb, "you're on the Free plan now"))
    assert "/plans" in ended["text"]


async def test_grant_sends_a_working_invite_and_confirms(sb):
    sb.telegram.add_user(FRIEND, "Friend")
    sb.telegram.send_text(FRIEND, "/start")
    await sb.telegram.wait_for(message_with(sb, "Hi, Friend", chat_id=FRIEND))
    sb.telegram.send_text(1000, "/grant 802 enterprise 90")
    confirmed = await sb.telegram.wait_for(message_with(sb, "User 802 has the Enterprise plan until", chat_id=1000))
    told = await sb.telegram.wait_for(message_with(sb, "given the Enterprise plan for 90 days", chat_id=FRIEND))
    link = re.search(r"https://t\.me/\+\S+", told["text"]).group(0)
    assert sb.telegram.join_via_link(FRIEND, link)["status"] == "member"
    assert (await sb.app.subscriptions.current(FRIEND)).plan.code == "enterprise"
    assert "couldn't" not in confirmed["text"]
