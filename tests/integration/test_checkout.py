"""The buyer's side of the payment core: method choice, terms once, invoices, "Check payment" that
cannot hammer the provider, cancel, and forged buttons for someone else's order."""

from datetime import timedelta

import pytest

from handlers.user.checkout import AcceptTerms, CancelOrder, CheckPay, PayWith
from sandbox.cryptopay import CryptoPayStandIn
from services.orders import Status
from tests.conftest import make_settings
from tests.support.harness import Harness


@pytest.fixture
async def shop(database_url):
    async with CryptoPayStandIn() as cryptopay:
        settings = make_settings(database_url=database_url, crypto_pay_token=cryptopay.token,
                                 crypto_pay_api_url=cryptopay.base_url)
        h = await Harness(settings).start()
        h.cryptopay = cryptopay
        yield h
        await h.close()


async def order_for(h, user_id, cents=999):
    await h.users.seen(user_id, username=None, first_name="Buyer", language_code="en")
    return await h.app.orders.create(user_id=user_id, product="ai_tokens", product_ref="m", title="5,000 tokens",
                                     amount_cents=cents, ttl=timedelta(minutes=30), details={"base_usd": "1"})


def answer(h):
    return h.session.of("AnswerCallbackQuery")[-1].text


async def test_first_purchase_asks_for_the_terms_once(shop):
    order = await order_for(shop, 1)
    await shop.press(1, PayWith(order_id=order.id, method="cryptopay").pack())
    assert "accept our terms" in shop.session.of("EditMessageText")[-1].text
    assert await shop.app.orders.invoices(order.id) == []  # nothing created before accepting
    await shop.press(1, AcceptTerms(order_id=order.id, method="cryptopay").pack())
    [invoice] = await shop.app.orders.invoices(order.id)
    text = shop.session.of("EditMessageText")[-1].text
    assert "Pay $9.99 with the button below" in text and "Valid until" in text
    second = await order_for(shop, 1)
    await shop.press(1, PayWith(order_id=second.id, method="cryptopay").pack())  # accepted already
    assert len(await shop.app.orders.invoices(second.id)) == 1
    assert invoice.pay_url.startswith(shop.cryptopay.public_url)


async def test_buttons_for_someone_elses_order_are_refused(shop):
    order = await order_for(shop, 2)
    await shop.users.seen(3, username=None, first_name="Mallory", language_code="en")
    await shop.users.accept_terms(3)
    for data in (PayWith(order_id=order.id, method="cryptopay"), AcceptTerms(order_id=order.id, method="stars"),
                 CheckPay(order_id=order.id), CancelOrder(order_id=order.id)):
        await shop.press(3, data.pack())
        assert answer(shop) == "This order isn't yours."
    assert (await shop.app.orders.get(order.id)).status == Status.PENDING
    assert await shop.app.orders.invoices(order.id) == []
    await shop.press(3, PayWith(order_id=999_999, method="stars").pack())
    assert answer(shop) == "This order doesn't exist."


async def test_check_payment_cannot_hammer_the_provider(shop):
    order = await order_for(shop, 4)
    await shop.users.accept_terms(4)
    await shop.press(4, PayWith(order_id=order.id, method="cryptopay").pack())
    before = len(shop.cryptopay.calls_of("getInvoices"))
    for _ in range(5):
        await shop.press(4, CheckPay(order_id=order.id).pack())
    assert len(shop.cryptopay.calls_of("getInvoices")) - before == 1
    assert answer(shop) == "Checked a moment ago — please wait a few seconds."
    [invoice] = await shop.app.orders.invoices(order.id)
    shop.cryptopay.pay(invoice.external_id)
    async with shop.db.transaction() as session:  # ten seconds later
        from sqlalchemy import update

        from db.models import Invoice
        await session.execute(update(Invoice).values(checked_at=None))
    await shop.press(4, CheckPay(order_id=order.id).pack())
    assert answer(shop) == f"Order #{order.id}: 💰 paid, delivering"
    assert (await shop.app.orders.get(order.id)).status == Status.PAID


async def test_cancel_and_wrong_state(shop):
    order = await order_for(shop, 5)
    await shop.users.accept_terms(5)
    await shop.press(5, CancelOrder(order_id=order.id).pack())
    assert "cancelled. Nothing was charged" in shop.session.of("EditMessageText")[-1].text
    await shop.press(5, PayWith(order_id=order.id, method="cryptopay").pack())
    assert answer(shop) == "This order is no longer awaiting payment. See /orders."
    await shop.press(5, PayWith(order_id=(await order_for(shop, 5)).id, method="bitcoin-cash").pack())
    assert answer(shop) == "This payment method isn't available."


async def test_provider_down_when_creating_the_invoice(shop):
    order = await order_for(shop, 6)
    await shop.users.accept_terms(6)
    shop.cryptopay.down = True
    await shop.press(6, PayWith(order_id=order.id, method="cryptopay").pack())
    assert "isn't answering right now" in answer(shop)
    assert (await shop.app.orders.get(order.id)).status == Status.PENDING
    shop.cryptopay.down = False
    await shop.press(6, PayWith(order_id=order.id, method="cryptopay").pack())
    assert len(await shop.app.orders.invoices(order.id)) == 1
