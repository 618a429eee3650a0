"""Issue 9: /stats, the user card and its actions, bans, the audit log and the CSV export."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

from db.base import utcnow
from db.models_subscriptions import Subscription
from services.orders import PaymentReport, Status
from tests.conftest import ADMIN_ID


async def paid_order(h, user_id, cents, *, product="ai_tokens", provider="stars", status=Status.PAID):
    await h.users.seen(user_id, username=f"u{user_id}", first_name="Buyer", language_code="en")
    order = await h.app.orders.create(user_id=user_id, product=product, product_ref="x", title=f"Item {cents}",
                                      amount_cents=cents, ttl=timedelta(minutes=30), details={"base_usd": "0.1"})
    amount = Decimal(cents) / 100
    await h.app.orders.add_invoice(order.id, provider=provider, external_id=f"inv-{order.id}",
                                   amount=amount, asset="USD", expires_at=order.expires_at)
    await h.app.orders.apply_payment(PaymentReport(provider, f"inv-{order.id}", f"pay-{order.id}", amount, "USD"))
    if status == Status.FULFILLED:
        await h.app.orders.transition(order.id, Status.FULFILLED, cause="test")
    return order


async def test_stats_shows_money_subscribers_and_a_chart(harness):
    h = harness
    await paid_order(h, 1, 1000, status=Status.FULFILLED)
    await paid_order(h, 2, 2999, product="plan", provider="cryptopay")
    await h.users.seen(3, username=None, first_name="Window shopper", language_code="en")
    await h.app.orders.create(user_id=3, product="ai_tokens", product_ref="x", title="t", amount_cents=500,
                              ttl=timedelta(minutes=30))
    await h.app.subscriptions.add_time(2, "pro", 30, source="grant")
    await h.app.subscriptions.add_time(3, "basic", 30, source="grant")
    await h.users.seen(4, username=None, first_name="Lapsed", language_code="en")
    async with h.db.transaction() as session:  # paid time that ended five days ago, not renewed
        ended = utcnow() - timedelta(days=5)
        session.add(Subscription(user_id=4, plan="pro", starts_at=ended - timedelta(days=30), ends_at=ended,
                                 source="grant"))
    await h.send(ADMIN_ID, "/stats")
    text = h.session.of("SendMessage")[-1].text
    assert "Revenue: today $39.99 · 7 days $39.99 · 30 days $39.99" in text
    assert "AI tokens $10.00" in text and "Plans $29.99" in text
    assert "Telegram Stars $10.00" in text and "Crypto Pay $29.99" in text
    assert "3 orders · paid 67% · delivered 50%" in text
    assert "Basic 1 · Pro 1 · Enterprise 0 · MRR $39.98 · churn (30 days) 33%" in text
    assert "Users: 5 · new today 5" in text  # four buyers and the admin
    assert h.session.of("SendPhoto")[-1].chat_id == ADMIN_ID


async def test_non_admin_cannot_see_stats_or_export(harness):
    await harness.send(5, "/stats")
    await harness.send(5, "/export 30")
    assert harness.session.texts_to(5) == ["Sorry, this command is only for the bot's administrators."] * 2
    assert not harness.session.of("SendPhoto") and not harness.session.of("SendDocument")


async def test_csv_export(harness):
    order = await paid_order(harness, 7, 1234)
    await harness.send(ADMIN_ID, "/export 7")
    document = harness.session.of("SendDocument")[-1]
    rows = list(csv.reader(io.StringIO(document.document.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["order_id", "created_at_utc", "paid_at_utc"]
    assert rows[1][0] == str(order.id) and rows[1][7] == "12.34" and rows[1][8] == "stars" and rows[1][9] == "paid"
    await harness.send(ADMIN_ID, "/export lots")
    assert "Usage: /export DAYS" in harness.session.texts_to(ADMIN_ID)[-1]


async def test_user_card_ban_and_audit(harness):
    h = harness
    order = await paid_order(h, 8, 500)
    await h.send(ADMIN_ID, "/user @u8")
    card = h.session.of("SendMessage")[-1]
    assert "id <code>8</code>" in card.text and f"#{order.id}" in card.text and "Plan: Free" in card.text
    await h.press(ADMIN_ID, "uact:ban:8:0")
    assert (await h.users.get(8)).is_banned
    h.session.clear()
    await h.send(8, "/start")  # a banned user is told once, then their updates go nowhere
    await h.send(8, "/start")
    assert h.session.texts_to(8) == ["⛔ Access to this bot is closed for your account."]
    await h.press(ADMIN_ID, "uact:unban:8:0")
    await h.send(8, "/start")
    assert "Hi" in h.session.texts_to(8)[-1]
    await h.send(ADMIN_ID, "/audit")
    log = h.session.texts_to(ADMIN_ID)[-1]
    assert "unban user:8" in log and '{"banned": false} → {"banned": true}' in log and "/user @u8" in log


async def test_refund_from_the_user_card_needs_confirmation(harness):
    h = harness
    order = await paid_order(h, 9, 700, provider="kryptoexpress")
    await h.press(ADMIN_ID, f"rf:ask:{order.id}:full:9")
    preview = h.session.of("EditMessageText")[-1].text
    assert f"Refund order #{order.id}" in preview and "$7.00 on-chain" in preview
    assert (await h.app.orders.get(order.id)).status == Status.PAID  # not yet
    await h.press(ADMIN_ID, f"rf:yes:{order.id}:full:9")
    assert (await h.app.orders.get(order.id)).status == Status.REFUNDED
    told = h.session.texts_to(9)[-1]
    assert f"Refund of order #{order.id}" in told and "we need your wallet address" in told
    assert "refunded" not in told and "sent back" not in told  # no money has moved yet
    entries, _ = await h.app.audit.page(0)
    refund = next(e for e in entries if e.action == "refund")
    assert refund.target == f"order:{order.id}" and refund.before == {"status": "paid"}
    assert refund.after["money"][0] | {"state": "awaiting_address"} == refund.after["money"][0]
    assert (refund.after["money"][0]["amount"], refund.after["money"][0]["asset"]) == ("7", "USD")


async def test_refund_cancelled_changes_nothing_and_pending_shows_in_orders(harness):
    h = harness
    order = await paid_order(h, 10, 700, provider="kryptoexpress")
    await h.send(ADMIN_ID, f"/refund {order.id}")
    await h.press(ADMIN_ID, f"rf:no:{order.id}:full:0")
    assert "cancelled; nothing was changed" in h.session.of("EditMessageText")[-1].text
    assert (await h.app.orders.get(order.id)).status == Status.PAID
    await h.press(ADMIN_ID, f"rf:yes:{order.id}:full:0")
    await h.send(10, "/orders")
    assert "refund pending: the money has not been sent back yet" in h.session.texts_to(10)[-1]


async def test_admins_cannot_be_banned(harness):
    await harness.send(ADMIN_ID, "/start")
    await harness.press(ADMIN_ID, f"uact:ban:{ADMIN_ID}:0")
    assert not (await harness.users.get(ADMIN_ID)).is_banned


async def test_audit_pages(harness):
    for n in range(25):
        await harness.app.audit.record(ADMIN_ID, "test", f"n{n}")
    await harness.send(ADMIN_ID, "/audit")
    first = harness.session.texts_to(ADMIN_ID)[-1]
    assert "page 1 of 3" in first and "test n24" in first and "test n14" not in first
    await harness.press(ADMIN_ID, "aud:2", text=first)
    assert "page 3 of 3" in harness.session.of("EditMessageText")[-1].text




async def test_grant_is_audited_with_before_and_after(harness):
    await harness.users.seen(12, username=None, first_name="Lucky", language_code="en")
    await harness.send(ADMIN_ID, "/grant 12 pro 30")
    entries, _ = await harness.app.audit.page(0)
    grant = next(e for e in entries if e.action == "grant")
    assert grant.target == "user:12" and grant.before == {"plan": "free", "ends_at": None}
    assert grant.after["plan"] == "pro" and grant.after["days"] == 30
