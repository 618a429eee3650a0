"""A provider's suspension (issue 19): its subscribers are told, and their unused time is refunded through the
payment core's refund path (the money sent back by Crypto Pay transfer, the time taken back, the provider's share
reversed in the ledger); a second pass (the sweep) refunds nothing twice."""

from decimal import Decimal

import pytest

from handlers.user.checkout import PayWith
from sandbox.cryptopay import CryptoPayStandIn
from services.earnings import FEES, seller_account
from services.orders import Status
from tests.conftest import ADMIN_ID, make_settings
from tests.integration.test_marketplace import approved_provider
from tests.support.harness import Harness

PROVIDER_USER, ALICE, BOB = 700, 701, 702


@pytest.fixture
async def market(database_url):
    async with CryptoPayStandIn() as cryptopay:
        settings = make_settings(database_url=database_url, crypto_pay_token=cryptopay.token,
                                 crypto_pay_api_url=cryptopay.base_url)
        h = await Harness(settings).start()
        h.cryptopay = cryptopay
        yield h
        await h.close()


async def buy_month(h, user_id: int, provider_id: int):
    """A month with the provider, paid through the Crypto Pay stand-in and fulfilled."""
    await h.users.seen(user_id, username=None, first_name=f"U{user_id}", language_code="en")
    await h.users.accept_terms(user_id)
    order = await h.app.marketplace.place(user_id, provider_id)
    await h.press(user_id, PayWith(order_id=order.id, method="cryptopay").pack())
    [invoice] = await h.app.orders.invoices(order.id)
    h.cryptopay.pay(invoice.external_id, "USDT")
    await h.app.payments.poll()
    await h.app.worker.run_once()
    assert (await h.app.orders.get(order.id)).status == Status.FULFILLED
    return order


async def test_suspension_tells_subscribers_and_refunds_their_unused_time(market):
    h, cp = market, market.cryptopay
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha", price_cents=2500)
    seller = f"provider:{provider_id}"
    orders = [await buy_month(h, ALICE, provider_id), await buy_month(h, BOB, provider_id),
              await buy_month(h, BOB, provider_id)]  # Bob renewed: two months stacked
    assert await h.app.ledger.balance(seller_account(seller, "pending")) == Decimal("60.00")
    assert await h.app.marketplace.subscribed_until(BOB, provider_id) is not None

    await h.press(ADMIN_ID, f"apr:{provider_id}:suspend")
    await h.send(ADMIN_ID, "late closing prices")

    for user_id in (ALICE, BOB):
        told = h.session.texts_to(user_id)
        notices = [t for t in told if "<b>Alpha</b> is suspended by the marketplace's review (late closing prices)"
                   in t]
        assert len(notices) == 1, told  # told once, however many months they had
        assert any("Refund of order" in t for t in told)
        assert await h.app.marketplace.subscribed_until(user_id, provider_id) is None  # no time left
    for order in orders:
        assert (await h.app.orders.get(order.id)).status == Status.REFUNDED
    refunds = sorted((t["user_id"], t["asset"], Decimal(t["amount"])) for t in cp.transfers.values())
    assert refunds == [(ALICE, "USDT", Decimal(25)), (BOB, "USDT", Decimal(25)), (BOB, "USDT", Decimal(25))]
    assert await h.app.ledger.balance(seller_account(seller, "pending")) == 0  # the shares reversed (in the hold)
    assert await h.app.ledger.balance(FEES) == 0
    assert any("Alpha: 3 subscriptions with time left refunded" in t for t in h.session.texts_to(ADMIN_ID))

    h.session.clear()
    assert await h.app.suspension.settle() == 0  # the sweep: nothing is refunded twice
    assert len(cp.transfers) == 3 and h.session.texts_to(ALICE) == []
