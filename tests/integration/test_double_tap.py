"""Double taps processed at the same moment (issue 14 item 3), on SQLite and PostgreSQL: the same
offer tapped twice makes one order, a payment method tapped twice makes one invoice at the
provider, and a repeated tap through the real dispatcher is answered without an error."""

import asyncio
from datetime import timedelta

import pytest

from handlers.user.checkout import PayWith
from sandbox.cryptopay import CryptoPayStandIn
from services.orders import REUSE_WINDOW, Status
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


def place(h, user_id, cents=999):
    return h.app.orders.create(user_id=user_id, product="ai_tokens", product_ref="m", title="5,000 tokens",
                               amount_cents=cents, ttl=timedelta(minutes=30))


async def test_the_same_offer_tapped_at_once_makes_one_order(shop):
    await shop.users.seen(1, username=None, first_name="B", language_code="en")
    orders = await asyncio.gather(*(place(shop, 1) for _ in range(5)))
    assert len({o.id for o in orders}) == 1
    assert len(await shop.app.orders.for_user(1)) == 1
    other = await place(shop, 1, cents=1999)  # another offer is another order
    assert other.id != orders[0].id


async def test_an_old_open_order_is_replaced_not_reused(shop):
    await shop.users.seen(2, username=None, first_name="B", language_code="en")
    first = await place(shop, 2)
    later = shop.app.orders.clock() + REUSE_WINDOW + timedelta(seconds=1)
    shop.app.orders.clock = lambda: later
    second = await place(shop, 2)
    assert second.id != first.id
    assert (await shop.app.orders.get(first.id)).status == Status.CANCELLED


async def test_a_method_tapped_at_once_makes_one_invoice_at_the_provider(shop):
    await shop.users.seen(3, username=None, first_name="B", language_code="en")
    await shop.users.accept_terms(3)
    order = await place(shop, 3)
    results = await asyncio.gather(*(shop.app.checkout.start(order.id, 3, "cryptopay") for _ in range(4)))
    made = [r for r in results if r.problem is None]
    assert made and {r.invoice.external_id for r in made} == {made[0].invoice.external_id}
    assert {r.problem for r in results} <= {None, "busy"}
    assert len(shop.cryptopay.invoices) == 1
    assert len(await shop.app.orders.invoices(order.id)) == 1
    # a later tap shows the same invoice again, through the real dispatcher, without an error
    shop.session.clear()
    await shop.press(3, PayWith(order_id=order.id, method="cryptopay").pack())
    assert len(shop.cryptopay.invoices) == 1
    assert not any("went wrong" in (getattr(c.method, "text", "") or "") for c in shop.session.calls)
    assert "Pay $9.99 with the button below" in shop.session.of("EditMessageText")[-1].text


async def test_a_claim_left_by_a_crash_is_taken_over(shop):
    from services.checkout import CLAIM_TIMEOUT

    await shop.users.seen(4, username=None, first_name="B", language_code="en")
    order = await place(shop, 4)
    method = shop.app.checkout.method("cryptopay", order.amount_cents)
    assert isinstance(await shop.app.checkout._claim(order.id, method), int)  # ...and the process dies
    assert (await shop.app.checkout.start(order.id, 4, "cryptopay")).problem == "busy"
    later = shop.app.orders.clock() + CLAIM_TIMEOUT + timedelta(seconds=1)
    shop.app.orders.clock = lambda: later
    result = await shop.app.checkout.start(order.id, 4, "cryptopay")
    assert result.problem is None and len(shop.cryptopay.invoices) == 1
