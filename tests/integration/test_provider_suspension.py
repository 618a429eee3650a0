"""A provider's suspension (issue 19): its subscribers are told, and their unused time is refunded pro rata (to the
second, half-up to the cent) through the payment core's refund path (the money sent back by Crypto Pay transfer,
the time taken back, the provider's share and the platform's fee reversed in the same proportion); a Stars payment's
unused part becomes API credit; a second pass (the sweep) or a second suspension refunds nothing twice."""

from datetime import timedelta
from decimal import Decimal

import pytest

from db.base import utcnow
from handlers.user.checkout import PayWith
from sandbox.cryptopay import CryptoPayStandIn
from services.earnings import FEES, seller_account
from services.ledger import SALES
from services.marketplace import Review
from services.orders import PaymentReport, Status
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


async def buy_month_with_stars(h, user_id: int, provider_id: int):
    """A month paid in Telegram Stars (the payment Telegram reports), fulfilled."""
    await h.users.seen(user_id, username=None, first_name=f"U{user_id}", language_code="en")
    await h.users.accept_terms(user_id)
    order = await h.app.marketplace.place(user_id, provider_id)
    await h.press(user_id, PayWith(order_id=order.id, method="stars").pack())
    [invoice] = await h.app.orders.invoices(order.id)
    await h.app.payments.record(PaymentReport("stars", invoice.external_id, f"charge-{order.id}", invoice.amount,
                                              "XTR"))
    await h.app.worker.run_once()
    assert (await h.app.orders.get(order.id)).status == Status.FULFILLED
    return order


def days_later(h, days: int) -> None:
    """The marketplace's clock (the subscriptions' time) moves `days` on; the hold's clock does not."""
    h.app.marketplace.clock = lambda: utcnow() + timedelta(days=days)


async def test_ten_days_into_a_month_twenty_thirtieths_are_refunded_and_the_share_reverses_in_proportion(market):
    h, cp = market, market.cryptopay
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha", price_cents=2500)
    seller = f"provider:{provider_id}"
    fees, sales = await h.app.ledger.balance(FEES), await h.app.ledger.balance(SALES)
    alice = await buy_month(h, ALICE, provider_id)
    bob = [await buy_month(h, BOB, provider_id), await buy_month(h, BOB, provider_id)]  # stacked: 60 days
    days_later(h, 10)

    await h.press(ADMIN_ID, f"apr:{provider_id}:suspend")
    await h.send(ADMIN_ID, "late closing prices")

    refunds = sorted((t["user_id"], Decimal(t["amount"])) for t in cp.transfers.values())
    # 20/30 of $25 = $16.666… → $16.67 (half-up to the cent); Bob's second month had not started: all of it
    assert refunds == [(ALICE, Decimal("16.67")), (BOB, Decimal("16.67")), (BOB, Decimal(25))]
    for order in (alice, *bob):
        assert (await h.app.orders.get(order.id)).status == Status.REFUNDED
    assert any("Refund of order" in t and "for its unused part" in t and "16.67 USDT sent back" in t
               for t in h.session.texts_to(ALICE))
    for user_id in (ALICE, BOB):
        assert await h.app.marketplace.subscribed_until(user_id, provider_id) is None
    # the provider keeps its share of the 10 used days of two months: 80 % of ($25 − $16.67) each, now payable
    kept_share = (Decimal(25) - Decimal("16.67")) * Decimal("0.8")
    assert await h.app.ledger.balance(seller_account(seller, "pending")) == 0
    assert await h.app.ledger.balance(seller_account(seller, "payable")) == 2 * kept_share
    assert await h.app.ledger.balance(FEES) - fees == 2 * (Decimal(25) - Decimal("16.67")) * Decimal("0.2")
    assert await h.app.ledger.balance(SALES) - sales == -2 * (Decimal(25) - Decimal("16.67"))


async def test_a_repeated_suspension_refunds_nothing_twice(market):
    h, cp = market, market.cryptopay
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha", price_cents=3000)
    await buy_month(h, ALICE, provider_id)
    days_later(h, 15)
    await h.app.marketplace.review(provider_id, Review.SUSPEND, ADMIN_ID, "checking")
    assert await h.app.suspension.settle(provider_id) == 1
    assert [Decimal(t["amount"]) for t in cp.transfers.values()] == [Decimal(15)]  # half of $30
    payable = await h.app.ledger.balance(seller_account(f"provider:{provider_id}", "payable"))
    assert payable == Decimal(12)  # 80 % of the used half

    await h.app.marketplace.review(provider_id, Review.REINSTATE, ADMIN_ID)
    fresh = await buy_month(h, BOB, provider_id)  # bought after the reinstatement (on day 15)
    days_later(h, 25)
    await h.app.marketplace.review(provider_id, Review.SUSPEND, ADMIN_ID, "again")
    assert await h.app.suspension.settle(provider_id) == 1  # Bob's month only; Alice's was refunded before
    assert await h.app.suspension.settle() == 0
    amounts = sorted((t["user_id"], Decimal(t["amount"])) for t in cp.transfers.values())
    assert amounts == [(ALICE, Decimal(15)), (BOB, Decimal(20))]  # Bob used 10 of his 30 days
    assert (await h.app.orders.get(fresh.id)).status == Status.REFUNDED
    assert await h.app.ledger.balance(seller_account(f"provider:{provider_id}", "payable")) == Decimal(20)


async def test_a_stars_payment_gets_its_unused_part_as_api_credit_and_a_month_not_begun_its_stars_back(market):
    h = market
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha", price_cents=2500)
    order = await buy_month_with_stars(h, ALICE, provider_id)
    later = await buy_month_with_stars(h, ALICE, provider_id)  # stacked: starts when the first ends
    days_later(h, 10)
    await h.app.marketplace.review(provider_id, Review.SUSPEND, ADMIN_ID, "checking")
    assert await h.app.suspension.settle(provider_id) == 2
    # Telegram returns only whole charges: the month begun becomes API credit, the month not begun goes back whole
    [refund] = h.session.of("RefundStarPayment")
    assert refund.telegram_payment_charge_id == f"charge-{later.id}"
    assert await h.app.ledger.credit(ALICE) == Decimal("16.67")
    for each in (order, later):
        assert (await h.app.orders.get(each.id)).status == Status.REFUNDED
    assert any("$16.67 added to your API credit (/api)" in t for t in h.session.texts_to(ALICE))
    assert await h.app.ledger.balance(seller_account(f"provider:{provider_id}", "payable")) == \
        (Decimal(25) - Decimal("16.67")) * Decimal("0.8")
    assert await h.app.suspension.settle() == 0 and await h.app.ledger.credit(ALICE) == Decimal("16.67")
    assert len(h.session.of("RefundStarPayment")) == 1
