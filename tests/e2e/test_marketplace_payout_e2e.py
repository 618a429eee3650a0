"""Issue 19's "done when", through the whole sandbox: a second user applies as a provider in the chat, the admin
approves, the provider publishes a signal with an HTTP call (its API key), a third user subscribes with Telegram
Stars and receives it, and after the hold (PAYOUT_HOLD_DAYS=0) the admin's payout run in /payouts shows the
provider's 80 % paid through the Crypto Pay stand-in (a transfer to the provider's Telegram account, once)."""

import re
from decimal import Decimal

import pytest

from bot.middlewares import ThrottleMiddleware
from sandbox.runner import running_sandbox
from services.earnings import seller_account
from services.orders import Status
from tests.e2e.test_marketplace_e2e import SIGNAL, newest, publish
from tests.support.checkout import pay_first_order_with_stars

ADMIN, PROVIDER, SUBSCRIBER = 1000, 1911, 1912


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[ADMIN], payout_hold_days=0) as sandbox:
        for observer in (sandbox.app.dp.callback_query, sandbox.app.dp.message):  # a form filled in quickly
            for middleware in observer.outer_middleware:
                if isinstance(middleware, ThrottleMiddleware):
                    middleware.limit = 100
        yield sandbox


async def test_apply_approve_publish_subscribe_with_stars_and_the_payout_run_pays_the_provider_80_percent(sb):
    tg = sb.telegram
    for user_id, name in ((ADMIN, "Admin"), (PROVIDER, "Pat"), (SUBSCRIBER, "Sam")):
        tg.add_user(user_id, name)

    tg.send_text(PROVIDER, "/provider")
    await tg.wait_for(newest(sb, PROVIDER, "Become a signal provider"))
    tg.press_button(PROVIDER, "📝 Apply")
    for prompt, answer in (("Step 1 of 5", "Alpha Calls"), ("Step 2 of 5", "Swing trades on SOL and ETH"),
                           ("Step 3 of 5", "crypto"), ("Step 4 of 5", "25")):
        await tg.wait_for(newest(sb, PROVIDER, prompt))
        tg.send_text(PROVIDER, answer)
    await tg.wait_for(newest(sb, PROVIDER, "How should we pay you?"))
    tg.press_button(PROVIDER, "To this Telegram account")
    await tg.wait_for(newest(sb, PROVIDER, "Check your application"))
    tg.press_button(PROVIDER, "📨 Submit")
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
    key = re.search(r"sck_[0-9A-Za-z]{38}", (await tg.wait_for(newest(sb, PROVIDER, "shown only once")))["text"])[0]

    tg.send_text(SUBSCRIBER, "/market")
    await tg.wait_for(newest(sb, SUBSCRIBER, "Signal marketplace"))
    tg.press_button(SUBSCRIBER, "1. Alpha Calls · new")
    await tg.wait_for(newest(sb, SUBSCRIBER, "Verified since"))
    tg.press_button(SUBSCRIBER, "Subscribe · $25.00 / month")
    await pay_first_order_with_stars(sb, SUBSCRIBER)
    await tg.wait_for(newest(sb, SUBSCRIBER, "Subscribed to Alpha Calls"), timeout=10)
    [order] = await sb.app.orders.for_user(SUBSCRIBER)

    async def fulfilled():
        return (await sb.app.orders.get(order.id)).status == Status.FULFILLED
    await tg.wait_for(fulfilled)

    status, body = await publish(sb, key, "/api/v1/provider/signals", SIGNAL)  # what `curl` does
    assert status == 202 and body["stored"] is True
    received = await tg.wait_for(newest(sb, SUBSCRIBER, "SOL/USDT"), timeout=10)
    assert "📡 Alpha Calls" in received["text"]

    tg.send_text(ADMIN, "/payouts")
    await tg.wait_for(newest(sb, ADMIN, "Sellers with a payable balance: 1, $20.00 in all."))
    tg.press_button(ADMIN, "▶️ Run payouts now")
    await tg.wait_for(newest(sb, ADMIN, "Payout run #"), timeout=10)  # its progress, then (edited) its report
    report = await tg.wait_for(newest(sb, ADMIN, "✅ Paid ("), timeout=10)
    assert "Payout run #" in report["text"] and "✅ Paid (1, $20.00)" in report["text"]
    assert "Alpha Calls: $20.00 · transfer" in report["text"]
    [transfer] = sb.cryptopay.transfers.values()
    assert (transfer["user_id"], transfer["asset"], Decimal(transfer["amount"])) == (PROVIDER, "USDT", Decimal(20))
    await tg.wait_for(lambda: next((m for m in tg.chat_messages(PROVIDER)
                                    if "@CryptoBot: you received 20 USDT" in m.get("text", "")), None))
    await tg.wait_for(newest(sb, PROVIDER, "💸 Payout sent: $20.00 to your Telegram wallet"))
    seller = f"provider:{(await sb.app.marketplace.mine(PROVIDER)).id}"
    assert await sb.app.ledger.balance(seller_account(seller, "paid")) == Decimal("20.00")

    tg.send_text(ADMIN, "/payouts")  # a second run finds nothing to pay
    await tg.wait_for(newest(sb, ADMIN, "Sellers with a payable balance: 0, $0.00 in all."))
    tg.press_button(ADMIN, "▶️ Run payouts now")
    await tg.wait_for(newest(sb, ADMIN, "Nobody has a payable balance"), timeout=10)
    assert len(sb.cryptopay.transfers) == 1
