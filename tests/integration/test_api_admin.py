"""The developer API as admins see it (issue 17, "Admins"): API revenue, credit sold and calls per UTC day in
/stats (read from the ledger and the usage tables, rounded to 1/100 cent half up); a user's keys (never more
than their first characters), use and credit on /user; an admin revoking a key (confirmed, audited, the user
told in their language), with stale and forged buttons refused."""

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from db.base import utcnow
from db.models_api import ApiCharge, ApiUsageDay
from presentation.api_admin import revoked_notice
from presentation.formatting import month_day
from services.ledger import Cause, LedgerService
from tests.conftest import ADMIN_ID


def ledger_at(h, moment: datetime) -> LedgerService:
    """The app's ledger (same database), its movements dated `moment`."""
    return LedgerService(h.db, clock=lambda: moment)


async def api_call(h, user_id: int, price: str, request_id: str, moment: datetime, group: str = "signals",
                   key_id: int = 0) -> None:
    """One call over the quota, recorded as the metering layer records it: its ledger movement and its
    ApiCharge row in one transaction."""
    async with h.db.transaction() as session:
        assert await ledger_at(h, moment).charge_in(session, user_id, Decimal(price), Cause("api_call", request_id))
        session.add(ApiCharge(request_id=request_id, user_id=user_id, key_id=key_id, group=group,
                              path=f"/api/v1/{group}", day=moment.astimezone(UTC).date(), created_at=moment))


async def calls(h, user_id: int, day, group: str, count: int) -> None:
    async with h.db.transaction() as session:
        session.add(ApiUsageDay(user_id=user_id, day=day, group=group, calls=count))


def buttons(method) -> list[tuple[str, str]]:
    return [(b.text, b.callback_data) for row in method.reply_markup.inline_keyboard for b in row]


def day_label(now: datetime, back: int) -> str:
    return month_day(datetime.combine(now.date() - timedelta(days=back), time()))


async def seed_stats(h, now: datetime) -> None:
    ago: Callable[[int], datetime] = lambda days: now - timedelta(days=days)  # noqa: E731
    for user_id in (31, 32):
        await h.users.seen(user_id, username=None, first_name="Dev", language_code="en")
    await ledger_at(h, ago(40)).top_up(31, Decimal("7"), Cause("order", "9001"))  # before the 30 days
    await ledger_at(h, ago(10)).top_up(31, Decimal("5"), Cause("order", "9002"))
    await ledger_at(h, now).top_up(32, Decimal("10"), Cause("order", "9003"))
    assert await ledger_at(h, now).take_back(32, Decimal("2"), Cause("refund", "9003")) == Decimal("2")
    await api_call(h, 31, "1.00", "r-40d", ago(40))  # spent before the 30 days: not in them
    await api_call(h, 31, "0.03", "r-8d", ago(8), "analytics")  # in 30 days, not in 7
    await ledger_at(h, ago(2)).charge(31, Decimal("0.50"), Cause("dataset", "purchase-1"))
    await api_call(h, 31, "0.02", "r-1d", ago(1), "whales")
    for n in range(3):
        await api_call(h, 31, "0.0125", f"r-today-{n}", now)
    await api_call(h, 31, "0.00015", "r-today-fine", now)  # a price finer than 1/100 cent
    await calls(h, 31, now.date(), "signals", 120)
    await calls(h, 31, now.date(), "whales", 5)
    await calls(h, 32, now.date(), "signals", 7)
    await calls(h, 31, now.date() - timedelta(days=1), "whales", 1_040)
    await calls(h, 31, now.date() - timedelta(days=7), "signals", 999)  # before the 7 days shown


async def test_stats_show_api_revenue_credit_sold_and_calls_per_utc_day(harness):
    h = harness
    now = utcnow()
    await seed_stats(h, now)

    await h.send(ADMIN_ID, "/stats")
    text = h.session.of("SendMessage")[-1].text
    # today 3 × $0.0125 + $0.00015 = $0.03765, shown to 1/100 cent rounded half up
    assert ("API revenue (credit spent): today $0.0377 · 7 days $0.5577 · 30 days $0.5877 "
            "(calls $0.0877 · datasets $0.50)") in text
    # sold: $10 today, $5 ten days ago ($7 forty days ago is outside); $2 of today's taken back on a refund;
    # unspent: user 31 $12 - $1.58765 spent, user 32 $10 - $2
    assert ("API credit sold: today $10.00 · 7 days $10.00 · 30 days $15.00 · taken back on refunds (30 days) "
            "$2.00 · unspent now $18.4124") in text
    assert "🔌 <b>Developer API</b> (UTC days)" in text
    assert "API per day, last 7 days (calls · charged from credit · revenue):" in text
    lines = text.split("\n")
    start = lines.index("API per day, last 7 days (calls · charged from credit · revenue):") + 1
    assert lines[start:start + 7] == [
        f"{day_label(now, 6)}: 0 · 0 · $0.00",  # 999 calls a day earlier are not shown
        f"{day_label(now, 5)}: 0 · 0 · $0.00",
        f"{day_label(now, 4)}: 0 · 0 · $0.00",
        f"{day_label(now, 3)}: 0 · 0 · $0.00",
        f"{day_label(now, 2)}: 0 · 0 · $0.50",  # a dataset: revenue without a call
        f"{day_label(now, 1)}: 1,040 · 1 · $0.02",
        f"{day_label(now, 0)}: 132 · 4 · $0.0377",
    ]
    assert "Revenue: today $0.00" in text  # order revenue is untouched by ledger movements


async def test_stats_api_money_follows_the_admins_language(harness):
    h = harness
    now = utcnow()
    await seed_stats(h, now)
    await h.users.seen(ADMIN_ID, username=None, first_name="Админ", language_code="ru")
    await h.users.set_language(ADMIN_ID, "ru")
    await h.send(h.user(ADMIN_ID, language_code="ru"), "/stats")
    text = h.session.of("SendMessage")[-1].text
    assert "0,0377\xa0$" in text and "0,5877\xa0$" in text and "18,4124\xa0$" in text
    assert f"{month_day(datetime.combine(now.date(), time()), locale='ru')}: 132 · 4 · 0,0377\xa0$" in text
    assert "1\xa0040 · 1 · 0,02\xa0$" in text
    assert "$0.0377" not in text


async def test_stats_without_api_use_show_zeros(harness):
    h = harness
    await h.send(ADMIN_ID, "/stats")
    text = h.session.of("SendMessage")[-1].text
    assert "API revenue (credit spent): today $0.00 · 7 days $0.00 · 30 days $0.00\n" in text
    assert "unspent now $0.00" in text
    assert text.count(": 0 · 0 · $0.00") == 7


async def seed_user(h, now: datetime) -> dict:
    await h.users.seen(41, username="dev41", first_name="Dev", language_code="en")
    await h.users.seen(42, username="dev42", first_name="Other", language_code="en")
    keys = h.app.api_keys
    bot_key, bot_raw = await keys.create(41, "trading <bot>")
    old_key, old_raw = await keys.create(41, "backtest")
    new_key, new_raw = await keys.roll(41, old_key.id, timedelta(hours=1))  # the old one works for an hour
    gone_key, _gone_raw = await keys.create(41, "retired")
    assert await keys.revoke(41, gone_key.id)
    other_key, other_raw = await keys.create(42, "someone else's")
    assert await keys.authenticate(bot_raw) is not None  # last used: now
    await calls(h, 41, now.date(), "signals", 12)
    await calls(h, 41, now.date() - timedelta(days=3), "whales", 30)
    await calls(h, 41, now.date() - timedelta(days=9), "signals", 100)  # before the last 7 days
    await ledger_at(h, now - timedelta(days=20)).top_up(41, Decimal("5"), Cause("order", "7001"))
    await api_call(h, 41, "0.01", "u-20d", now - timedelta(days=20), key_id=bot_key.id)
    await api_call(h, 41, "0.01", "u-today-1", now, key_id=bot_key.id)
    await api_call(h, 41, "0.00005", "u-today-2", now, key_id=bot_key.id)  # credit left $4.97995
    return {"bot": (bot_key, bot_raw), "old": (old_key, old_raw), "new": (new_key, new_raw),
            "gone": gone_key, "other": (other_key, other_raw)}


async def test_user_card_shows_keys_by_their_first_characters_use_and_credit(harness):
    h = harness
    k = await seed_user(h, utcnow())
    await h.send(ADMIN_ID, "/user 41")
    card = h.session.of("SendMessage")[-1]
    text, labels = card.text, buttons(card)
    assert ("🔌 API: credit $4.98 · calls today 12 · last 7 days 42 (charged 2) · charged ever 3") in text
    bot_key, bot_raw = k["bot"]
    assert f"🔑 <b>trading &lt;bot&gt;</b> <code>{bot_raw[:8]}…</code>" in text
    bot_block = text.split(f"<code>{bot_raw[:8]}…</code>", 1)[1].split("\n")[1]
    assert bot_block.startswith("created ") and "last used never" not in bot_block
    old_key, old_raw = k["old"]
    new_key, new_raw = k["new"]
    assert f"<code>{old_raw[:8]}…</code>" in text and "rolled: works until" in text
    assert f"<code>{new_raw[:8]}…</code>" in text and "last used never" in text
    assert "retired" not in text  # a revoked key is not listed
    for raw in (bot_raw, old_raw, new_raw, k["other"][1]):  # never more of a key than its first characters
        assert raw[8:12] not in text and not any(raw[8:12] in label or raw[8:12] in data
                                                 for label, data in labels)
    assert k["other"][1][:8] not in text
    revoke = [data for label, data in labels if label.startswith("🚫 Revoke API key")]
    assert revoke == [f"ukey:ask:41:{bot_key.id}", f"ukey:ask:41:{old_key.id}", f"ukey:ask:41:{new_key.id}"]
    assert ("🚫 Revoke API key trading <bot> · " + bot_raw[:8] + "…",
            f"ukey:ask:41:{bot_key.id}") in labels

    await h.send(ADMIN_ID, "/user 42")
    assert ("🔌 API: credit $0.00 · calls today 0 · last 7 days 0 (charged 0) · charged ever 0"
            in h.session.of("SendMessage")[-1].text)
    await h.users.seen(43, username=None, first_name="NoApi", language_code="en")
    await h.send(ADMIN_ID, "/user 43")
    assert "No API keys." in h.session.of("SendMessage")[-1].text


async def test_an_admin_revokes_a_key_confirmed_audited_and_the_user_is_told(harness):
    h = harness
    k = await seed_user(h, utcnow())
    bot_key, bot_raw = k["bot"]
    await h.send(ADMIN_ID, "/user 41")
    await h.press(ADMIN_ID, f"ukey:ask:41:{bot_key.id}")
    ask = h.session.of("EditMessageText")[-1]
    assert (f"Revoke API key <b>trading &lt;bot&gt;</b> <code>{bot_raw[:8]}…</code> of user <code>41</code>?"
            in ask.text) and "The user is told." in ask.text
    assert buttons(ask) == [("✅ Revoke the key", f"ukey:yes:41:{bot_key.id}"), ("Cancel", "uact:card:41:0")]
    assert await h.app.api_keys.authenticate(bot_raw) is not None  # asking changes nothing
    assert h.session.texts_to(41) == []

    await h.press(ADMIN_ID, "uact:card:41:0")  # Cancel: back to the card, the key still works
    assert "🔌 API:" in h.session.of("EditMessageText")[-1].text
    assert await h.app.api_keys.authenticate(bot_raw) is not None

    await h.press(ADMIN_ID, f"ukey:ask:41:{bot_key.id}")
    await h.press(ADMIN_ID, f"ukey:yes:41:{bot_key.id}")
    assert await h.app.api_keys.authenticate(bot_raw) is None  # refused at once
    assert h.session.of("AnswerCallbackQuery")[-1].text == "Key revoked; the user has been told."
    card = h.session.of("EditMessageText")[-1]
    assert f"<code>{bot_raw[:8]}…</code>" not in card.text and f"ukey:ask:41:{bot_key.id}" not in [
        data for _label, data in buttons(card)]
    assert h.session.texts_to(41) == [
        f"🚫 An administrator revoked your API key <b>trading &lt;bot&gt;</b> <code>{bot_raw[:8]}…</code>: it no "
        "longer works. You can create a new key in /api."]
    entries, _pages = await h.app.audit.page(0)
    revoked = [e for e in entries if e.action == "api_key_revoke"]
    assert len(revoked) == 1
    assert (revoked[0].admin_id, revoked[0].target) == (ADMIN_ID, f"user:41 api_key:{bot_key.id}")
    assert revoked[0].before == {"key": bot_raw[:8], "name": "trading <bot>", "revoked": False}
    assert revoked[0].after == {"revoked": True}
    await h.send(ADMIN_ID, "/audit")
    assert f"api_key_revoke user:41 api_key:{bot_key.id}" in h.session.texts_to(ADMIN_ID)[-1]

    # the same button again (stale): refused, nothing recorded or sent twice
    await h.press(ADMIN_ID, f"ukey:yes:41:{bot_key.id}")
    answer = h.session.of("AnswerCallbackQuery")[-1]
    assert answer.show_alert and "not active any more" in answer.text
    await h.press(ADMIN_ID, f"ukey:ask:41:{bot_key.id}")
    assert "not active any more" in h.session.of("AnswerCallbackQuery")[-1].text
    assert len([e for e in (await h.app.audit.page(0))[0] if e.action == "api_key_revoke"]) == 1
    assert len(h.session.texts_to(41)) == 1


async def test_forged_revoke_buttons_are_refused_and_change_nothing(harness):
    h = harness
    k = await seed_user(h, utcnow())
    other_key, other_raw = k["other"]
    new_key, new_raw = k["new"]
    # another user's key under this user's id (and the other way round), a key that never existed
    for data in (f"ukey:yes:41:{other_key.id}", f"ukey:ask:41:{other_key.id}", f"ukey:yes:42:{new_key.id}",
                 "ukey:yes:41:999999", f"ukey:yes:41:{k['gone'].id}"):
        await h.press(ADMIN_ID, data)
        answer = h.session.of("AnswerCallbackQuery")[-1]
        assert answer.show_alert and "not active any more" in answer.text, data
    # numbers that cannot be ids do not reach a handler at all
    for data in ("ukey:yes:41:99999999999999999999", "ukey:yes:41:-1", "ukey:yes:x:1", "ukey:zap:41:1"):
        await h.press(ADMIN_ID, data)
        assert "no longer active" in h.session.of("AnswerCallbackQuery")[-1].text, data
    # a user who is not an admin pressing a genuine button
    await h.press(41, f"ukey:yes:41:{new_key.id}")
    await h.press(42, f"ukey:yes:42:{other_key.id}")
    for raw in (other_raw, new_raw, k["old"][1]):
        assert await h.app.api_keys.authenticate(raw) is not None
    assert not [e for e in (await h.app.audit.page(0))[0] if e.action == "api_key_revoke"]
    assert h.session.texts_to(41) + h.session.texts_to(42) == []


async def test_the_notice_is_in_the_users_language(harness):
    h = harness
    k = await seed_user(h, utcnow())
    await h.users.set_language(42, "ru")
    other_key, other_raw = k["other"]
    await h.press(ADMIN_ID, f"ukey:yes:42:{other_key.id}")
    with h.app.i18n.context(), h.app.i18n.use_locale("ru"):
        expected = revoked_notice(other_key)
    assert h.session.texts_to(42) == [expected]
    assert await h.app.api_keys.authenticate(other_raw) is None


async def test_revoke_any_switches_off_only_a_usable_key_of_that_user(harness):
    h = harness
    k = await seed_user(h, utcnow())
    keys = h.app.api_keys
    old_key, old_raw = k["old"]
    assert await keys.revoke_any(old_key.id, user_id=42) is None  # not 42's
    revoked = await keys.revoke_any(old_key.id, user_id=41)  # a rolled key in its grace period
    assert revoked is not None and revoked.id == old_key.id and revoked.revoked_at is not None
    assert await keys.authenticate(old_raw) is None
    assert await keys.revoke_any(old_key.id) is None  # already off
    assert await keys.revoke_any(k["new"][0].id) is not None  # any user's key, when no user is named
