"""Issue 14 (items 1, 2, 5): refunds through the whole sandbox over real HTTP. An admin's refund is
confirmed first, takes back what it refunds at once (the AI key stops answering; the plan time and the
private channel go), and moves the money for real: Stars through Telegram, Crypto Pay by transfer to
the buyer's @CryptoBot wallet, on-chain by hand with the buyer's address and the admin's recorded
transaction. The buyer is never told "refunded" before the money moved."""

import httpx
import pytest

from sandbox.runner import SANDBOX_PRIVATE_CHANNEL_ID, running_sandbox
from services.orders import Status
from tests.e2e.test_purchase import BUYER, choose, delivered_key, key_works, message_with

ADMIN = 1000
TRON_ADDRESS = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[ADMIN], payment_poll_interval_seconds=1,
                               ai_token_models=["openai/gpt-4o-mini", "anthropic/claude-3-opus"]) as sandbox:
        sandbox.telegram.add_user(ADMIN, "Admin")
        yield sandbox


async def choose_on_chain(sb):
    """A $1.80 order (KryptoExpress takes $1 or more) in five taps: the buyer stays under the throttle."""
    sb.telegram.add_user(BUYER, "Buyer")
    sb.telegram.send_text(BUYER, "/tokens")
    await sb.telegram.wait_for(message_with(sb, "Pick a model"))
    sb.telegram.press_button(BUYER, "Anthropic: Claude 3 Opus")
    await sb.telegram.wait_for(message_with(sb, "Choose a package"))
    sb.telegram.press_button(BUYER, "Enterprise")
    await sb.telegram.wait_for(message_with(sb, "Choose how to pay"))
    sb.telegram.press_button(BUYER, "USDT TRC20 on-chain")
    await sb.telegram.wait_for(message_with(sb, "accept our terms"))
    sb.telegram.press_button(BUYER, "I accept")
    [order] = await sb.app.orders.for_user(BUYER)
    return order


async def invoice_of(sb, order_id):
    """The invoice, once the buyer has been shown how to pay it."""
    await sb.telegram.wait_for(lambda: message_with(sb, "Pay $")() or message_with(sb, "Send exactly")())
    [invoice] = await sb.app.orders.invoices(order_id)
    return invoice


async def key_refused(sb, key: str) -> bool:
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sb.openrouter.base_url}/chat/completions",
                                   headers={"Authorization": f"Bearer {key}"},
                                   json={"model": "openai/gpt-4o-mini", "max_tokens": 5,
                                         "messages": [{"role": "user", "content": "hi"}]})
    return answer.status_code == 401


async def confirm_refund(sb, order_id: int, button: str = "✅ Confirm refund") -> dict:
    sb.telegram.send_text(ADMIN, f"/refund {order_id}")
    preview = await sb.telegram.wait_for(message_with(sb, f"Refund order #{order_id}", ADMIN))
    assert (await sb.app.orders.get(order_id)).status != Status.REFUNDED  # nothing happens before confirming
    sb.telegram.press_button(ADMIN, button)
    await sb.telegram.wait_for(message_with(sb, "the buyer has been told", ADMIN))
    return preview


async def test_crypto_pay_refund_switches_the_key_off_and_transfers_the_money_back(sb):
    order = await choose(sb, "Crypto Pay")
    invoice = await invoice_of(sb, order.id)
    paid = sb.cryptopay.pay(invoice.external_id)
    key = await delivered_key(sb, order.id)
    await key_works(sb, key)

    preview_message = await confirm_refund(sb, order.id)
    preview = preview_message["text"]
    assert "the API key …" in preview and "switched off at once" in preview
    assert f"{paid['paid_amount']} USDT will be sent back automatically" in preview

    assert await key_refused(sb, key)  # at once, not at some later job
    [transfer] = sb.cryptopay.transfers.values()
    assert (transfer["user_id"], transfer["asset"], transfer["amount"]) == (BUYER, "USDT", paid["paid_amount"])
    told = await sb.telegram.wait_for(message_with(sb, f"Refund of order #{order.id}"))
    assert "has been switched off" in told["text"]
    assert f"{paid['paid_amount']} USDT sent back (transfer {transfer['transfer_id']})" in told["text"]
    assert any("@CryptoBot: you received" in m.get("text", "") for m in sb.telegram.chat_messages(BUYER))

    sb.telegram.send_text(BUYER, "/orders")
    orders = await sb.telegram.wait_for(message_with(sb, "Your orders"))
    assert "switched off" in orders["text"] and "Refund sent" in orders["text"]
    assert "left of" not in orders["text"]

    # the retry job and a second confirmation change nothing: one transfer, one refund
    assert await sb.app.refunds.sweep() == 0
    confirm = preview_message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    sb.telegram.press(ADMIN, preview_message["message_id"], confirm, strict=False)  # a stale second tap
    await sb.telegram.wait_for(lambda: "refunded: nothing to refund" in str(
        sb.telegram.calls_of("answerCallbackQuery")[-1].params))
    assert len(sb.cryptopay.transfers) == 1
    entries, _pages = await sb.app.audit.page(0)
    audit = next(e for e in entries if e.action == "refund")
    assert audit.after["taken_back"]["keys_disabled"] and audit.after["money"][0]["state"] == "sent"


async def test_on_chain_refund_asks_the_buyer_for_an_address_and_ends_with_the_admins_transaction(sb):
    order = await choose_on_chain(sb)
    invoice = await invoice_of(sb, order.id)
    sb.kryptoexpress.pay(invoice.external_id)
    key = await delivered_key(sb, order.id)

    preview = (await confirm_refund(sb, order.id))["text"]
    assert "the buyer is asked for an address" in preview
    assert await key_refused(sb, key)
    asked = await sb.telegram.wait_for(message_with(sb, "we need your wallet address"))
    assert "TRC20" in asked["text"] and "sent back" not in asked["text"] and "refunded" not in asked["text"]

    sb.telegram.press_button(BUYER, "Send my refund address")
    await sb.telegram.wait_for(message_with(sb, "address that should receive"))
    sb.telegram.send_text(BUYER, "not-an-address")
    await sb.telegram.wait_for(message_with(sb, "valid TRC20 address"))
    sb.telegram.send_text(BUYER, TRON_ADDRESS)
    pending = await sb.telegram.wait_for(message_with(sb, "will be sent to"))
    assert TRON_ADDRESS in pending["text"] and "Refund pending" in pending["text"]

    instruction = await sb.telegram.wait_for(message_with(sb, "send exactly", ADMIN))
    amount = f"{invoice.amount.normalize():f} USDT_TRC20"
    assert amount in instruction["text"] and TRON_ADDRESS in instruction["text"] and "TRC20" in instruction["text"]
    sb.telegram.press_button(ADMIN, "Record the transaction")
    await sb.telegram.wait_for(message_with(sb, "Send the transaction hash", ADMIN))
    sb.telegram.send_text(ADMIN, "a1b2c3d4e5f60718293a4b5c6d7e8f90")
    await sb.telegram.wait_for(message_with(sb, "Recorded; the buyer has been sent the transaction", ADMIN))
    sent = await sb.telegram.wait_for(message_with(sb, "Refund sent"))
    assert "a1b2c3d4e5f60718293a4b5c6d7e8f90" in sent["text"] and amount in sent["text"]

    sb.telegram.send_text(ADMIN, f"/refund_done {order.id} ffffffffff")
    await sb.telegram.wait_for(message_with(sb, "no refund waiting to be sent by hand", ADMIN))


async def test_overpaid_difference_is_refunded_on_its_own(sb):
    order = await choose_on_chain(sb)
    invoice = await invoice_of(sb, order.id)
    sb.kryptoexpress.pay(invoice.external_id, invoice.amount + 2)
    key = await delivered_key(sb, order.id)

    sb.telegram.send_text(ADMIN, f"/refund {order.id}")
    await sb.telegram.wait_for(message_with(sb, f"Refund order #{order.id}", ADMIN))
    sb.telegram.press_button(ADMIN, "Refund only the overpaid 2 USDT_TRC20")
    await sb.telegram.wait_for(message_with(sb, "Refunding the overpaid part", ADMIN))
    asked = await sb.telegram.wait_for(message_with(sb, "what you paid over the price"))
    assert "2 USDT_TRC20" in asked["text"]
    assert (await sb.app.orders.get(order.id)).status == Status.FULFILLED
    await key_works(sb, key)  # the order itself stands

    sb.telegram.press_button(BUYER, "Send my refund address")
    await sb.telegram.wait_for(message_with(sb, "address that should receive"))
    sb.telegram.send_text(BUYER, TRON_ADDRESS)
    await sb.telegram.wait_for(message_with(sb, "send exactly 2 USDT_TRC20", ADMIN))
    sb.telegram.send_text(ADMIN, f"/refund_done {order.id} 0xfeedface12")
    sent = await sb.telegram.wait_for(message_with(sb, "Refund sent"))
    assert "2 USDT_TRC20" in sent["text"]

    # the difference goes back once; a full refund later returns only the rest
    sb.telegram.send_text(ADMIN, f"/refund {order.id}")
    again = await sb.telegram.wait_for(message_with(sb, "Money back:", ADMIN))
    assert f"{invoice.amount.normalize():f} USDT_TRC20 on-chain" in again["text"]
    assert "Refund only the overpaid" not in str(again.get("reply_markup"))


async def test_stars_plan_refund_ends_the_plan_and_the_channel_at_once(sb):
    sb.telegram.add_user(BUYER, "Buyer")
    sb.telegram.send_text(BUYER, "/plans")
    await sb.telegram.wait_for(message_with(sb, "Pro"))
    sb.telegram.press_button(BUYER, "Pro · month")
    await sb.telegram.wait_for(message_with(sb, "Choose how to pay"))
    sb.telegram.press_button(BUYER, "Telegram Stars")
    await sb.telegram.wait_for(message_with(sb, "accept our terms"))
    sb.telegram.press_button(BUYER, "I accept")
    await sb.telegram.wait_for(lambda: any("invoice" in m for m in sb.telegram.chat_messages(BUYER, bot_only=True)))
    assert (await sb.telegram.pay_invoice(BUYER))["ok"]
    active = await sb.telegram.wait_for(message_with(sb, "plan active"), timeout=10)
    link = next(w for w in active["text"].split() if "/+" in w or "joinchat" in w or w.startswith("http"))
    sb.telegram.join_via_link(BUYER, link)
    assert sb.telegram.member_status(SANDBOX_PRIVATE_CHANNEL_ID, BUYER)["status"] == "member"
    [order] = await sb.app.orders.for_user(BUYER)

    preview = (await confirm_refund(sb, order.id))["text"]
    assert "plan time bought with this order ends at once" in preview
    assert (await sb.app.subscriptions.current(BUYER)).plan.code == "free"
    assert sb.telegram.member_status(SANDBOX_PRIVATE_CHANNEL_ID, BUYER)["status"] == "left"
    assert sb.telegram.calls_of("refundStarPayment")
    told = await sb.telegram.wait_for(message_with(sb, f"Refund of order #{order.id}"))
    assert "You're on the Free plan now" in told["text"] and "private channel has ended" in told["text"]
    assert "⭐ sent back" in told["text"]
