"""/plans in-process: the comparison, buying a month or a year through the payment core, forged plan
buttons, and the admin's /grant with every bad form."""

import pytest

from handlers.user.checkout import PayWith
from handlers.user.plans import PlanBuy
from services.plan_sales import PRODUCT
from tests.conftest import ADMIN_ID


def last_text(h, user_id):
    return h.session.texts_to(user_id)[-1]


def buttons(h, name="SendMessage"):
    method = h.session.of(name)[-1]
    return [(b.text, b.callback_data) for row in method.reply_markup.inline_keyboard for b in row]


async def test_plans_compares_every_tier_and_shows_mine(harness):
    await harness.send(1, "/plans")
    text = last_text(harness, 1)
    for line in ("<b>Free</b> — free", "10 signals a day · 7 days of history · no whale follows",
                 "<b>Basic</b> — $9.99 a month or $99.90 a year",
                 "100 signals a day · 30 days of history · follow up to 5 whale wallets",
                 "<b>Pro</b> — $29.99 a month or $299.90 a year", "1,000 signals a day · 90 days of history",
                 "<b>Enterprise</b> — $99.99 a month or $999.90 a year", "unlimited signals a day · 365 days",
                 "Your plan: <b>Free</b>."):
        assert line in text
    labels = [t for t, _ in buttons(harness)]
    assert labels[:2] == ["Basic · month $9.99", "Basic · year $99.90"]
    assert "Enterprise · year $999.90" in labels and not any("Free" in t for t in labels)

    await harness.app.subscriptions.add_time(1, "pro", 30, source="grant")
    await harness.send(1, "/plans")
    assert "Your plan: <b>Pro</b> until 20" in last_text(harness, 1)


async def test_menu_section_opens_plans(harness):
    await harness.send(2, "/start")
    await harness.press(2, "menu:plans")
    assert "Signal plans" in harness.session.of("EditMessageText")[-1].text


@pytest.mark.parametrize(("period", "cents", "days"), [("month", 2999, 30), ("year", 29990, 365)])
async def test_buying_a_plan_makes_an_order_and_offers_payment(harness, period, cents, days):
    await harness.send(3, "/plans")
    await harness.press(3, PlanBuy(plan="pro", period=period).pack())
    [order] = await harness.app.orders.for_user(3)
    assert (order.product, order.product_ref, order.amount_cents) == (PRODUCT, f"pro:{period}", cents)
    assert order.details["days"] == days
    screen = harness.session.of("EditMessageText")[-1]
    assert "Choose how to pay" in screen.text
    assert PayWith(order_id=order.id, method="stars").pack() in [b for _, b in buttons(harness, "EditMessageText")]


@pytest.mark.parametrize("data", ["pb:gold:month", "pb:free:month", "pb:pro:decade", "pb:pro:", "pb::month"])
async def test_forged_plan_button_is_refused(harness, data):
    await harness.send(4, "/start")
    await harness.press(4, data)
    answer = harness.session.of("AnswerCallbackQuery")[-1]
    assert answer.show_alert and "isn't available" in answer.text
    assert await harness.app.orders.for_user(4) == []


async def test_grant_gives_the_plan_and_tells_both(harness):
    await harness.send(5, "/start")
    await harness.send(ADMIN_ID, "/grant 5 basic 14")
    assert "User 5 has the Basic plan until" in last_text(harness, ADMIN_ID)
    assert "given the <b>Basic</b> plan for 14 days" in last_text(harness, 5)
    current = await harness.app.subscriptions.current(5)
    assert current.plan.code == "basic"
    [row] = await _periods(harness, 5)
    assert (row.source, row.granted_by) == ("grant", ADMIN_ID)


async def _periods(harness, user_id):
    from sqlalchemy import select

    from db.models_subscriptions import Subscription
    async with harness.db.session() as session:
        return list(await session.scalars(select(Subscription).where(Subscription.user_id == user_id)))


@pytest.mark.parametrize(("args", "says"), [
    ("", "Usage: /grant USER_ID PLAN DAYS"),
    ("5 pro", "Usage: /grant USER_ID PLAN DAYS"),
    ("5 pro 30 extra", "Usage: /grant USER_ID PLAN DAYS"),
    ("bob pro 30", "The user id must be a number."),
    ("5 gold 30", "There's no paid plan called that."),
    ("5 free 30", "There's no paid plan called that."),
    ("5 pro thirty", "Days must be a whole number."),
    ("5 pro -3", "Days must be a whole number."),
    ("5 pro 0", "Days must be from 1 to 3650."),
    ("5 pro 3651", "Days must be from 1 to 3650."),
    ("777 pro 30", "User 777 hasn't used the bot yet"),
])
async def test_grant_refuses_bad_input_and_changes_nothing(harness, args, says):
    await harness.send(5, "/start")
    await harness.send(ADMIN_ID, f"/grant {args}".strip())
    assert says in last_text(harness, ADMIN_ID)
    assert (await harness.app.subscriptions.current(5)).plan.code == "free"
    assert await _periods(harness, 5) == []


async def test_grant_from_a_non_admin_is_refused(harness):
    await harness.send(5, "/start")
    await harness.send(5, "/grant 5 enterprise 3650")
    assert "only for the bot's administrators" in last_text(harness, 5)
    assert (await harness.app.subscriptions.current(5)).plan.code == "free"
