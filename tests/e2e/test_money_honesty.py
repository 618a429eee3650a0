"""Money moments through the whole sandbox over real HTTP (issue 14 items 3 and 7): a double tap
makes one order and one invoice, an extra payment is explained to the buyer, and every message
about money tells the truth (expiry, final state of the order message, Stars receipt, part payment)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from db.models import Order
from sandbox.runner import running_sandbox
from services.orders import Status

BUYER = 711


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[1000], payment_poll_interval_seconds=1) as sandbox:
        yield sandbox


def message_with(sb, fragment, chat_id=BUYER):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


def no_errors(sb, chat_id=BUYER):
    texts = [m.get("text", "") for m in sb.telegram.chat_messages(chat_id, bot_only=True)]
    assert not any("something went wrong" in t for t in texts), texts
    failed = [(c.method, c.description) for c in sb.telegram.calls
              if not c.ok and "message is not modified" not in c.description]  # a repeated tap: handled
    assert not failed, failed


async def settle(sb):
    await sb.telegram.wait_for(lambda: not sb.telegram.updates)
    await sb.telegram.wait_for(lambda: not sb.telegram._open_queries, timeout=5)


async def token_order(sb, *, custom: str = "2,000,000") -> None:
    """Up to the payment choice for a custom AI-token order ($1.44, enough for KryptoExpress)."""
    sb.telegram.add_user(BUYER, "Buyer")
    sb.telegram.send_text(BUYER, "/tokens")
    await sb.telegram.wait_for(message_with(sb, "Pick a model"))
    sb.telegram.press_button(BUYER, "OpenAI: GPT-4o-mini")
    await sb.telegram.wait_for(message_with(sb, "Choose a package"))
    sb.telegram.press_button(BUYER, "Custom amount")
    await sb.telegram.wait_for(message_with(sb, "How many tokens"))
    sb.telegram.send_text(BUYER, custom)
    await sb.telegram.wait_for(message_with(sb, "Choose how to pay"))


async def double_tap(sb, label: str, then: str) -> None:
    sb.telegram.press_button(BUYER, label)
    sb.telegram.press_button(BUYER, label)  # the same button again before the bot has answered
    await sb.telegram.wait_for(message_with(sb, then))
    await settle(sb)


async def test_double_tap_on_an_on_chain_method_makes_one_payment_address(sb):
    await token_order(sb)
    await double_tap(sb, "USDT TRC20 on-chain", "accept our terms")
    await double_tap(sb, "I accept", "Send exactly")
    [order] = await sb.app.orders.for_user(BUYER)
    assert len(await sb.app.orders.invoices(order.id)) == 1
    assert len(sb.kryptoexpress.payments) == 1  # one address at the provider, not two
    assert len([m for m in sb.telegram.chat_messages(BUYER) if "photo" in m]) <= 1
    no_errors(sb)


async def test_double_tap_on_stars_sends_one_invoice(sb):
    await token_order(sb)
    await double_tap(sb, "Telegram Stars", "accept our terms")
    await double_tap(sb, "I accept", "Invoice sent below")
    assert len(sb.telegram.calls_of("sendInvoice")) == 1
    [order] = await sb.app.orders.for_user(BUYER)
    assert len(await sb.app.orders.invoices(order.id)) == 1
    no_errors(sb)


async def test_double_tap_on_a_plan_makes_one_order(sb):
    sb.telegram.add_user(BUYER, "Buyer")
    sb.telegram.send_text(BUYER, "/plans")
    await sb.telegram.wait_for(message_with(sb, "Signal plans"))
    await double_tap(sb, "Pro · month", "Choose how to pay")
    assert len(await sb.app.orders.for_user(BUYER)) == 1
    no_errors(sb)


async def test_extra_payment_is_explained_to_the_buyer(sb):
    await token_order(sb)
    sb.telegram.press_button(BUYER, "USDT TRC20 on-chain")
    await sb.telegram.wait_for(message_with(sb, "accept our terms"))
    sb.telegram.press_button(BUYER, "I accept")
    await sb.telegram.wait_for(message_with(sb, "Send exactly"))
    [order] = await sb.app.orders.for_user(BUYER)
    second = await sb.app.checkout.start(order.id, BUYER, "cryptopay")  # a second method for the same order
    assert second.problem is None
    [kx, cp] = await sb.app.orders.invoices(order.id)
    sb.kryptoexpress.pay(kx.external_id)
    await sb.telegram.wait_for(message_with(sb, "Payment received for order"), timeout=10)
    sb.cryptopay.pay(cp.external_id)
    told = await sb.telegram.wait_for(message_with(sb, "another payment"), timeout=10)
    assert "$1.44" in told["text"] and f"order #{order.id}" in told["text"]
    assert "goes back to you" in told["text"]  # through the refund flow (test_refund_promises)
    await sb.telegram.wait_for(message_with(sb, "Extra payment", chat_id=1000))


async def crypto_pay_invoice(sb):
    await token_order(sb)
    sb.telegram.press_button(BUYER, "Crypto Pay")
    await sb.telegram.wait_for(message_with(sb, "accept our terms"))
    sb.telegram.press_button(BUYER, "I accept")
    await sb.telegram.wait_for(message_with(sb, "with the button below"))
    [order] = await sb.app.orders.for_user(BUYER)
    [invoice] = await sb.app.orders.invoices(order.id)
    return order, invoice


async def test_paid_order_message_loses_its_buttons(sb):
    order, invoice = await crypto_pay_invoice(sb)
    sb.cryptopay.pay(invoice.external_id)
    final = await sb.telegram.wait_for(message_with(sb, f"Order #{order.id}: "), timeout=10)
    assert final["message_id"] == invoice.message_id and "reply_markup" not in final


async def test_expiry_notice_does_not_claim_nothing_was_charged(sb):
    order, invoice = await crypto_pay_invoice(sb)
    async with sb.app.db.transaction() as session:  # its time runs out
        await session.execute(update(Order).where(Order.id == order.id).values(
            expires_at=order.created_at - timedelta(seconds=1)))
    await sb.app.payments.expire()
    notice = await sb.telegram.wait_for(message_with(sb, f"Order #{order.id} expired"))
    assert "Nothing was charged" not in notice["text"]
    assert "an order paid in time is still delivered" in notice["text"]
    shown = next(m for m in sb.telegram.chat_messages(BUYER) if m["message_id"] == invoice.message_id)
    assert "expired" in shown["text"] and "reply_markup" not in shown


async def test_stars_receipt_shows_the_stars_paid(sb):
    await token_order(sb)
    sb.telegram.press_button(BUYER, "Telegram Stars")
    await sb.telegram.wait_for(message_with(sb, "accept our terms"))
    sb.telegram.press_button(BUYER, "I accept")
    await sb.telegram.wait_for(lambda: any("invoice" in m for m in sb.telegram.chat_messages(BUYER, bot_only=True)))
    [order] = await sb.app.orders.for_user(BUYER)
    [invoice] = await sb.app.orders.invoices(order.id)
    paid = await sb.telegram.pay_invoice(BUYER)
    assert paid["ok"], paid
    receipt = await sb.telegram.wait_for(message_with(sb, "Receipt: order"), timeout=10)
    assert f"{int(invoice.amount)} ⭐ · paid with Telegram Stars" in receipt["text"]
    assert "$1.44" not in receipt["text"]


async def test_part_payment_names_the_asset_and_what_is_still_due(sb):
    await token_order(sb)
    sb.telegram.press_button(BUYER, "USDT TRC20 on-chain")
    await sb.telegram.wait_for(message_with(sb, "accept our terms"))
    sb.telegram.press_button(BUYER, "I accept")
    await sb.telegram.wait_for(message_with(sb, "Send exactly"))
    [order] = await sb.app.orders.for_user(BUYER)
    [invoice] = await sb.app.orders.invoices(order.id)
    sb.kryptoexpress.pay(invoice.external_id, Decimal("1"))
    told = await sb.telegram.wait_for(message_with(sb, "still due"), timeout=10)
    due = invoice.amount - 1
    assert f"{due.normalize():f} USDT (TRC20)" in told["text"] and "USDT_TRC20" not in told["text"]
    page_expiry = sb.kryptoexpress.find(invoice.external_id).expire_ms // 1000
    from datetime import UTC, datetime
    shown = datetime.fromtimestamp(page_expiry, UTC).strftime("%Y-%m-%d %H:%M")
    assert shown in told["text"]  # the provider's own deadline, as its pay page shows it
    assert (await sb.app.orders.get(order.id)).status == Status.PAID_PARTIAL


async def buy_plan(sb, label: str):
    sb.telegram.send_text(BUYER, "/plans")
    await sb.telegram.wait_for(message_with(sb, "Signal plans"))
    sb.telegram.press_button(BUYER, label)
    return await sb.telegram.wait_for(message_with(sb, "Choose how to pay"))


async def test_basic_then_pro_shows_the_credit_before_payment_and_wastes_nothing(sb):
    sb.telegram.add_user(BUYER, "Buyer")
    await buy_plan(sb, "Basic · month")
    sb.telegram.press_button(BUYER, "Crypto Pay")
    await sb.telegram.wait_for(message_with(sb, "accept our terms"))
    sb.telegram.press_button(BUYER, "I accept")
    await sb.telegram.wait_for(message_with(sb, "with the button below"))
    [basic] = await sb.app.orders.for_user(BUYER)
    [invoice] = await sb.app.orders.invoices(basic.id)
    sb.cryptopay.pay(invoice.external_id)
    await sb.telegram.wait_for(message_with(sb, "Basic plan active"), timeout=10)

    screen = await buy_plan(sb, "Pro · month")
    pro = (await sb.app.orders.for_user(BUYER))[0]
    credit = pro.details["credit"]
    assert 0 < credit["cents"] <= 999 and pro.amount_cents == 2999 - credit["cents"]
    assert "Price: $29.99" in screen["text"]
    assert f"Credit: −${credit['cents'] / 100:.2f}" in screen["text"]
    assert f"Total: ${pro.amount_cents / 100:.2f}" in screen["text"]  # the chat shows text without tags
    assert "Upgrade: your Basic time" in screen["text"]
    sb.telegram.press_button(BUYER, "Crypto Pay")
    await sb.telegram.wait_for(message_with(sb, f"Pay ${pro.amount_cents / 100:.2f} with the button below"))
    [pro_invoice] = await sb.app.orders.invoices(pro.id)
    sb.cryptopay.pay(pro_invoice.external_id)
    await sb.telegram.wait_for(message_with(sb, "Pro plan active"), timeout=10)
    current = await sb.app.subscriptions.current(BUYER)
    assert current.plan.code == "pro"
    # Basic's time went into the credit: it no longer runs beneath Pro
    assert await sb.app.subscriptions.subscribers(["basic"]) == []


ADMIN = 1000


async def test_admins_get_a_notice_per_sale_unless_they_switch_it_off(sb):
    sb.telegram.add_user(ADMIN, "Admin")
    order, invoice = await crypto_pay_invoice(sb)
    sb.cryptopay.pay(invoice.external_id)
    notice = await sb.telegram.wait_for(message_with(sb, "Sale: order", chat_id=ADMIN), timeout=10)
    assert f"order #{order.id}" in notice["text"] and "$1.44 via Crypto Pay" in notice["text"]
    assert str(BUYER) in notice["text"]

    sb.telegram.send_text(ADMIN, "/admin")
    await sb.telegram.wait_for(message_with(sb, "Admin panel", chat_id=ADMIN))
    sb.telegram.press_button(ADMIN, "Sale notices")
    await sb.telegram.wait_for(lambda: any("Sale notices are off" in c.params.get("text", "")
                                           for c in sb.telegram.calls_of("answerCallbackQuery")))
    assert not await sb.app.admin_prefs.sale_notices_on(ADMIN)  # kept in the database
    second = await sb.app.orders.create(user_id=BUYER, product="ai_tokens", product_ref="openai/gpt-4o-mini",
                                        title="2,000 tokens", amount_cents=250, ttl=timedelta(minutes=30))
    result = await sb.app.checkout.start(second.id, BUYER, "cryptopay")
    sb.cryptopay.pay(result.invoice.external_id)
    await sb.telegram.wait_for(message_with(sb, f"Payment received for order #{second.id}"), timeout=10)
    await settle(sb)
    sales = [m for m in sb.telegram.chat_messages(ADMIN, bot_only=True) if "Sale: order" in m.get("text", "")]
    assert len(sales) == 1


async def test_user_card_shows_lifetime_value_every_order_and_flags(sb):
    sb.telegram.add_user(ADMIN, "Admin")
    sb.telegram.add_user(BUYER, "Buyer")
    sb.telegram.send_text(BUYER, "/start")
    await sb.telegram.wait_for(message_with(sb, "Buyer"))
    made = []
    for n in range(7):
        order = await sb.app.orders.create(user_id=BUYER, product="ai_tokens", product_ref="m", title=f"Item {n}",
                                           amount_cents=100 * (n + 1), ttl=timedelta(minutes=30))
        made.append(order)
    await sb.app.orders.transition(made[0].id, Status.PAID_OVER, cause="test")  # $1.00, overpaid
    await sb.app.orders.transition(made[1].id, Status.PAID, cause="test")  # $2.00
    await sb.app.orders.transition(made[2].id, Status.PAID, cause="test")
    await sb.app.orders.transition(made[2].id, Status.REFUNDED, cause="test")  # $3.00 refunded
    sb.telegram.send_text(ADMIN, f"/user {BUYER}")
    shown = await sb.telegram.wait_for(message_with(sb, "Lifetime value", chat_id=ADMIN))
    assert "Lifetime value: $3.00 · refunded $3.00 · 7 orders" in shown["text"]
    assert "overpaid ×1" in shown["text"] and "refunded ×1" in shown["text"]
    assert "page 1 of 2" in shown["text"] and f"#{made[6].id} " in shown["text"]
    assert f"#{made[0].id} " not in shown["text"]
    sb.telegram.press_button(ADMIN, "Older orders")
    older = await sb.telegram.wait_for(message_with(sb, "page 2 of 2", chat_id=ADMIN))
    assert f"#{made[0].id} " in older["text"] and f"#{made[6].id} " not in older["text"]
