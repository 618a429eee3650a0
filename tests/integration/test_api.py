"""/api in the bot (issue 17): a key's lifecycle as its owner sees it (created with a name, shown once, listed
without its secret, rolled with a grace period, revoked at once), keys checked without the database when
malformed, and prepaid API credit bought, shown, and taken back on a refund only where unused."""

import asyncio
import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import event, text

from handlers.user.api import ApiBuy, ApiDo, ApiKeyOpen, ApiKeyRevoke, ApiKeyRoll
from handlers.user.checkout import PayWith
from services.api_keys import MAX_KEYS, ApiKeyService, checksum, new_key, well_formed
from services.ledger import Cause
from services.orders import PaymentReport, Status
from tests.conftest import ADMIN_ID
from tests.support.clock import Clock

KEY = re.compile(r"<code>(sck_[0-9A-Za-z]{38})</code>")


def last(h, user_id):
    return h.session.texts_to(user_id)[-1]


def buttons(method):
    return [(b.text, b.callback_data) for row in method.reply_markup.inline_keyboard for b in row]


async def create_key(h, user_id: int, name: str) -> str:
    await h.send(user_id, "/api")
    await h.press(user_id, ApiDo(do="new").pack())
    assert "Send a name for the new key" in h.session.of("EditMessageText")[-1].text
    await h.send(user_id, name)
    return KEY.search(last(h, user_id)).group(1)


async def test_a_key_is_created_with_a_name_shown_once_and_listed_without_its_secret(harness):
    h = harness
    await h.users.seen(21, username=None, first_name="Dev", language_code="en")
    raw = await create_key(h, 21, "trading <bot>")
    shown = last(h, 21)
    assert "trading &lt;bot&gt;" in shown and "shown only once" in shown and well_formed(raw)
    caller = await h.app.api_keys.authenticate(raw)
    assert caller is not None and caller.user_id == 21

    await h.send(21, "/api")
    listing = last(h, 21)
    assert "trading &lt;bot&gt;" in listing and f"<code>{raw[:8]}…</code>" in listing and "last used" in listing
    assert raw not in listing and raw[8:] not in listing
    assert "Your keys (1 of 10)" in listing and "API credit: <b>$0.00</b>" in listing
    assert "Endpoints and examples: http://127.0.0.1:8080/api/v1/docs" in listing  # WEB_PORT: no public URL set
    async with h.db.session() as s:  # only a hash is kept
        rows = (await s.execute(text("SELECT * FROM api_keys"))).all()
        assert raw not in repr(rows) and raw[4:36] not in repr(rows)


async def test_bad_names_keep_the_user_in_the_flow_and_cancel_leaves_it(harness):
    h = harness
    await h.users.seen(22, username=None, first_name="Dev", language_code="en")
    await h.send(22, "/api")
    await h.press(22, ApiDo(do="new").pack())
    await h.send(22, "x" * 65)
    assert "1 to 64 characters" in last(h, 22)
    await h.send(22, "/cancel")
    await h.send(22, "my key")
    assert await h.app.api_keys.keys(22) == []


async def test_a_user_holds_at_most_the_key_limit(harness):
    h = harness
    await h.users.seen(23, username=None, first_name="Dev", language_code="en")
    for n in range(MAX_KEYS):
        await h.app.api_keys.create(23, f"k{n}")
    await h.send(23, "/api")
    await h.press(23, ApiDo(do="new").pack())
    await h.send(23, "one more")
    assert f"already have {MAX_KEYS} keys" in last(h, 23)
    assert len(await h.app.api_keys.keys(23)) == MAX_KEYS


async def test_roll_with_grace_the_old_key_works_until_the_grace_ends(harness):
    h = harness
    clock = Clock()
    h.app.services.api_keys = keys = ApiKeyService(h.db, clock=clock)
    await h.users.seen(24, username=None, first_name="Dev", language_code="en")
    old = await create_key(h, 24, "prod")
    [key] = await keys.keys(24)
    await h.press(24, ApiKeyOpen(id=key.id).pack())
    await h.press(24, ApiKeyRoll(id=key.id).pack())
    offered = [label for label, _data in buttons(h.session.of("EditMessageText")[-1])]
    assert offered[:3] == ["Stop it now", "1 hour", "24 hours"]
    await h.press(24, ApiKeyRoll(id=key.id, hours=1).pack())
    screen = h.session.of("EditMessageText")[-1].text
    new = KEY.search(screen).group(1)
    assert new != old and "The old key keeps working until 2026-11-21 13:00" in screen
    assert (await keys.authenticate(new)).user_id == 24
    clock.advance(minutes=59)
    assert (await keys.authenticate(old)).key_id == key.id  # within the grace period
    assert [(k.name, k.grace_until is not None) for k in await keys.keys(24)] == [("prod", True), ("prod", False)]
    await h.send(24, "/api")
    assert "rolled: works until 2026-11-21 13:00" in last(h, 24) and "Your keys (1 of 10)" in last(h, 24)
    clock.advance(minutes=1)
    assert await keys.authenticate(old) is None  # grace over
    assert (await keys.authenticate(new)).user_id == 24
    await h.press(24, ApiKeyRoll(id=key.id, hours=1).pack())  # rolling the old one again: refused
    assert "no longer exists" in h.session.of("AnswerCallbackQuery")[-1].text


async def test_roll_now_stops_the_old_key_at_once_and_forged_graces_are_refused(harness):
    h = harness
    await h.users.seen(25, username=None, first_name="Dev", language_code="en")
    old = await create_key(h, 25, "ci")
    [key] = await h.app.api_keys.keys(25)
    await h.press(25, ApiKeyRoll(id=key.id, hours=5).pack())  # not a button we offer
    assert await h.app.api_keys.authenticate(old) is not None
    await h.press(25, ApiKeyRoll(id=key.id, hours=0).pack())
    assert "The old key no longer works" in h.session.of("EditMessageText")[-1].text
    assert await h.app.api_keys.authenticate(old) is None


async def test_revoke_asks_first_then_the_key_is_refused_at_once(harness):
    h = harness
    await h.users.seen(26, username=None, first_name="Dev", language_code="en")
    raw = await create_key(h, 26, "old laptop")
    [key] = await h.app.api_keys.keys(26)
    await h.press(26, ApiKeyRevoke(id=key.id).pack())
    assert "Programs using it stop working at once" in h.session.of("EditMessageText")[-1].text
    assert await h.app.api_keys.authenticate(raw) is not None  # asked, not done
    await h.press(26, ApiKeyRevoke(id=key.id, sure=True).pack())
    assert "is revoked" in h.session.of("EditMessageText")[-1].text
    assert await h.app.api_keys.authenticate(raw) is None
    await h.send(26, "/api")
    assert "You have no API keys yet" in last(h, 26)


async def test_someone_elses_key_cannot_be_opened_rolled_or_revoked(harness):
    h = harness
    await h.users.seen(27, username=None, first_name="Dev", language_code="en")
    raw = await create_key(h, 27, "mine")
    [key] = await h.app.api_keys.keys(27)
    for data in (ApiKeyOpen(id=key.id), ApiKeyRoll(id=key.id, hours=0), ApiKeyRevoke(id=key.id, sure=True)):
        await h.press(28, data.pack())
        assert "no longer exists" in h.session.of("AnswerCallbackQuery")[-1].text
    assert await h.app.api_keys.authenticate(raw) is not None


async def test_a_malformed_key_is_refused_without_a_database_query(harness):
    h = harness
    await h.users.seen(29, username=None, first_name="Dev", language_code="en")
    raw = await create_key(h, 29, "k")
    body = raw[4:36]
    typo = raw[:10] + ("a" if raw[10] != "a" else "b") + raw[11:]
    statements = []

    def seen(*args):
        statements.append(args[2])

    event.listen(h.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for bad in (typo, raw[:-1], raw + "x", "sk_" + raw[3:], raw.replace("sck_", "sck-"), "", "Bearer " + raw,
                    raw[:36] + "!" + raw[37:]):
            assert await h.app.api_keys.authenticate(bad) is None
        assert statements == []
        unknown = "sck_" + "A" * 32 + checksum("A" * 32)  # well formed, never issued: this one is looked up
        assert await h.app.api_keys.authenticate(unknown) is None
        assert statements
    finally:
        event.remove(h.db.engine.sync_engine, "before_cursor_execute", seen)
    assert checksum(body) == raw[-6:] and well_formed(new_key())


async def test_last_used_is_written_in_batches(harness):
    h = harness
    clock = Clock()
    keys = ApiKeyService(h.db, clock=clock, flush_every=timedelta(seconds=60))
    await h.users.seen(30, username=None, first_name="Dev", language_code="en")
    _key, raw = await keys.create(30, "batch")
    writes = []
    event.listen(h.db.engine.sync_engine, "before_cursor_execute",
                 lambda *a: writes.append(a[2]) if a[2].lstrip().upper().startswith("UPDATE") else None)
    await keys.authenticate(raw)  # the first use is written at once, in the background
    await asyncio.sleep(0.2)
    for _n in range(50):
        clock.advance(seconds=1)
        await keys.authenticate(raw)
    assert len(writes) == 1  # 50 calls within the minute: remembered, not written
    [listed] = await keys.keys(30)  # the list shows the latest use
    assert listed.last_used_at == clock.now and len(writes) == 2


async def pay_with_stars(h, user_id: int, order_id: int) -> None:
    await h.app.users.accept_terms(user_id)
    await h.press(user_id, PayWith(order_id=order_id, method="stars").pack())
    [invoice] = await h.app.orders.invoices(order_id)
    await h.app.payments.record(PaymentReport("stars", invoice.external_id, f"charge-{order_id}", invoice.amount,
                                              "XTR"))
    await h.app.worker.run_once()


async def test_credit_is_bought_with_a_package_and_shown(harness):
    h = harness
    await h.users.seen(31, username=None, first_name="Dev", language_code="en")
    await h.send(31, "/api")
    await h.press(31, ApiDo(do="credit").pack())
    offered = [label for label, _data in buttons(h.session.of("EditMessageText")[-1])]
    assert offered[:4] == ["$5.00", "$10.00", "$25.00", "✍️ Custom amount"]
    await h.press(31, ApiBuy(cents=1000).pack())
    assert "Choose how to pay" in h.session.of("EditMessageText")[-1].text
    [order] = await h.app.orders.for_user(31)
    assert (order.product, order.amount_cents) == ("api_credit", 1000)
    await pay_with_stars(h, 31, order.id)
    assert (await h.app.orders.get(order.id)).status == Status.FULFILLED
    assert "$10.00 of API credit added" in last(h, 31) and f"Receipt: order #{order.id}" in last(h, 31)
    await h.send(31, "/api")
    assert "API credit: <b>$10.00</b>" in last(h, 31)
    await h.send(31, "/orders")
    assert "API credit left: $10.00" in last(h, 31)
    await h.press(31, ApiDo(do="credit").pack())
    assert f"+$10.00 · top-up, order #{order.id}" in h.session.of("EditMessageText")[-1].text
    await h.app.worker.run_once()  # a retried fulfilment adds nothing
    assert await h.app.ledger.credit(31) == Decimal("10")


async def test_a_custom_amount_is_checked_and_forged_packages_refused(harness):
    h = harness
    await h.users.seen(32, username=None, first_name="Dev", language_code="en")
    await h.press(32, ApiDo(do="custom").pack())
    for bad, expected in [("lots", "amount in USD"), ("7.505", "amount in USD"), ("-5", "amount in USD"),
                          ("0.50", "smallest top-up is $1.00"), ("501", "largest top-up is $500.00")]:
        await h.send(32, bad)
        assert expected in last(h, 32), (bad, last(h, 32))
    assert await h.app.orders.for_user(32) == []
    await h.send(32, "$7.50")
    [order] = await h.app.orders.for_user(32)
    assert order.amount_cents == 750 and "Choose how to pay" in last(h, 32)
    for forged in (10_000_000, 413):  # a package button only carries a package's amount
        await h.press(32, ApiBuy(cents=forged).pack())
        assert "no longer active" in h.session.of("AnswerCallbackQuery")[-1].text
    assert [o.amount_cents for o in await h.app.orders.for_user(32)] == [750]


async def refund(h, order_id: int) -> str:
    await h.send(ADMIN_ID, f"/refund {order_id}")
    confirm = h.session.texts_to(ADMIN_ID)[-1]
    markup = h.session.of("SendMessage")[-1].reply_markup
    yes = next(b.callback_data for row in markup.inline_keyboard for b in row if b.callback_data.startswith("rf:yes"))
    await h.press(ADMIN_ID, yes)
    return confirm


async def test_a_refund_takes_back_only_the_unused_credit(harness):
    h = harness
    await h.users.seen(33, username=None, first_name="Dev", language_code="en")
    placed = await h.app.api_credit.place(33, 500)
    await pay_with_stars(h, 33, placed.order.id)
    assert await h.app.ledger.charge(33, Decimal("3.25"), Cause("api_call", "req-1"))  # spent on calls
    confirm = await refund(h, placed.order.id)
    assert "still unused (up to $5.00" in confirm
    assert (await h.app.orders.get(placed.order.id)).status == Status.REFUNDED
    assert await h.app.ledger.credit(33) == 0
    assert any("$1.75 of unused API credit has been removed" in t for t in h.session.texts_to(33))
    assert await h.app.ledger.balance("platform:api_revenue") == Decimal("3.25")  # spent stays spent
    assert not await h.app.ledger.charge(33, Decimal("0.01"), Cause("api_call", "req-2"))


async def test_a_refund_leaves_credit_bought_by_other_orders(harness):
    h = harness
    await h.users.seen(34, username=None, first_name="Dev", language_code="en")
    first, second = (await h.app.api_credit.place(34, 500)).order, (await h.app.api_credit.place(34, 2500)).order
    await pay_with_stars(h, 34, first.id)
    await pay_with_stars(h, 34, second.id)
    assert await h.app.ledger.credit(34) == Decimal("30")
    await refund(h, first.id)
    assert await h.app.ledger.credit(34) == Decimal("25")
    await h.send(34, "/api")
    assert "API credit: <b>$25.00</b>" in last(h, 34)


async def test_a_rolled_key_inherits_name_and_permissions(harness):
    h = harness
    await h.users.seen(35, username=None, first_name="Dev", language_code="en")
    key, _raw = await h.app.api_keys.create(35, "publisher")
    async with h.db.transaction() as s:
        await s.execute(text("UPDATE api_keys SET permissions = :p WHERE id = :id"),
                        {"p": '["provider"]', "id": key.id})
    new, raw = await h.app.api_keys.roll(35, key.id, timedelta(hours=24))
    assert (new.name, new.permissions, new.rolled_from_id) == ("publisher", ["provider"], key.id)
    assert raw[:8] == new.prefix and (await h.app.api_keys.authenticate(raw)).key_id == new.id
    assert await h.app.api_keys.roll(35, key.id, timedelta(0)) is None  # an old key is rolled once


async def test_last_uses_remembered_at_a_stop_are_written(database_url):
    """The app's stop writes the last-use times it was holding back (a restart shows them)."""
    from tests.conftest import make_settings
    from tests.support.harness import Harness

    settings = make_settings(database_url=database_url)
    h = await Harness(settings).start()
    await h.users.seen(31, username=None, first_name="Dev", language_code="en")
    _key, raw = await h.app.api_keys.create(31, "stop")
    await h.app.api_keys.authenticate(raw)  # written at once
    h.app.api_keys.clock = lambda: _key.created_at + timedelta(seconds=30)
    await h.app.api_keys.authenticate(raw)  # within the minute: only remembered
    await h.close()

    again = await Harness(settings).start()
    try:
        [listed] = await ApiKeyService(again.db).keys(31)
        assert listed.last_used_at == _key.created_at + timedelta(seconds=30)
    finally:
        await again.close()
