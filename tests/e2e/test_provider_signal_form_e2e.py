"""Issue 19's "publish by form" through the whole sandbox (the Telegram stand-in over HTTP, long polling): an
approved provider fills /signal in the chat with taps and typed answers (a decimal comma, a refused price asked
again), publishes, and reports a target hit from the form; the subscriber receives both, a user who did not
subscribe receives nothing."""

import pytest

from bot.middlewares import ThrottleMiddleware
from sandbox.runner import running_sandbox
from services.marketplace import Application, Review
from services.orders import Status
from tests.e2e.test_marketplace_e2e import newest

ADMIN, PROVIDER, SUBSCRIBER, BYSTANDER = 1000, 1921, 1922, 1923


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[ADMIN]) as sandbox:
        for observer in (sandbox.app.dp.callback_query, sandbox.app.dp.message):  # a form filled in quickly
            for middleware in observer.outer_middleware:
                if isinstance(middleware, ThrottleMiddleware):
                    middleware.limit = 100
        yield sandbox


async def test_a_provider_publishes_by_the_form_and_reports_a_target_in_the_chat(sb):
    tg, app = sb.telegram, sb.app
    for user_id, name in ((PROVIDER, "Pat"), (SUBSCRIBER, "Sam"), (BYSTANDER, "Bea")):
        tg.add_user(user_id, name)
        tg.send_text(user_id, "/start")
        await tg.wait_for(newest(sb, user_id, ""))
    provider = await app.marketplace.apply(PROVIDER, Application(
        name="Alpha Calls", description="Swing trades on SOL and ETH", ecosystems=("crypto",), price_cents=2500,
        payout_method="telegram"))
    await app.marketplace.review(provider.id, Review.APPROVE, ADMIN)
    order = await app.marketplace.place(SUBSCRIBER, provider.id)  # paid as the payment core does (Stars e2e: elsewhere)
    await app.orders.transition(order.id, Status.PAID, cause="test")
    await app.products.fulfillers["provider_sub"].fulfil(await app.orders.get(order.id))

    tg.send_text(PROVIDER, "/signal")
    await tg.wait_for(newest(sb, PROVIDER, "Publish as Alpha Calls"))
    tg.press_button(PROVIDER, "➕ New signal")
    await tg.wait_for(newest(sb, PROVIDER, "Step 1 of 8"))
    tg.press_button(PROVIDER, "crypto")
    await tg.wait_for(newest(sb, PROVIDER, "Step 2 of 8"))
    tg.send_text(PROVIDER, "SOL/USDT")
    await tg.wait_for(newest(sb, PROVIDER, "Step 3 of 8"))
    tg.press_button(PROVIDER, "🟢 Long")
    await tg.wait_for(newest(sb, PROVIDER, "Step 4 of 8"))
    tg.send_text(PROVIDER, "abc")
    await tg.wait_for(newest(sb, PROVIDER, "❌ Entry price"))
    for answer, then in (("142,5", "Step 5 of 8"), ("150 158", "Step 6 of 8"), ("136", "Step 7 of 8")):
        tg.send_text(PROVIDER, answer)
        await tg.wait_for(newest(sb, PROVIDER, then))
    tg.press_button(PROVIDER, "4h")
    await tg.wait_for(newest(sb, PROVIDER, "Step 8 of 8"))
    tg.press_button(PROVIDER, "Skip")
    preview = await tg.wait_for(newest(sb, PROVIDER, "Check your signal"))
    assert "Entry: 142.5" in preview["text"] and "Take-profit: 150 · 158" in preview["text"]
    tg.press_button(PROVIDER, "📣 Publish")
    await tg.wait_for(newest(sb, PROVIDER, "published: on its way to 1 subscriber"))
    received = await tg.wait_for(newest(sb, SUBSCRIBER, "Entry: 142.5"), timeout=10)
    assert "📡 Alpha Calls" in received["text"] and "Timeframe: 4h" in received["text"]

    tg.send_text(PROVIDER, "/signal")
    await tg.wait_for(newest(sb, PROVIDER, "Tap an open signal"))
    tg.press_button(PROVIDER, "SOL/USDT Long")
    await tg.wait_for(newest(sb, PROVIDER, "What happened?"))
    tg.press_button(PROVIDER, "🎯 Target 1 hit · 150")
    await tg.wait_for(newest(sb, PROVIDER, "Report this to your subscribers?"))
    tg.press_button(PROVIDER, "✅ Confirm")
    await tg.wait_for(newest(sb, PROVIDER, "Recorded on your track record"))
    await tg.wait_for(newest(sb, SUBSCRIBER, "Take-Profit target 1 reached at 150"), timeout=10)
    assert not [m for m in tg.chat_messages(BYSTANDER, bot_only=True) if "SOL/USDT" in m.get("text", "")]
    _trades, chain = await app.signals.track_record(provider.id)
    assert chain.ok and chain.length == 1
