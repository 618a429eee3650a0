"""The AI-token flow in-process against the OpenRouter stand-in over real HTTP: browsing, custom
amounts, headroom, and key fulfilment that is idempotent and never stores the secret."""

from decimal import Decimal

import pytest
from sqlalchemy import text

from handlers.user.ai_tokens import TokBuy, TokCustom, TokModel
from handlers.user.checkout import PayWith
from sandbox.openrouter import OpenRouterStandIn
from services.ai_tokens import key_name
from services.orders import PaymentReport, Status
from tests.conftest import ADMIN_ID, make_settings
from tests.support.harness import Harness

MODELS = ["openai/gpt-4o-mini", "anthropic/claude-3-opus"]


@pytest.fixture
async def openrouter():
    async with OpenRouterStandIn(credits=Decimal("50")) as stand_in:
        yield stand_in


@pytest.fixture
async def shop(openrouter, database_url):
    settings = make_settings(database_url=database_url, openrouter_api_url=openrouter.base_url,
                             openrouter_management_key=openrouter.management_key, ai_token_models=MODELS)
    h = await Harness(settings).start()
    yield h
    await h.close()


def last(h, user_id):
    return h.session.texts_to(user_id)[-1]


def buttons(h, name="EditMessageText"):
    method = h.session.of(name)[-1]
    return [(b.text, b.callback_data) for row in method.reply_markup.inline_keyboard for b in row]


async def test_models_are_listed_with_live_prices(shop):
    await shop.send(1, "/tokens")
    assert "Pick a model" in last(shop, 1)
    labels = [t for t, _ in buttons(shop, "SendMessage")]
    assert labels[0] == "OpenAI: GPT-4o-mini · $0.72"  # $0.60 per 1M output tokens + 20%
    assert labels[1].endswith("Claude 3 Opus · $90.00")


async def test_packages_respect_the_cap(shop, openrouter):
    openrouter.set_price("anthropic/claude-3-opus", completion="0.0015")
    await shop.app.ai_tokens.prices.refresh()
    await shop.press(2, TokModel(i=1).pack())
    screen = shop.session.of("EditMessageText")[-1].text
    assert "up to 11,111 tokens" in screen
    offered = [t for t, _ in buttons(shop)]
    assert offered[:3] == ["Starter · 1,000 — $1.80", "Standard · 5,000 — $9.00", "Professional · 10,000 — $18.00"]
    assert not any("20,000" in t for t in offered)


async def test_forged_package_over_the_cap_is_refused(shop):
    await shop.press(3, TokBuy(i=1, tokens=10_000_000).pack())
    assert "more than one order can hold" in shop.session.of("AnswerCallbackQuery")[-1].text
    assert await shop.app.orders.for_user(3) == []
    await shop.press(3, TokModel(i=7).pack())  # no such model
    assert "not available" in shop.session.of("AnswerCallbackQuery")[-1].text


async def test_custom_amount_bad_inputs_keep_the_user_in_the_flow(shop):
    await shop.press(4, TokCustom(i=0).pack())
    for bad, expected in [("lots", "whole number"), ("12.5", "whole number"), ("-100", "whole number"),
                          ("٥٠٠٠", "whole number"), ("50", "smallest order is 100"),
                          ("99999999999", "more than one order can hold")]:
        await shop.send(4, bad)
        assert expected in last(shop, 4), (bad, last(shop, 4))
    assert await shop.app.orders.for_user(4) == []
    await shop.send(4, "5,000")
    [order] = await shop.app.orders.for_user(4)
    assert order.details["tokens"] == 5000 and order.details["base_usd"] == "0.003" and order.amount_cents == 1
    assert "Choose how to pay" in last(shop, 4)


async def test_cancel_leaves_the_custom_amount_flow(shop):
    await shop.press(5, TokCustom(i=0).pack())
    await shop.send(5, "/cancel")
    await shop.send(5, "5000")
    assert await shop.app.orders.for_user(5) == []


async def test_openrouter_down_before_any_price_was_fetched(shop, openrouter):
    openrouter.down = True
    await shop.send(6, "/tokens")
    assert "Prices are unavailable right now" in last(shop, 6)


async def test_openrouter_down_later_keeps_the_last_good_prices(shop, openrouter):
    await shop.send(7, "/tokens")
    openrouter.down = True
    assert not await shop.app.ai_tokens.prices.refresh()
    await shop.send(7, "/tokens")
    assert "Pick a model" in last(shop, 7)


async def test_no_headroom_means_no_invoice_and_an_admin_alert(shop, openrouter):
    openrouter.credits = Decimal("0.001")
    await shop.press(8, TokBuy(i=0, tokens=5000).pack())
    assert "temporarily unavailable" in shop.session.of("AnswerCallbackQuery")[-1].text
    assert "OpenRouter credit is too low" in last(shop, ADMIN_ID)
    assert await shop.app.orders.for_user(8) == []
    await shop.press(8, TokBuy(i=0, tokens=5000).pack())
    assert len([t for t in shop.session.texts_to(ADMIN_ID) if "too low" in t]) == 1  # not spammed


async def buy_and_pay(shop, user_id, tokens=5000, model_index=0):
    await shop.press(user_id, TokBuy(i=model_index, tokens=tokens).pack())
    [order] = await shop.app.orders.for_user(user_id)
    await shop.app.users.accept_terms(user_id)
    await shop.press(user_id, PayWith(order_id=order.id, method="stars").pack())
    [invoice] = await shop.app.orders.invoices(order.id)
    await shop.app.payments.record(PaymentReport("stars", invoice.external_id, f"charge-{order.id}",
                                                 invoice.amount, "XTR"))
    return order


async def test_paid_order_gets_one_key_with_the_base_cost_as_limit(shop, openrouter):
    order = await buy_and_pay(shop, 9, tokens=20_000, model_index=1)  # opus: base = 20,000 × 0.000075 = $1.50
    await shop.app.worker.run_once()
    assert (await shop.app.orders.get(order.id)).status == Status.FULFILLED
    [key] = [k for k in openrouter.keys.values() if k.name == key_name(order.id)]
    assert key.limit == Decimal("1.5")
    message = last(shop, 9)
    assert key.secret in message and "anthropic/claude-3-opus" in message and "curl" in message
    assert "Receipt: order #" in message
    stored = await shop.app.orders.get(order.id)
    assert stored.delivery["key_last4"] == key.secret[-4:] and stored.delivery["key_hash"] == key.hash
    async with shop.db.session() as s:  # the secret itself is stored nowhere
        for table in ("orders", "order_events", "fulfilment_jobs", "payments", "invoices", "delivery_secrets"):
            rows = (await s.execute(text(f"SELECT * FROM {table}"))).all()
            assert key.secret not in repr(rows), table
        assert (await s.execute(text("SELECT count(*) FROM delivery_secrets"))).scalar() == 0  # wiped


async def test_openrouter_down_at_fulfilment_is_retried(shop, openrouter):
    order = await buy_and_pay(shop, 10)
    openrouter.down = True
    await shop.app.worker.run_once()
    assert (await shop.app.orders.get(order.id)).status == Status.PAID
    openrouter.down = False
    from sqlalchemy import update

    from db.models import FulfilmentJob
    async with shop.db.transaction() as s:  # skip the backoff wait
        await s.execute(update(FulfilmentJob).values(next_attempt_at=FulfilmentJob.created_at))
    await shop.app.worker.run_once()
    assert (await shop.app.orders.get(order.id)).status == Status.FULFILLED


class DiesAfterSending:
    """The real deliverer, then the process dies (a BaseException the worker does not catch) before
    the delivery is recorded: the crash of issue 14.6, injected between send and record."""

    def __init__(self, deliverer):
        self.deliverer = deliverer

    async def deliver(self, order, delivery):
        await self.deliverer.deliver(order, delivery)
        raise KeyboardInterrupt("process killed")

    async def fulfilment_failed(self, order, error):
        await self.deliverer.fulfilment_failed(order, error)


async def test_a_crash_after_sending_delivers_the_same_key_again(shop, openrouter):
    from processing.delivery import BotDeliverer
    from processing.fulfilment import FulfilmentWorker

    order = await buy_and_pay(shop, 11)
    app = shop.app
    dying = FulfilmentWorker(app.db, app.orders, app.fulfillers, DiesAfterSending(BotDeliverer(app.notifier)))
    with pytest.raises(KeyboardInterrupt):
        await dying.run_once()
    assert (await app.orders.get(order.id)).status == Status.PAID  # sent, not recorded
    async with shop.db.session() as s:
        [kept] = (await s.execute(text("SELECT ciphertext FROM delivery_secrets"))).all()
    [key] = [k for k in openrouter.keys.values() if k.name == key_name(order.id)]
    assert key.secret not in kept[0]  # kept encrypted

    restarted = FulfilmentWorker(app.db, app.orders, app.fulfillers, BotDeliverer(app.notifier))
    await restarted.recover()
    await restarted.run_once()
    assert (await app.orders.get(order.id)).status == Status.FULFILLED
    sent = [t for t in shop.session.texts_to(11) if "Your AI tokens are ready" in t]
    assert len(sent) == 2 and all(key.secret in t for t in sent)  # the same key, not a revoked first one
    live = [k for k in openrouter.keys.values() if k.name == key_name(order.id) and not k.disabled]
    assert live == [key]
    async with shop.db.session() as s:
        assert (await s.execute(text("SELECT count(*) FROM delivery_secrets"))).scalar() == 0


async def test_a_key_never_kept_is_replaced_not_delivered(shop, openrouter):
    """Died between creating the key and keeping it: nobody saw that key, so a new one is issued."""
    order = await buy_and_pay(shop, 13)
    fulfiller = shop.app.fulfillers["ai_tokens"]
    fresh = await shop.app.orders.get(order.id)
    first = await fulfiller.fulfil(fresh)
    async with shop.db.transaction() as s:
        await s.execute(text("DELETE FROM delivery_secrets"))
    second = await fulfiller.fulfil(fresh)
    live = [k for k in openrouter.keys.values() if k.name == key_name(order.id)]
    assert len(live) == 1 and live[0].hash == second.record["key_hash"] != first.record["key_hash"]


async def test_orders_show_the_credit_left_on_the_key(shop, openrouter):
    order = await buy_and_pay(shop, 12, tokens=20_000, model_index=1)
    await shop.app.worker.run_once()
    key = next(k for k in openrouter.keys.values() if k.name == key_name(order.id))
    key.usage = Decimal("0.5")
    await shop.send(12, "/orders")
    assert "$1.00 of $1.50 credit left" in last(shop, 12)
    assert "✅ delivered" in last(shop, 12)
