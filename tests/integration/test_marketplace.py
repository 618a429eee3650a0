"""Signal-provider marketplace (issue 19): the application in the bot (a price out of range refused), the admin's
review (audited, the applicant told), publishing over the developer API to the provider's own chain (another
provider's signal id is 404, a suspended provider is refused), only subscribers get a provider's signals, and
each paid order's split in the ledger with refunds inside and after the hold."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from db.models_ledger import LedgerEntry, LedgerMovement
from db.models_signals import Outbox
from services.earnings import FEES, EarningsService, seller_account
from services.ledger import SALES
from services.marketplace import Application, Refused, Review, parse_price
from services.orders import Status
from services.plans import FREE
from services.signals import SignalIn
from tests.conftest import ADMIN_ID, make_settings
from tests.support.harness import Harness

APPLICANT, OTHER, SUBSCRIBER, BYSTANDER = 401, 402, 403, 404
SIGNAL = {"id": "s-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "100",
          "take_profits": ["110", "120"], "stop_loss": "95"}


def validate_signal(body: dict) -> SignalIn:
    return SignalIn.model_validate(body)


def texts(h, chat_id):
    return h.session.texts_to(chat_id)


async def approved_provider(h, user_id: int, name: str, price_cents: int = 2500) -> int:
    await h.users.seen(user_id, username=None, first_name=name, language_code="en")
    provider = await h.app.marketplace.apply(user_id, Application(
        name=name, description="Swing trades on majors", ecosystems=("crypto",), price_cents=price_cents,
        payout_method="telegram"))
    await h.app.marketplace.review(provider.id, Review.APPROVE, ADMIN_ID)
    return provider.id


async def paid_order(h, buyer: int, provider_id: int, paid_at: datetime | None = None):
    """A provider-subscription order, fulfilled by the product's fulfiller (the sandbox test pays one for real)."""
    order = await h.app.marketplace.place(buyer, provider_id)
    await h.app.orders.transition(order.id, Status.PAID, cause="test")
    order = await h.app.orders.get(order.id)
    if paid_at is not None:
        order.paid_at = paid_at
    await h.app.products.fulfillers["provider_sub"].fulfil(order)
    return order


# --------------------------------------------------------------------------- the application and the review

async def test_application_in_the_bot_refuses_a_price_out_of_range_and_the_admin_approves(harness):
    h, user = harness, harness.user(APPLICANT, first_name="Pat")
    await h.send(user, "/provider")
    assert "Become a signal provider" in texts(h, APPLICANT)[-1] and "you get 80% of" in texts(h, APPLICANT)[-1]
    await h.press(user, "prv:apply")
    for answer in ("Alpha Calls", "Swing trades on SOL and ETH, two a week", "crypto, forex"):
        await h.send(user, answer)
    assert "from $5.00 to $500.00" in texts(h, APPLICANT)[-1]
    await h.send(user, "4.99")
    assert "The price must be from $5.00 to $500.00 a month" in texts(h, APPLICANT)[-1]
    await h.send(user, "501")
    assert "The price must be from $5.00 to $500.00 a month" in texts(h, APPLICANT)[-1]
    await h.send(user, "25")
    assert "How should we pay you?" in texts(h, APPLICANT)[-1]
    await h.press(user, "prv:address")
    await h.send(user, "short")
    assert "does not look like an address" in texts(h, APPLICANT)[-1]
    await h.send(user, "TRC20:TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE")
    summary = texts(h, APPLICANT)[-1]
    assert "Alpha Calls" in summary and "$25.00 / month" in summary and "crypto, forex" in summary
    await h.press(user, "prv:submit")
    assert "Application sent" in texts(h, APPLICANT)[-1]
    assert any("New provider application: <b>Alpha Calls</b>" in t for t in texts(h, ADMIN_ID))
    provider = await h.app.marketplace.mine(APPLICANT)
    assert (provider.status, provider.price_cents, provider.payout_method) == ("pending", 2500, "address")

    await h.send(ADMIN_ID, "/providers")
    assert "1 waiting for review" in texts(h, ADMIN_ID)[-1]
    await h.press(ADMIN_ID, f"apv:{provider.id}")
    assert "TRC20:TQn9Y2" in texts(h, ADMIN_ID)[-1]
    await h.press(ADMIN_ID, f"apr:{provider.id}:approve")
    assert "is now approved" in texts(h, ADMIN_ID)[-1]
    assert "Your provider application <b>Alpha Calls</b> is approved" in texts(h, APPLICANT)[-1]
    await h.press(ADMIN_ID, f"apr:{provider.id}:approve")  # a second tap: nothing changes
    assert "no longer in that state" in h.session.of("AnswerCallbackQuery")[-1].text

    await h.press(ADMIN_ID, f"apr:{provider.id}:suspend")
    await h.send(ADMIN_ID, "late closing prices")
    assert "suspended: late closing prices" in texts(h, APPLICANT)[-1]
    entries, _pages = await h.app.audit.page(0)
    suspend = next(e for e in entries if e.action == "provider_suspend")
    assert suspend.before == {"status": "approved"} and suspend.after["reason"] == "late closing prices"
    assert any(e.action == "provider_approve" for e in entries)
    await h.send(user, "/provider")
    assert "Publishing is closed: late closing prices" in texts(h, APPLICANT)[-1]
    await h.press(ADMIN_ID, f"apv:{provider.id}")
    assert "♻️ Reinstate" in [b.text for row in h.session.of("EditMessageText")[-1].reply_markup.inline_keyboard
                              for b in row]
    await h.press(ADMIN_ID, f"apr:{provider.id}:reinstate")
    assert "is reinstated: publishing is open again" in texts(h, APPLICANT)[-1]
    assert (await h.app.marketplace.publisher(APPLICANT)).reason is None


async def test_a_rejected_applicant_is_told_why_and_may_apply_again(harness):
    h = harness
    await h.users.seen(OTHER, username=None, first_name="Oli", language_code="en")
    application = Application(name="Oli", description="Scalps on BTC", ecosystems=("crypto",), price_cents=900,
                              payout_method="telegram")
    provider = await h.app.marketplace.apply(OTHER, application)
    with pytest.raises(Refused):  # pending: nothing to apply for
        await h.app.marketplace.apply(OTHER, application)
    await h.press(ADMIN_ID, f"apr:{provider.id}:reject")
    await h.send(ADMIN_ID, "no track record yet")
    assert "was rejected: no track record yet" in texts(h, OTHER)[-1]
    again = await h.app.marketplace.apply(OTHER, application)
    assert (again.id, again.status, again.reason) == (provider.id, "pending", None)


def test_price_parsing_follows_the_range():
    assert parse_price("$19.99", (Decimal(5), Decimal(500))) == 1999
    for bad in ("4.99", "500.01", "abc", "1e3", "19.999", "-5"):
        with pytest.raises(Refused):
            parse_price(bad, (Decimal(5), Decimal(500)))


# --------------------------------------------------------------------------- publishing over the API

@pytest.fixture
async def api(database_url):
    h = await Harness(make_settings(database_url=database_url)).start()
    async with TestClient(TestServer(h.app.web)) as client:
        client.h = h
        yield client
    await h.close()


async def post(client, key, path, body):
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    return response.status, await response.json()


async def test_a_provider_publishes_to_its_own_chain_and_only_its_subscribers_get_it(api):
    h = api.h
    alpha = await approved_provider(h, APPLICANT, "Alpha")
    await approved_provider(h, OTHER, "Beta")
    for user_id in (SUBSCRIBER, BYSTANDER):
        await h.users.seen(user_id, username=None, first_name="U", language_code="en")
    await paid_order(h, SUBSCRIBER, alpha)
    _key, alpha_key = await h.app.api_keys.create(APPLICANT, "bot")
    _key, beta_key = await h.app.api_keys.create(OTHER, "bot")
    _key, plain_key = await h.app.api_keys.create(BYSTANDER, "reader")

    status, body = await post(api, alpha_key, "/api/v1/provider/signals", SIGNAL)
    assert status == 202 and body["stored"] is True
    signal_id = body["id"]
    assert (await post(api, alpha_key, "/api/v1/provider/signals", SIGNAL)) == \
        (200, {"stored": False, "duplicate": True, "id": signal_id})
    status, beta_body = await post(api, beta_key, "/api/v1/provider/signals", SIGNAL)  # the same sender id
    assert status == 202 and beta_body["id"] != signal_id

    async with h.db.session() as session:
        recipients = list(await session.scalars(select(Outbox.user_id).where(
            Outbox.kind == "signal", Outbox.item_id == signal_id)))
    assert recipients == [SUBSCRIBER]  # not the bystander, not a channel
    assert (await h.app.signals.usage(SUBSCRIBER, FREE, None)).today == 0  # not counted against house caps

    for ref in ("s-1", str(signal_id)):  # Beta names Alpha's signal by its sender id or by ours
        status, problem = await post(api, beta_key, f"/api/v1/provider/signals/{signal_id}/events",
                                     {"type": "closed", "price": "104"})
        assert status == 404 and problem["status"] == 404, ref
    status, body = await post(api, alpha_key, "/api/v1/provider/signals/s-1/events",
                              {"type": "tp_hit", "level": 1, "price": "110"})
    assert status == 202 and body["stored"] is True
    status, problem = await post(api, alpha_key, "/api/v1/provider/signals",
                                 {**SIGNAL, "id": "s-2", "stop_loss": "105"})
    assert status == 422 and problem["invalid_params"][0]["name"] == "stop_loss"

    status, problem = await post(api, plain_key, "/api/v1/provider/signals", {**SIGNAL, "id": "s-3"})
    assert status == 403 and problem["feature"] == "provider"
    await h.app.marketplace.review(alpha, Review.SUSPEND, ADMIN_ID, "checking")
    status, problem = await post(api, alpha_key, "/api/v1/provider/signals", {**SIGNAL, "id": "s-4"})
    assert status == 403 and problem["title"] == "Provider suspended"

    _trades, chain = await h.app.signals.track_record(alpha)
    assert chain.ok and chain.length == 1
    _trades, house_chain = await h.app.signals.track_record()
    assert house_chain.ok and house_chain.length == 0  # the house's chain holds none of them
    response = await api.get("/api/v1/signals", headers={"Authorization": f"Bearer {plain_key}"})
    assert (await response.json())["signals"] == []  # a provider's signals are its subscribers'


# --------------------------------------------------------------------------- money

class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def order_sum(h, order_id: int) -> int:
    async with h.db.session() as session:
        return await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                                    .join(LedgerMovement, LedgerMovement.id == LedgerEntry.movement_id)
                                    .where(LedgerMovement.ref == str(order_id)))


async def test_each_paid_order_is_split_exactly_and_refunds_reverse_it_inside_and_after_the_hold(harness):
    h, clock = harness, Clock()
    earnings = EarningsService(h.db, h.app.ledger, share=Decimal("0.80"), hold=timedelta(days=7), clock=clock)
    provider = await approved_provider(h, APPLICANT, "Alpha", price_cents=1999)
    await h.users.seen(SUBSCRIBER, username=None, first_name="U", language_code="en")
    seller, ledger = f"provider:{provider}", h.app.ledger
    first = await h.app.marketplace.place(SUBSCRIBER, provider)
    assert await earnings.record_sale(first.id, seller, Decimal("19.99"), clock.now)
    assert not await earnings.record_sale(first.id, seller, Decimal("19.99"), clock.now)  # once per order
    assert await ledger.balance(seller_account(seller, "pending")) == Decimal("15.992")
    assert await ledger.balance(FEES) == Decimal("3.998")
    balance = await earnings.balance(seller)
    assert (balance.payable, balance.pending, balance.paid) == (0, Decimal("15.992"), 0)
    assert balance.next_release == clock.now + timedelta(days=7)

    clock.now += timedelta(days=7)  # the hold has passed
    balance = await earnings.balance(seller)
    assert (balance.payable, balance.pending) == (Decimal("15.992"), 0)
    assert await earnings.record_payout(seller, Decimal("15.992"), "manual-1")
    assert not await earnings.record_payout(seller, Decimal("15.992"), "manual-1")  # once per reference
    with pytest.raises(ValueError):
        await earnings.record_payout(seller, Decimal("0.01"), "manual-2")  # nothing payable left

    async def another(price: str):
        order = await h.app.orders.create(
            user_id=SUBSCRIBER, product="provider_sub", product_ref=f"provider:{provider}",
            title=f"Alpha · 30 days #{clock.now.isoformat()}{price}", amount_cents=int(Decimal(price) * 100),
            ttl=timedelta(minutes=30), details={"provider_id": provider, "days": 30})
        assert await earnings.record_sale(order.id, seller, Decimal(price), clock.now)
        return order

    inside = await another("10.00")
    clock.now += timedelta(days=3)
    reversed_ = await earnings.refund(inside.id)
    assert (reversed_.share, reversed_.inside_hold) == (Decimal("8.00"), True)
    assert await earnings.refund(inside.id) == reversed_  # idempotent
    assert await order_sum(h, inside.id) == 0  # the sale is undone
    balance = await earnings.balance(seller)
    assert (balance.payable, balance.pending, balance.paid) == (0, 0, Decimal("15.992"))

    late = await another("25.00")
    clock.now += timedelta(days=8)  # paid out meanwhile, then refunded after the hold
    assert await earnings.record_payout(seller, Decimal("20.00"), "manual-3")
    reversed_ = await earnings.refund(late.id)
    assert (reversed_.share, reversed_.inside_hold) == (Decimal("20.00"), False)
    balance = await earnings.balance(seller)
    assert balance.payable == Decimal("-20.00") and balance.debt == Decimal("20.00")  # owed against earnings
    assert await ledger.balance(FEES) == Decimal("3.998")  # only the kept sale's fee
    assert await ledger.balance(SALES) == Decimal("-19.99")
    assert await order_sum(h, late.id) == 0

    await another("30.00")
    clock.now += timedelta(days=7)
    balance = await earnings.balance(seller)
    assert (balance.payable, balance.debt) == (Decimal("4.00"), 0)  # the next earnings paid the debt back


async def test_a_paid_subscription_stacks_a_month_and_a_refund_takes_back_the_unused_time(harness):
    h = harness
    provider = await approved_provider(h, APPLICANT, "Alpha", price_cents=2000)
    await h.users.seen(SUBSCRIBER, username=None, first_name="U", language_code="en")
    first = await paid_order(h, SUBSCRIBER, provider)
    second = await paid_order(h, SUBSCRIBER, provider)
    until = await h.app.marketplace.subscribed_until(SUBSCRIBER, provider)
    assert until - datetime.now(UTC) > timedelta(days=59)
    assert await h.app.marketplace.subscribers(provider) == 1
    assert await h.app.ledger.balance(seller_account(f"provider:{provider}", "pending")) == Decimal("32.00")
    taken = await h.app.products.fulfillers["provider_sub"].revoke(second)
    assert taken.record["inside_hold"] is True and Decimal(taken.record["share_usd"]) == 16
    assert taken.record["time_taken_s"] == 30 * 86400
    until = await h.app.marketplace.subscribed_until(SUBSCRIBER, provider)
    assert timedelta(days=29) < until - datetime.now(UTC) <= timedelta(days=30)
    assert await h.app.products.fulfillers["provider_sub"].revoke(first) is not None  # the rest of the time
    assert await h.app.marketplace.subscribed_until(SUBSCRIBER, provider) is None


async def test_a_subscribers_own_filters_apply_to_a_providers_signals(harness):
    h = harness
    provider = await approved_provider(h, APPLICANT, "Alpha")
    for user_id in (SUBSCRIBER, BYSTANDER):
        await h.users.seen(user_id, username=None, first_name="U", language_code="en")
        await paid_order(h, user_id, provider)
    await h.app.signals.toggle_filter(BYSTANDER, "ecosystem", "forex")  # subscribed, but only to forex
    result = await h.app.signals.ingest(validate_signal(SIGNAL), provider_id=provider)
    async with h.db.session() as session:
        recipients = list(await session.scalars(select(Outbox.user_id).where(
            Outbox.kind == "signal", Outbox.item_id == result.signal_id)))
    assert recipients == [SUBSCRIBER]
    await h.app.signals.toggle_filter(SUBSCRIBER, "symbol", "SOL/USDT")
    result = await h.app.signals.ingest(validate_signal({**SIGNAL, "id": "s-2"}), provider_id=provider)
    assert result.recipients == 1


async def test_market_and_provider_screens_in_russian(harness):
    h = harness
    provider = await approved_provider(h, APPLICANT, "Alpha", price_cents=1999)
    russian = h.user(SUBSCRIBER, language_code="ru")
    await h.send(russian, "/market")
    market = texts(h, SUBSCRIBER)[-1]
    assert "Маркетплейс сигналов" in market and "Сигналы проекта" in market
    labels = [b.text for row in h.session.of("SendMessage")[-1].reply_markup.inline_keyboard for b in row]
    assert "1. Alpha · новый" in labels
    await h.press(russian, f"mkt:{provider}")
    assert "Подписаться · 19,99\xa0$ в месяц" in [b.text for row in h.session.of("EditMessageText")[-1]
                                               .reply_markup.inline_keyboard for b in row]
    await h.send(h.user(BYSTANDER, language_code="ru"), "/provider")
    intro = texts(h, BYSTANDER)[-1]
    assert "Станьте провайдером сигналов" in intro and "вам достаётся 80\xa0%" in intro
