"""Issue 14, the gaps after the first pass, through the whole sandbox over real HTTP: an overpaid
buyer's "refund pending" is one tap away for the admin; money arriving for an order already paid goes
back through the refund flow by itself; a late on-chain payment whose webhook was lost is still seen
(by polling the expired invoice) and lands as paid_late."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from db.models import Order
from processing.refunds import AWAITING_ADDRESS, EXCESS, SENT, RefundProblem
from sandbox.runner import running_sandbox
from services.orders import Status
from tests.e2e.test_purchase import BUYER, delivered_key, key_works, message_with
from tests.e2e.test_refunds import ADMIN, TRON_ADDRESS, choose_on_chain, invoice_of

LOST = "http://127.0.0.1:9/lost"  # nothing listens: every webhook delivery fails


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[ADMIN], payment_poll_interval_seconds=1,
                               ai_token_models=["openai/gpt-4o-mini", "anthropic/claude-3-opus"]) as sandbox:
        sandbox.telegram.add_user(ADMIN, "Admin")
        yield sandbox


async def test_overpaid_buyer_is_told_refund_pending_and_the_admin_alert_refunds_it_in_one_tap(sb):
    order = await choose_on_chain(sb)
    invoice = await invoice_of(sb, order.id)
    sb.kryptoexpress.pay(invoice.external_id, invoice.amount + 2)
    told = await sb.telegram.wait_for(message_with(sb, "more than the"), timeout=10)
    assert "Refund pending" in told["text"] and "overpaid 2 USDT (TRC20)" in told["text"]
    assert "difference" not in told["text"]
    key = await delivered_key(sb, order.id)

    alert = await sb.telegram.wait_for(message_with(sb, f"Order #{order.id} is", ADMIN))
    sb.telegram.press_button(ADMIN, "Refund only the overpaid part", alert["message_id"])
    confirm = await sb.telegram.wait_for(message_with(sb, "Only what was paid over the price", ADMIN))
    assert "2 USDT_TRC20 on-chain" in confirm["text"]
    sb.telegram.press_button(ADMIN, "✅ Confirm refund", confirm["message_id"])
    await sb.telegram.wait_for(message_with(sb, "Refunding the overpaid part", ADMIN))
    asked = await sb.telegram.wait_for(message_with(sb, "what you paid over the price"))
    assert "2 USDT_TRC20" in asked["text"] and "we need your wallet address" in asked["text"]
    assert (await sb.app.orders.get(order.id)).status == Status.FULFILLED
    await key_works(sb, key)


async def test_extra_crypto_pay_payment_for_a_paid_order_is_transferred_back_by_itself(sb):
    order = await choose_on_chain(sb)
    await invoice_of(sb, order.id)
    second = await sb.app.checkout.start(order.id, BUYER, "cryptopay")  # a second method for the same order
    assert second.problem is None
    [kx, cp] = await sb.app.orders.invoices(order.id)
    sb.kryptoexpress.pay(kx.external_id)
    await delivered_key(sb, order.id)
    paid = sb.cryptopay.pay(cp.external_id)

    told = await sb.telegram.wait_for(message_with(sb, "another payment"), timeout=10)
    assert "goes back to you" in told["text"]
    refund = await sb.telegram.wait_for(message_with(sb, "what you paid over the price"))
    [transfer] = sb.cryptopay.transfers.values()
    assert (transfer["user_id"], transfer["amount"]) == (BUYER, paid["paid_amount"])
    assert f"{paid['paid_amount']} USDT sent back (transfer {transfer['transfer_id']})" in refund["text"]
    alert = await sb.telegram.wait_for(message_with(sb, "Extra payment", ADMIN))
    assert "returned through the refund flow" in alert["text"] and "sent back" in alert["text"]
    assert (await sb.app.orders.get(order.id)).status == Status.FULFILLED

    # exactly once: the retry job and a replayed webhook send nothing more
    await sb.app.refunds.sweep()
    await sb.app.payments.check("cryptopay", [cp.external_id])
    assert len(sb.cryptopay.transfers) == 1
    [request] = await sb.app.refunds._requests(order_id=order.id)
    assert (request.kind, request.state) == (EXCESS, SENT)


async def test_extra_on_chain_payment_asks_the_buyer_for_an_address(sb):
    order = await choose_on_chain(sb)
    kx = await invoice_of(sb, order.id)
    second = await sb.app.checkout.start(order.id, BUYER, "cryptopay")
    assert second.problem is None
    cp = next(i for i in await sb.app.orders.invoices(order.id) if i.provider == "cryptopay")
    sb.cryptopay.pay(cp.external_id)
    await delivered_key(sb, order.id)
    sb.kryptoexpress.pay(kx.external_id)

    await sb.telegram.wait_for(message_with(sb, "another payment"), timeout=10)
    asked = await sb.telegram.wait_for(message_with(sb, "we need your wallet address"))
    assert f"{kx.amount.normalize():f} USDT_TRC20" in asked["text"]
    sb.telegram.press_button(BUYER, "Send my refund address")
    await sb.telegram.wait_for(message_with(sb, "address that should receive"))
    sb.telegram.send_text(BUYER, TRON_ADDRESS)
    instruction = await sb.telegram.wait_for(message_with(sb, "send exactly", ADMIN))
    assert TRON_ADDRESS in instruction["text"]
    [request] = await sb.app.refunds._requests(order_id=order.id)
    assert request.state != AWAITING_ADDRESS and request.kind == EXCESS


async def test_late_on_chain_payment_with_a_lost_webhook_is_found_by_polling(sb):
    order = await choose_on_chain(sb)
    invoice = await invoice_of(sb, order.id)
    sb.kryptoexpress.expire(invoice.external_id)  # the provider's deadline passes…
    async with sb.app.db.transaction() as session:  # …and ours
        await session.execute(update(Order).where(Order.id == order.id).values(
            expires_at=order.created_at - timedelta(seconds=1)))
    await sb.app.payments.expire()
    await sb.telegram.wait_for(message_with(sb, f"Order #{order.id} expired"))
    await sb.app.payments.poll()  # the provider reports it expired

    sb.kryptoexpress.retry_delays = ()
    sb.kryptoexpress.find(invoice.external_id).callback_url = LOST  # its webhook never arrives
    sb.kryptoexpress.pay(invoice.external_id)
    await sb.kryptoexpress.drain()
    assert sb.kryptoexpress.callback_deliveries and not any(d.ok for d in sb.kryptoexpress.callback_deliveries
                                                             if d.url == LOST)
    await sb.app.payments.poll()
    assert (await sb.app.orders.get(order.id)).status == Status.PAID_LATE
    told = await sb.telegram.wait_for(message_with(sb, "arrived after the invoice expired"))
    assert f"order #{order.id}" in told["text"]
    await sb.telegram.wait_for(message_with(sb, "paid after expiry", ADMIN))



def newest(sb, *fragments):
    """The buyer's newest bot message, if it contains one of `fragments`."""
    def check():
        messages = sb.telegram.chat_messages(BUYER, bot_only=True)
        last = messages[-1].get("text", "") if messages else ""
        return last if any(f in last for f in fragments) else None
    return check


async def buy_plan(sb, label: str, active: str):
    """Buy a plan with Crypto Pay; returns the order once the plan is active."""
    sb.telegram.send_text(BUYER, "/plans")
    await sb.telegram.wait_for(message_with(sb, "Signal plans"))
    sb.telegram.press_button(BUYER, label)
    await sb.telegram.wait_for(newest(sb, "Choose how to pay"))
    sb.telegram.press_button(BUYER, "Crypto Pay")
    if "accept our terms" in await sb.telegram.wait_for(newest(sb, "accept our terms", "with the button below")):
        sb.telegram.press_button(BUYER, "I accept")
        await sb.telegram.wait_for(newest(sb, "with the button below"))
    order = (await sb.app.orders.for_user(BUYER))[0]
    [invoice] = await sb.app.orders.invoices(order.id)
    sb.cryptopay.pay(invoice.external_id)
    await sb.telegram.wait_for(message_with(sb, active), timeout=10)
    return await sb.app.orders.get(order.id)


async def test_a_credited_lower_plan_is_not_refunded_twice_and_refunding_the_upgrade_gives_its_time_back(sb):
    sb.telegram.add_user(BUYER, "Buyer")
    basic = await buy_plan(sb, "Basic · month", "Basic plan active")
    pro = await buy_plan(sb, "Pro · month", "Pro plan active")
    assert pro.details["credit"]["cents"] > 0 and await sb.app.subscriptions.subscribers(["basic"]) == []

    # the lower order's unused value is already inside Pro's price: refunding it is refused, naming Pro
    sb.telegram.send_text(ADMIN, f"/refund {basic.id}")
    refused = await sb.telegram.wait_for(message_with(sb, "can't be refunded on its own", ADMIN))
    assert f"upgrade order #{pro.id}" in refused["text"] and f"Refund order #{pro.id} instead" in refused["text"]
    assert (await sb.app.orders.get(basic.id)).status == Status.FULFILLED and not sb.cryptopay.transfers
    result = await sb.app.refunds.refund(basic.id, admin_id=ADMIN)  # nor by any other path
    assert not result.ok and result.refusal is RefundProblem.CREDITED and result.credited_to == pro.id

    # refunding the upgrade takes Pro back and gives back the Basic time its credit ended
    sb.telegram.send_text(ADMIN, f"/refund {pro.id}")
    preview = await sb.telegram.wait_for(message_with(sb, f"Refund order #{pro.id} to user", ADMIN))
    assert "the credit it used is void, so the 30.0 days of the Basic plan it ended resume" in preview["text"]
    sb.telegram.press_button(ADMIN, "✅ Confirm refund")
    await sb.telegram.wait_for(message_with(sb, "the buyer has been told", ADMIN))
    told = await sb.telegram.wait_for(message_with(sb, f"Refund of order #{pro.id}"))
    assert "30.0 days of your Basic plan" in told["text"] and "resume now" in told["text"]
    current = await sb.app.subscriptions.current(BUYER)
    assert current.plan.code == "basic" and current.ends_at > sb.app.orders.clock() + timedelta(days=29, hours=23)
    assert len(sb.cryptopay.transfers) == 1  # what was paid for Pro (its price less the credit)

    # now the lower order can be refunded, and that takes back the time given back too
    sb.telegram.send_text(ADMIN, f"/refund {basic.id}")
    await sb.telegram.wait_for(message_with(sb, f"Refund order #{basic.id} to user", ADMIN))
    sb.telegram.press_button(ADMIN, "✅ Confirm refund")
    await sb.telegram.wait_for(message_with(sb, f"Refund of order #{basic.id}"))
    assert (await sb.app.subscriptions.current(BUYER)).plan.code == "free"
    assert len(sb.cryptopay.transfers) == 2
