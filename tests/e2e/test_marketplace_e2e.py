"""The provider life through the whole sandbox (issue 19): a user applies with /provider in the chat, the admin
approves in /providers, the provider creates an API key in /api and publishes a signal with it over HTTP; a
subscriber who bought the provider's month with Telegram Stars from /market receives the signal and its event,
a user who did not subscribe receives nothing; the paid order is split in the ledger (80 % pending for the
provider) and the provider's /provider shows it; the admin's refund inside the hold takes back the time and
reverses the split."""

import re
from decimal import Decimal

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.middlewares import ThrottleMiddleware
from db.models_signals import Outbox
from sandbox.runner import running_sandbox
from services.earnings import FEES, seller_account
from services.orders import Status
from tests.support.checkout import pay_first_order_with_stars

PROVIDER, SUBSCRIBER, BYSTANDER, ADMIN = 1901, 1902, 1903, 1000
SIGNAL = {"id": "alpha-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[ADMIN]) as sandbox:
        for middleware in sandbox.app.dp.callback_query.outer_middleware:  # a form filled in quickly
            if isinstance(middleware, ThrottleMiddleware):
                middleware.limit = 100
        for middleware in sandbox.app.dp.message.outer_middleware:
            if isinstance(middleware, ThrottleMiddleware):
                middleware.limit = 100
        yield sandbox


def newest(sb, chat_id, fragment):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


async def publish(sb, key: str, path: str, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(
            f"http://127.0.0.1:{sb.app.port}{path}", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        return r.status, await r.json(content_type=None)


async def test_apply_approve_publish_and_only_the_subscriber_paying_with_stars_receives_it(sb):
    tg = sb.telegram
    for user_id, name in ((PROVIDER, "Pat"), (SUBSCRIBER, "Sam"), (BYSTANDER, "Bea"), (ADMIN, "Admin")):
        tg.add_user(user_id, name)

    tg.send_text(PROVIDER, "/provider")
    await tg.wait_for(newest(sb, PROVIDER, "Become a signal provider"))
    tg.press_button(PROVIDER, "📝 Apply")
    steps = (("Step 1 of 5", "Alpha Calls"), ("Step 2 of 5", "Swing trades on SOL and ETH, two a week"),
             ("Step 3 of 5", "crypto"), ("Step 4 of 5", "600"))
    for prompt, answer in steps:
        await tg.wait_for(newest(sb, PROVIDER, prompt))
        tg.send_text(PROVIDER, answer)
    await tg.wait_for(newest(sb, PROVIDER, "The price must be from $5.00 to $500.00"))  # out of range
    tg.send_text(PROVIDER, "20")
    await tg.wait_for(newest(sb, PROVIDER, "How should we pay you?"))
    tg.press_button(PROVIDER, "To this Telegram account")
    await tg.wait_for(newest(sb, PROVIDER, "Check your application"))
    tg.press_button(PROVIDER, "📨 Submit")
    await tg.wait_for(newest(sb, PROVIDER, "Application sent"))
    await tg.wait_for(newest(sb, ADMIN, "New provider application"))

    tg.send_text(ADMIN, "/providers")
    await tg.wait_for(newest(sb, ADMIN, "1 waiting for review"))
    tg.press_button(ADMIN, "Alpha Calls")
    await tg.wait_for(newest(sb, ADMIN, "Swing trades on SOL"))
    tg.press_button(ADMIN, "✅ Approve")
    await tg.wait_for(newest(sb, PROVIDER, "is approved"))

    tg.send_text(PROVIDER, "/api")
    await tg.wait_for(newest(sb, PROVIDER, "You have no API keys yet"))
    tg.press_button(PROVIDER, "➕ New key")
    await tg.wait_for(newest(sb, PROVIDER, "Send a name for the new key"))
    tg.send_text(PROVIDER, "publisher")
    shown = await tg.wait_for(newest(sb, PROVIDER, "shown only once"))
    key = re.search(r"sck_[0-9A-Za-z]{38}", shown["text"]).group(0)

    tg.send_text(SUBSCRIBER, "/market")
    await tg.wait_for(newest(sb, SUBSCRIBER, "Signal marketplace"))
    tg.press_button(SUBSCRIBER, "1. Alpha Calls · new")  # not ranked yet: no closed signals
    await tg.wait_for(newest(sb, SUBSCRIBER, "Verified since"))
    tg.press_button(SUBSCRIBER, "Subscribe · $20.00 / month")
    await pay_first_order_with_stars(sb, SUBSCRIBER)
    await tg.wait_for(newest(sb, SUBSCRIBER, "Subscribed to Alpha Calls"), timeout=10)
    [order] = await sb.app.orders.for_user(SUBSCRIBER)

    async def fulfilled():
        return (await sb.app.orders.get(order.id)).status == Status.FULFILLED
    await tg.wait_for(fulfilled)
    tg.send_text(BYSTANDER, "/start")
    await tg.wait_for(newest(sb, BYSTANDER, "Choose what you need"))

    status, body = await publish(sb, key, "/api/v1/provider/signals", SIGNAL)
    assert status == 202 and body["stored"] is True
    received = await tg.wait_for(newest(sb, SUBSCRIBER, "SOL/USDT"), timeout=10)
    assert "📡 Alpha Calls" in received["text"]  # whose signal it is
    status, _body = await publish(sb, key, "/api/v1/provider/signals/alpha-1/events",
                                  {"type": "tp_hit", "level": 1, "price": "150"})
    assert status == 202
    event = await tg.wait_for(lambda: next((m for m in tg.chat_messages(SUBSCRIBER, bot_only=True)
                                            if m.get("reply_to_message", {}).get("message_id")
                                            == received["message_id"]), None), timeout=10)
    assert "150" in event["text"]
    assert not any("SOL/USDT" in m.get("text", "") for m in tg.chat_messages(BYSTANDER, bot_only=True))
    assert not any("SOL/USDT" in m.get("text", "") for m in tg.chat_messages(PROVIDER, bot_only=True))

    seller = f"provider:{(await sb.app.marketplace.mine(PROVIDER)).id}"
    assert await sb.app.ledger.balance(seller_account(seller, "pending")) == Decimal("16.00")
    assert await sb.app.ledger.balance(FEES) == Decimal("4.00")
    tg.send_text(PROVIDER, "/provider")
    dashboard = await tg.wait_for(newest(sb, PROVIDER, "Pending: $16.00"))
    assert "1 subscriber" in dashboard["text"] and "Balance: $0.00" in dashboard["text"]

    # the admin refunds the order inside the hold: the time is taken back and the split reversed
    tg.send_text(ADMIN, f"/refund {order.id}")
    preview = await tg.wait_for(newest(sb, ADMIN, f"Refund order #{order.id}"))
    assert "the unused time of this provider subscription" in preview["text"]
    tg.press_button(ADMIN, "✅ Confirm refund")
    await tg.wait_for(newest(sb, ADMIN, "the buyer has been told"), timeout=10)

    async def refunded():
        return (await sb.app.orders.get(order.id)).status == Status.REFUNDED
    await tg.wait_for(refunded, timeout=10)
    assert await sb.app.marketplace.subscribed_until(SUBSCRIBER, int(seller.split(":")[1])) is None
    assert await sb.app.ledger.balance(seller_account(seller, "pending")) == 0
    assert await sb.app.ledger.balance(FEES) == 0
    before = len(tg.chat_messages(SUBSCRIBER, bot_only=True))
    status, body = await publish(sb, key, "/api/v1/provider/signals", {**SIGNAL, "id": "alpha-2"})
    assert status == 202
    async with sb.app.db.session() as session:  # queued for nobody: the time was taken back
        assert await session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.kind == "signal", Outbox.item_id == body["id"])) == 0
    assert len(tg.chat_messages(SUBSCRIBER, bot_only=True)) == before
