"""Buying AI tokens end to end through the whole sandbox, once per payment provider: the real app,
real HTTP, the stand-ins' own pay actions and signed webhooks. The delivered key is then used for a
chat completion on the sandbox's OpenRouter."""

import re

import httpx
import pytest

from sandbox.runner import running_sandbox
from services.orders import Status

BUYER = 701


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[1000], payment_poll_interval_seconds=1) as sandbox:
        yield sandbox


def message_with(sb, fragment, chat_id=BUYER):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


async def choose(sb, method_label: str, package: str = "Starter · 10,000", custom: str | None = None):
    sb.telegram.add_user(BUYER, "Buyer")
    sb.telegram.send_text(BUYER, "/tokens")
    await sb.telegram.wait_for(message_with(sb, "Pick a model"))
    sb.telegram.press_button(BUYER, "OpenAI: GPT-4o-mini")
    await sb.telegram.wait_for(message_with(sb, "Choose a package"))
    sb.telegram.press_button(BUYER, package)
    if custom:
        await sb.telegram.wait_for(message_with(sb, "How many tokens"))
        sb.telegram.send_text(BUYER, custom)
    await sb.telegram.wait_for(message_with(sb, "Choose how to pay"))
    sb.telegram.press_button(BUYER, method_label)
    await sb.telegram.wait_for(message_with(sb, "accept our terms"))
    sb.telegram.press_button(BUYER, "I accept")
    [order] = await sb.app.orders.for_user(BUYER)
    return order


async def delivered_key(sb, order_id) -> str:
    message = await sb.telegram.wait_for(message_with(sb, "Your AI tokens are ready"), timeout=10)
    assert f"Receipt: order #{order_id}" in message["text"]
    async def fulfilled():
        return (await sb.app.orders.get(order_id)).status == Status.FULFILLED
    await sb.telegram.wait_for(fulfilled)
    return re.search(r"sk-or-v1-\w+", message["text"]).group(0)


def has_invoice(sb):
    def check():
        return any("invoice" in m for m in sb.telegram.chat_messages(BUYER, bot_only=True))
    return check


async def key_works(sb, key: str) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sb.openrouter.base_url}/chat/completions",
                                   headers={"Authorization": f"Bearer {key}"},
                                   json={"model": "openai/gpt-4o-mini", "max_tokens": 50,
                                         "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] > 0


async def test_buy_tokens_with_stars(sb):
    order = await choose(sb, "Telegram Stars")
    await sb.telegram.wait_for(has_invoice(sb))
    paid = await sb.telegram.pay_invoice(BUYER)
    assert paid["ok"], paid
    key = await delivered_key(sb, order.id)
    await key_works(sb, key)
    # Telegram delivers successful_payment again: counted once
    sb.telegram.resend_successful_payment(paid["telegram_payment_charge_id"])
    await sb.telegram.wait_for(lambda: not sb.telegram.updates)
    assert len(await sb.app.orders.payments(order.id)) == 1
    assert len([k for k in sb.openrouter.keys.values() if k.name == f"order-{order.id}"]) == 1


async def test_stars_pre_checkout_refuses_an_expired_order(sb):
    order = await choose(sb, "Telegram Stars")
    await sb.telegram.wait_for(has_invoice(sb))
    await sb.app.orders.transition(order.id, Status.CANCELLED, cause="test")
    refused = await sb.telegram.pay_invoice(BUYER)
    assert refused == {**refused, "ok": False, "reason": "refused"}
    assert "already paid or closed" in refused["error_message"]
    assert await sb.app.orders.payments(order.id) == []


async def test_buy_tokens_with_crypto_pay(sb):
    order = await choose(sb, "Crypto Pay")
    invoice_message = await sb.telegram.wait_for(message_with(sb, "Pay $0.01 with the button below"))
    pay_button = invoice_message["reply_markup"]["inline_keyboard"][0][0]
    assert pay_button["url"].startswith(sb.cryptopay.public_url)
    [invoice] = await sb.app.orders.invoices(order.id)
    sb.cryptopay.pay(invoice.external_id)  # the payer uses the sandbox pay page; a signed webhook follows
    key = await delivered_key(sb, order.id)
    await key_works(sb, key)
    assert sb.cryptopay.webhook_deliveries


async def choose_cheap_order_sees_no_krypto_express(sb):
    """KryptoExpress takes $1 or more: a $0.01 order is not offered it."""
    sb.telegram.add_user(BUYER + 1)
    sb.telegram.send_text(BUYER + 1, "/tokens")
    await sb.telegram.wait_for(message_with(sb, "Pick a model", BUYER + 1))
    sb.telegram.press_button(BUYER + 1, "OpenAI: GPT-4o-mini")
    await sb.telegram.wait_for(message_with(sb, "Choose a package", BUYER + 1))
    sb.telegram.press_button(BUYER + 1, "Starter")
    options = await sb.telegram.wait_for(message_with(sb, "Choose how to pay", BUYER + 1))
    labels = [b["text"] for row in options["reply_markup"]["inline_keyboard"] for b in row]
    assert labels[:2] == ["⭐ Telegram Stars (1 ⭐)", "💎 Crypto Pay (@CryptoBot)"]
    assert not any("on-chain" in label for label in labels)


async def test_buy_tokens_on_chain_with_krypto_express(sb):
    await choose_cheap_order_sees_no_krypto_express(sb)
    order = await choose(sb, "USDT TRC20 on-chain", package="Custom amount", custom="2,000,000")  # $1.44
    message = await sb.telegram.wait_for(message_with(sb, "Send exactly"))
    [invoice] = await sb.app.orders.invoices(order.id)
    assert invoice.address in message["text"] and f"{invoice.amount.normalize():f}" in message["text"]
    await sb.telegram.wait_for(lambda: [m for m in sb.telegram.chat_messages(BUYER) if "photo" in m])  # QR
    sb.kryptoexpress.pay(invoice.external_id)
    key = await delivered_key(sb, order.id)
    await key_works(sb, key)
