"""Issue 19, "publish by form": an approved provider who does not code publishes with the guided /signal form
through the real dispatcher. Wrong answers are asked again with the reason and change nothing; Publish tapped
twice stores one signal; only the provider's subscribers receive it; a target hit and a close reported from the
form reach them and land on the provider's own verified chain; another provider's or a closed signal is
refused; a non-provider, a pending and a suspended provider are told why and nothing is stored."""

from sqlalchemy import func, select

from db.models_signals import Outbox, Signal, SignalEvent
from handlers.user.provider_signals import SignalDo, SignalMark, SignalPick
from services.marketplace import Application, Review
from services.signals import SignalIn
from tests.conftest import ADMIN_ID, make_settings
from tests.integration.test_marketplace import approved_provider, paid_order
from tests.support import redis_server as _redis
from tests.support.harness import Harness

redis_server, redis_url = _redis.redis_server, _redis.redis_url

PROVIDER, OTHER, SUBSCRIBER, BYSTANDER, NOBODY = 601, 602, 603, 604, 605


def last(h, chat_id: int) -> str:
    return h.session.texts_to(chat_id)[-1]


def alert(h) -> str:
    return h.session.of("AnswerCallbackQuery")[-1].text


def labels(h) -> dict[str, str]:
    """The last screen's buttons: label → callback data."""
    calls = [c.method for c in h.session.calls if c.name in ("SendMessage", "EditMessageText")]
    markup = calls[-1].reply_markup
    return {b.text: b.callback_data for row in (markup.inline_keyboard if markup else []) for b in row}


async def drain(h) -> None:
    for _ in range(20):
        if not await h.app.signal_delivery.run_once():
            return


def delivered(h, chat_id: int, marker: str) -> list[str]:
    return [m.text for m in h.session.of("SendMessage") if m.chat_id == chat_id and marker in m.text]


async def count(h, model, **where) -> int:
    async with h.db.session() as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return await session.scalar(query)


async def market(h) -> int:
    alpha = await approved_provider(h, PROVIDER, "Alpha")
    for user_id in (SUBSCRIBER, BYSTANDER):
        await h.users.seen(user_id, username=None, first_name="U", language_code="en")
    await paid_order(h, SUBSCRIBER, alpha)
    return alpha


async def test_a_provider_publishes_by_the_form_once_and_only_subscribers_get_it(harness):
    h, user = harness, harness.user(PROVIDER)
    alpha = await market(h)
    await h.send(user, "/provider")  # the dashboard leads to the form
    assert "📈 Publish a signal" in labels(h)
    await h.press(user, labels(h)["📈 Publish a signal"])
    assert "Publish as Alpha" in last(h, PROVIDER) and "You have no open signals." in last(h, PROVIDER)
    await h.send(user, "/signal")
    await h.press(user, SignalDo(do="new").pack())
    assert "Step 1 of 8. Which market is it for?" in last(h, PROVIDER) and "crypto" in labels(h)
    for forged in ("²", "7", "-1"):  # a market the provider does not have: nothing changes
        await h.press(user, SignalDo(do="eco", arg=forged).pack())
        assert alert(h) == "This form is no longer open: start again with /signal."
    await h.press(user, labels(h)["crypto"])
    await h.send(user, "sol-usdt")
    assert "Step 3 of 8. Long or short?" in last(h, PROVIDER)
    await h.send(user, "long")  # a button step: the buttons again
    assert "Please tap one of the buttons" in last(h, PROVIDER) and "🟢 Long" in labels(h)
    await h.press(user, labels(h)["🟢 Long"])

    for wrong, reason in (("abc", 'Entry price: must be a positive number such as &quot;142.5&quot;'),
                          ("-5", "Entry price: must be a positive number"),
                          ("0", "Entry price: must be greater than 0")):
        await h.send(user, wrong)
        assert f"❌ {reason}" in last(h, PROVIDER) and "Step 4 of 8. The entry price" in last(h, PROVIDER), wrong
    await h.send(user, "1,500")  # 1500 or 1.5? Asked again rather than guessed
    assert "❌ Entry price: is ambiguous" in last(h, PROVIDER) and "Step 4 of 8" in last(h, PROVIDER)
    await h.send(user, "142,5")  # a decimal comma
    assert "Step 5 of 8" in last(h, PROVIDER) and "For a long, targets go above the entry (142.5)." in last(h, PROVIDER)
    await h.send(user, "150, 140")
    assert "❌ Take-profit: every target must be above the entry for a long" in last(h, PROVIDER)
    await h.send(user, "150,158")
    assert "❌ Take-profit: is ambiguous" in last(h, PROVIDER)
    await h.send(user, "158 150")
    await h.send(user, "150")
    assert "❌ Stop loss: must be below the entry for a long" in last(h, PROVIDER)
    await h.send(user, "136")
    assert "Step 7 of 8" in last(h, PROVIDER)
    await h.send(user, "4 hours")
    assert "❌ Timeframe: must look like 15m, 4h or 1d" in last(h, PROVIDER)
    await h.press(user, labels(h)["4h"])
    await h.send(user, "breakout retest")
    preview = last(h, PROVIDER)
    assert "Check your signal" in preview and "<b>SOL/USDT</b> · Long · crypto" in preview
    for line in ("Entry: 142.5", "Take-profit: 150 · 158", "Stop loss: 136", "Timeframe: 4h", "breakout retest",
                 "your 1 subscriber now"):
        assert line in preview, line
    assert await count(h, Signal) == 0  # nothing is stored before Publish

    publish = labels(h)["📣 Publish"]
    await h.press(user, publish)
    signal_id = (await h.app.signals.history(alpha))[0][0].id
    assert f"✅ Signal #{signal_id} published: on its way to 1 subscriber." in last(h, PROVIDER)
    await h.press(user, publish)  # a double tap
    assert f"already published (#{signal_id})" in last(h, PROVIDER)
    assert await count(h, Signal) == 1 and await count(h, Outbox, item_id=signal_id) == 1

    await drain(h)
    got = delivered(h, SUBSCRIBER, "Entry: 142.5")
    assert len(got) == 1 and "#SOL/USDT</b> Long" in got[0] and "📡 Alpha" in got[0] and "4h" in got[0]
    assert "1) 150\n2) 158" in got[0] and "Stop: 136" in got[0]
    assert delivered(h, BYSTANDER, "Entry:") == []
    signals, _events = await h.app.signals.history(alpha)
    assert [s.source for s in signals] == ["api"] and signals[0].external_id.startswith(f"p{alpha}:form-")
    _trades, chain = await h.app.signals.track_record(alpha)
    assert chain.ok and chain.length == 1
    _trades, house = await h.app.signals.track_record()
    assert house.length == 0


async def test_target_and_close_reported_by_the_form_reach_subscribers_and_the_chain(harness):
    h, user = harness, harness.user(PROVIDER)
    alpha = await market(h)
    beta = await approved_provider(h, OTHER, "Beta")
    body = {"id": "a-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "100",
            "take_profits": ["110", "120"], "stop_loss": "95"}
    mine = await h.app.signals.ingest(SignalIn.model_validate(body), provider_id=alpha)  # published by the API
    theirs = await h.app.signals.ingest(SignalIn.model_validate(body), provider_id=beta)
    await drain(h)

    await h.send(user, "/signal")
    assert "Tap an open signal" in last(h, PROVIDER)
    await h.press(user, labels(h)[f"#{mine.signal_id} SOL/USDT Long · entry 100"])
    card = last(h, PROVIDER)
    assert "Take-profit: 110 · 120" in card and "Stop loss: 95" in card
    assert {"🎯 Target 1 hit · 110", "🎯 Target 2 hit · 120", "🛑 Stop hit · 95", "🏁 Close at a price…"} <= \
        set(labels(h))
    await h.press(user, labels(h)["🎯 Target 1 hit · 110"])
    assert "target 1 reached at 110" in last(h, PROVIDER) and "P/L from the entry: +10%" in last(h, PROVIDER)
    assert await count(h, SignalEvent) == 0  # asked first
    confirm = labels(h)["✅ Confirm"]
    await h.press(user, confirm)
    assert "✅ Recorded on your track record; on its way to 1 subscriber." in last(h, PROVIDER)
    await h.press(user, confirm)  # a double tap
    assert "already reported" in last(h, PROVIDER)
    await drain(h)
    assert delivered(h, SUBSCRIBER, "Take-Profit target 1 reached at 110")
    assert delivered(h, BYSTANDER, "reached") == []

    await h.press(user, SignalPick(id=mine.signal_id).pack())
    assert "Take-profit: ✅ 110 · 120" in last(h, PROVIDER) and "🎯 Target 1 hit · 110" not in labels(h)
    await h.press(user, labels(h)["🏁 Close at a price…"])
    assert "closed at (entry 100)" in last(h, PROVIDER)
    await h.send(user, "1O4")
    assert "❌ Price: must be a positive number" in last(h, PROVIDER)
    await h.send(user, "104,5")
    assert "closed at 104.5" in last(h, PROVIDER) and "+4.5%" in last(h, PROVIDER)
    await h.press(user, labels(h)["✅ Confirm"])
    assert "on its way to 1 subscriber" in last(h, PROVIDER)
    await drain(h)
    assert delivered(h, SUBSCRIBER, "🏁 #SOL/USDT closed at 104.5 · P/L +4.5%")

    trades, chain = await h.app.signals.track_record(alpha)
    assert chain.ok and chain.length == 1 and len(trades) == 1
    _signals, events = await h.app.signals.history(alpha)
    assert [(e.type, e.level, str(e.price)) for e in events] == [("tp_hit", 1, "110"), ("closed", 0, "104.5")]

    await h.send(user, "/signal")
    assert "You have no open signals." in last(h, PROVIDER)
    await h.press(user, SignalPick(id=mine.signal_id).pack())  # closed now
    assert "already closed" in alert(h)
    await h.press(user, SignalMark(id=mine.signal_id, type="sl_hit", sure=1).pack())
    assert "already closed" in alert(h)
    for data in (SignalPick(id=theirs.signal_id).pack(),  # Beta's signal, named by our id
                 SignalMark(id=theirs.signal_id, type="tp_hit", level=1, sure=1).pack()):
        await h.press(user, data)
        assert alert(h) == "That is not one of your signals."
    assert await count(h, SignalEvent) == 2 and await count(h, SignalEvent, provider_id=beta) == 0


async def test_non_providers_and_a_suspended_provider_are_refused(harness):
    h = harness
    await h.users.seen(NOBODY, username=None, first_name="N", language_code="en")
    await h.send(NOBODY, "/signal")
    assert "Apply with /provider" in last(h, NOBODY)
    await h.press(NOBODY, SignalDo(do="new").pack())
    assert "Apply with /provider" in alert(h)

    await h.users.seen(OTHER, username=None, first_name="P", language_code="en")
    await h.app.marketplace.apply(OTHER, Application(name="Pending", description="Scalps on BTC, daily",
                                                     ecosystems=("crypto",), price_cents=900,
                                                     payout_method="telegram"))
    await h.send(OTHER, "/signal")
    assert "under review" in last(h, OTHER)

    alpha = await market(h)
    user = h.user(PROVIDER)
    await h.send(user, "/signal")
    await h.press(user, SignalDo(do="new").pack())
    await h.press(user, labels(h)["crypto"])
    for answer in ("SOL/USDT",):
        await h.send(user, answer)
    await h.press(user, SignalDo(do="side", arg="short").pack())
    for answer in ("100", "90", "105"):
        await h.send(user, answer)
    await h.press(user, SignalDo(do="skip").pack())
    await h.press(user, SignalDo(do="skip").pack())
    assert "Check your signal" in last(h, PROVIDER) and "· Short ·" in last(h, PROVIDER)
    publish = labels(h)["📣 Publish"]
    await h.app.marketplace.review(alpha, Review.SUSPEND, ADMIN_ID, "late closing prices")
    await h.press(user, publish)  # suspended while filling the form
    assert "suspended, so publishing is closed: late closing prices" in alert(h)
    await h.send(user, "/signal")
    assert "publishing is closed: late closing prices" in last(h, PROVIDER)
    await h.send(user, "/provider")
    assert "📈 Publish a signal" not in labels(h)
    assert await count(h, Signal) == 0 and await count(h, Outbox) == 0


async def test_with_redis_the_form_is_shared_by_replicas(database_url, redis_url):
    """With REDIS_URL the form's answers live in Redis (plain JSON): a form begun on one replica is finished on
    another, and Publish on both stores one signal."""
    settings = make_settings(database_url=database_url, redis_url=redis_url)
    first = await Harness(settings).start()
    second = Harness(settings)
    try:
        await market(first)
        user = first.user(PROVIDER)
        await first.send(user, "/signal")
        await first.press(user, SignalDo(do="new").pack())
        await second.press(user, SignalDo(do="eco", arg="0").pack())
        await first.send(user, "ETH/USDT")
        await second.press(user, SignalDo(do="side", arg="short").pack())
        for h, answer in ((first, "3 000,5"), (second, "2900 2800,5"), (first, "3100")):
            await h.send(user, answer)
        await second.press(user, SignalDo(do="tf", arg="1h").pack())
        await first.send(user, "fade the pump")
        preview = last(first, PROVIDER)
        assert "Entry: 3000.5" in preview and "Take-profit: 2900 · 2800.5" in preview
        publish = labels(first)["📣 Publish"]
        await second.press(user, publish)
        await first.press(user, publish)
        assert "already published" in last(first, PROVIDER) and "published" in last(second, PROVIDER)
        assert await count(first, Signal) == 1
    finally:
        await first.close()
        await second.close()


async def test_an_admin_who_is_a_provider_gets_the_form_and_keeps_the_one_line_house_signal(harness):
    h = harness
    await h.send(ADMIN_ID, "/signal")  # an admin alone: the one-line usage
    assert "Post a signal by hand, in one line" in last(h, ADMIN_ID)
    admin_provider = await approved_provider(h, ADMIN_ID, "Boss")
    await h.send(ADMIN_ID, "/signal")
    assert "Publish as Boss" in last(h, ADMIN_ID)
    await h.send(ADMIN_ID, "/signal crypto SOL/USDT long 142.5 150 136")
    assert "Signal #" in last(h, ADMIN_ID) and "stored" in last(h, ADMIN_ID)
    _trades, house = await h.app.signals.track_record()
    _trades, own = await h.app.signals.track_record(admin_provider)
    assert (house.length, own.length) == (1, 0)  # the one line is the house's signal
