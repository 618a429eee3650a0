"""Whales through the real app: /whales for Free and paid users, cards, forged buttons, follows,
admin CSV import, the signed ingest route, batched alerts and the weekly post."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from aiogram.types import Chat, Document, Message, MessageEntity, Update
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from db.models_whales import WhaleAlert, WhalePost, WhaleTrade
from handlers.user.whales import WBoard, WCard, WFollow, WUnfollow
from processing.ingest_auth import IngestAuth, signed_headers
from processing.whale_alerts import WhaleAlerts
from processing.whale_post import WeeklyWhalePost
from routes.app import build_web_app
from routes.whales import add_routes
from services.whales import WhaleService
from tests.conftest import ADMIN_ID, make_settings
from tests.support.core import Clock
from tests.support.harness import Harness

FREE, PAID = 501, 502
SECRET = "whale-secret"


def wallet(n: int) -> str:
    return f"Whale{n:02d}AddressLongEnough{n:02d}xyz"


def seed(n_wallets: int = 12, now: datetime | None = None) -> list[dict]:
    """Wallet k makes 5 trades with PnL k*100 each (wallet 12 tops PnL), one day ago."""
    ts = ((now or datetime.now(UTC)) - timedelta(days=1)).isoformat()
    return [{"id": f"seed-{k}-{i}", "wallet": wallet(k), "chain": "solana", "symbol": "SOL", "side": "sell",
             "usd_value": "10000", "pnl_usd": str(k * 100), "ts": ts}
            for k in range(1, n_wallets + 1) for i in range(5)]


async def paid_user(h: Harness, user_id: int, plan: str = "basic") -> None:
    await h.users.seen(user_id, username=None, first_name="P", language_code="en")
    await h.app.subscriptions.add_time(user_id, plan, 30, source="grant")


def last(h: Harness, name: str):
    return h.session.of(name)[-1]


def markup_data(method) -> list[str]:
    return [b.callback_data for row in method.reply_markup.inline_keyboard for b in row if b.callback_data]


async def wallet_id(h: Harness, address: str) -> int:
    board = await h.app.whales.board("all", "pnl", limit=100)
    return next(r.wallet_id for r in board.rows if r.address == address)


async def test_free_sees_top5_short_paid_sees_pages_and_full_addresses(harness):
    await harness.app.whales.ingest(seed())
    await harness.send(FREE, "/whales")
    text = last(harness, "SendMessage").text
    assert "Whale leaderboard" in text and "5. " in text and "6. " not in text
    assert wallet(12) not in text and "Whal…2xyz" in text  # shortened
    assert not any(d.startswith("wb:") and d.endswith(":1") for d in markup_data(last(harness, "SendMessage")))

    await paid_user(harness, PAID)
    await harness.send(PAID, "/whales")
    sent = last(harness, "SendMessage")
    assert wallet(12) in sent.text and "10. " in sent.text and "11. " not in sent.text
    assert WBoard(p="7d", m="score", pg=1).pack() in markup_data(sent)
    await harness.press(PAID, WBoard(p="7d", m="pnl", pg=1).pack())
    edited = last(harness, "EditMessageText")
    assert "11. " in edited.text and "12. " in edited.text and "by PnL" in edited.text
    assert wallet(1) in edited.text.split("12. ")[1]  # the lowest PnL is last
    await harness.press(PAID, WBoard(p="nonsense", m="pnl").pack())
    assert last(harness, "AnswerCallbackQuery").show_alert


async def test_cards_and_forged_buttons(harness):
    await harness.app.whales.ingest(seed())
    top, eighth = await wallet_id(harness, wallet(12)), await wallet_id(harness, wallet(5))
    await harness.send(FREE, "/whales")
    await harness.press(FREE, WCard(w=top, p="7d", m="pnl").pack())
    card = last(harness, "EditMessageText").text
    assert "Recent trades" in card and "+$1,200.00" in card and wallet(12) not in card  # short for Free
    before = len(harness.session.of("EditMessageText"))
    await harness.press(FREE, WCard(w=eighth, p="7d", m="pnl").pack())  # outside the Free top 5
    assert last(harness, "AnswerCallbackQuery").show_alert
    await harness.press(FREE, WCard(w=99_999, p="7d", m="pnl").pack())
    assert "isn't available" in last(harness, "AnswerCallbackQuery").text
    assert len(harness.session.of("EditMessageText")) == before
    await harness.press(FREE, WFollow(w=top, t=0).pack())
    assert "paid plans" in last(harness, "AnswerCallbackQuery").text
    assert await harness.app.whales.follow_of(FREE, top) is None

    await paid_user(harness, PAID)
    await harness.press(PAID, WCard(w=eighth, p="7d", m="pnl").pack())
    assert wallet(5) in last(harness, "EditMessageText").text
    await harness.press(PAID, WFollow(w=99_999, t=0).pack())
    assert "isn't available" in last(harness, "AnswerCallbackQuery").text
    await harness.press(PAID, WFollow(w=top, t=9).pack())  # forged threshold
    assert last(harness, "AnswerCallbackQuery").show_alert
    assert await harness.app.whales.follow_of(PAID, top) is None


async def test_follow_threshold_limit_and_unfollow(harness):
    await harness.app.whales.ingest(seed())
    await paid_user(harness, PAID, "basic")  # Basic: 5 wallets
    ids = [await wallet_id(harness, wallet(k)) for k in range(1, 8)]
    await harness.press(PAID, WFollow(w=ids[0]).pack())
    assert "trades at least" in last(harness, "EditMessageText").text
    await harness.press(PAID, WFollow(w=ids[0], t=1).pack())
    assert "Following" in last(harness, "AnswerCallbackQuery").text
    assert (await harness.app.whales.follow_of(PAID, ids[0])).threshold_cents == 50_000 * 100
    assert "Unfollow" in str(last(harness, "EditMessageText").reply_markup)
    for wid in ids[1:5]:
        await harness.press(PAID, WFollow(w=wid, t=0).pack())
    await harness.press(PAID, WFollow(w=ids[5], t=0).pack())
    answer = last(harness, "AnswerCallbackQuery")
    assert answer.show_alert and "5 of 5" in answer.text
    assert await harness.app.whales.follow_of(PAID, ids[5]) is None
    await harness.press(PAID, WUnfollow(w=ids[0]).pack())
    await harness.press(PAID, WFollow(w=ids[5], t=0).pack())
    assert await harness.app.whales.follow_of(PAID, ids[5]) is not None


async def send_document(h: Harness, user_id: int, caption: str, content: bytes) -> None:
    async def download(file, destination=None, **_kwargs):
        destination.write(content)
        return destination

    h.bot.download = download  # the file's bytes, as Telegram would serve them
    message = Message(message_id=77, date=datetime.now(UTC), chat=Chat(id=user_id, type="private"),
                      from_user=h.user(user_id), caption=caption,
                      caption_entities=[MessageEntity(type="bot_command", offset=0, length=len(caption.split()[0]))],
                      document=Document(file_id="f1", file_unique_id="u1", file_name="w.csv", file_size=len(content)))
    await h.dp.feed_update(h.bot, Update(update_id=9_999, message=message))


async def test_admin_csv_import_report(harness):
    csv = (b"address,chain,label,twitter,verified\n"
           b"WalletCsv0001,solana,Alpha,@alpha_fund,yes\n"
           b"bad address!,solana,,,\n"
           b"WalletCsv0002,solana,Beta,,\n")
    await send_document(harness, ADMIN_ID, "/import_whales", csv)
    report = last(harness, "SendMessage").text
    assert "2 accepted" in report and "1 rejected" in report and "line 3: wallet" in report
    await harness.send(ADMIN_ID, "/whale_set solana WalletCsv0002 verified=yes twitter=@beta")
    assert "verified: yes" in last(harness, "SendMessage").text
    await send_document(harness, 12345, "/import_whales", csv)  # not an admin
    assert "only for the bot's administrators" in last(harness, "SendMessage").text


def ingest_app(whales: WhaleService, **auth) -> TestServer:
    app = build_web_app(whales.db)
    add_routes(app, whales, IngestAuth.build(SECRET, **auth))
    return TestServer(app)


async def stored(database) -> int:
    async with database.session() as session:
        return await session.scalar(select(func.count()).select_from(WhaleTrade))


async def test_ingest_route_auth_body_and_idempotency(database):
    whales = WhaleService(database)
    good = json.dumps({"trades": seed(1)}).encode()
    async with TestClient(ingest_app(whales)) as client:
        async def post(body, headers):
            response = await client.post("/api/whales/trades", data=body, headers=headers)
            return response.status, await response.json()

        status, body = await post(good, signed_headers("wrong", good))
        assert status == 401 and body["field"] == "X-Signature"
        stale = int(datetime.now(UTC).timestamp()) - 400
        status, body = await post(good, signed_headers(SECRET, good, timestamp=stale))
        assert status == 401 and body["field"] == "X-Timestamp"
        tampered = good.replace(b"10000", b"99999")
        assert (await post(tampered, signed_headers(SECRET, good)))[0] == 401
        for bad, field in ((b"[]", "body"), (b'{"trades": {}}', "trades"), (b'{"trades": []}', "trades"),
                           (b"{not json", "body")):
            status, body = await post(bad, signed_headers(SECRET, bad))
            assert (status, body["field"]) == (422, field)
        all_bad = json.dumps({"trades": [{"id": "x", "wallet": "Whale01AddressLongEnough01xyz"}]}).encode()
        status, body = await post(all_bad, signed_headers(SECRET, all_bad))
        assert status == 422 and body["field"] == "trades[0].chain" and body["rejected"][0]["reason"]
        assert await stored(database) == 0

        status, body = await post(good, signed_headers(SECRET, good))
        assert (status, body["stored"], body["duplicates"]) == (200, 5, 0)
        status, body = await post(good, signed_headers(SECRET, good))
        assert (status, body["stored"], body["duplicates"]) == (200, 0, 5)
        mixed = json.dumps({"trades": [seed(1)[0] | {"id": "new-1"}, seed(1)[0] | {"id": "new-2", "side": "x"}]})
        status, body = await post(mixed.encode(), signed_headers(SECRET, mixed.encode()))
        assert (status, body["stored"], body["rejected"][0]["field"]) == (200, 1, "trades[1].side")
        assert await stored(database) == 6

    async with TestClient(ingest_app(whales, allowed_ips=["10.1.0.0/16"])) as client:
        response = await client.post("/api/whales/trades", data=good, headers=signed_headers(SECRET, good))
        assert response.status == 403
    app = build_web_app(database)
    add_routes(app, whales, IngestAuth.build(None))
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/api/whales/trades", data=good, headers=signed_headers(SECRET, good))
        assert response.status == 503 and "SIGNAL_WEBHOOK_SECRET" in (await response.json())["error"]
    assert await stored(database) == 6


async def test_alerts_batched_per_window_once_and_blocked_skipped(database_url):
    clock = Clock()
    h = await Harness(make_settings(database_url=database_url)).start()
    try:
        whales = WhaleService(h.db, clock=clock)
        alerts = WhaleAlerts(whales, h.app.notifier, h.app.subscriptions, h.settings.tz, clock=clock)
        h.app.subscriptions.clock = clock
        for user_id in (PAID, PAID + 1):
            await paid_user(h, user_id)
        await whales.ingest(seed(2, clock()))
        w1 = await wallet_id(h, wallet(1))
        for user_id in (PAID, PAID + 1):
            assert (await whales.follow(user_id, w1, 50_000 * 100, limit=5)).ok

        def trade(n, usd):
            return {"id": f"live-{n}", "wallet": wallet(1), "chain": "solana", "symbol": "BONK", "side": "buy",
                    "usd_value": usd, "ts": clock().isoformat()}

        await whales.ingest([trade(1, "60000"), trade(2, "10000")])  # the second is under the threshold
        clock.advance(seconds=30)
        await whales.ingest([trade(3, "250000")])
        assert await alerts.tick() == 0  # the window is still open
        h.session.blocked.add(PAID + 1)
        clock.advance(seconds=31)
        h.session.clear()
        assert await alerts.tick() == 1
        [message] = [m for m in h.session.of("SendMessage") if m.chat_id == PAID]
        assert "2 new trades" in message.text
        assert "$60,000.00" in message.text and "$250,000.00" in message.text and "$10,000.00" not in message.text
        assert await alerts.tick() == 0  # nothing twice
        clock.advance(minutes=10)
        await whales.ingest([trade(3, "250000"), trade(4, "70000")])  # a re-send and a new one
        clock.advance(seconds=61)
        h.session.clear()
        assert await alerts.tick() == 1
        sent = [m for m in h.session.of("SendMessage") if m.chat_id == PAID]
        assert len(sent) == 1 and "a wallet you follow just traded" in sent[0].text
        async with h.db.session() as session:
            statuses = dict((await session.execute(
                select(WhaleAlert.status, func.count()).group_by(WhaleAlert.status))).all())
        # PAID+1 blocked the bot at the first batch; marked blocked, it is skipped until it comes back
        assert statuses == {"sent": 3, "skipped": 3}
    finally:
        await h.close()


async def test_weekly_post_renders_image_once(database_url):
    h = await Harness(make_settings(database_url=database_url, telegram_chat_id="-1001234")).start()
    try:
        await h.app.whales.ingest(seed(3))
        post = WeeklyWhalePost(h.db, h.app.whales, h.bot, h.app.i18n, h.settings)
        assert await post.run()
        assert not await post.run()  # same week: claimed already
        [photo] = h.session.of("SendPhoto")
        assert photo.chat_id == -1001234 and photo.photo.data.startswith(b"\x89PNG")
        assert "Weekly whale champions" in photo.caption and "1. " in photo.caption
        async with h.db.session() as session:
            assert (await session.scalar(select(WhalePost.status))) == "sent"
    finally:
        await h.close()


async def test_menu_whales_section_is_open(harness):
    await harness.send(FREE, "/start")
    await harness.press(FREE, "menu:whales")
    assert "Whale leaderboard" in last(harness, "EditMessageText").text


async def test_weekly_post_is_scheduled_monday_9_in_timezone_and_needs_a_chat(database_url):
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    h = await Harness(make_settings(database_url=database_url, timezone="Asia/Tokyo")).start()
    try:
        post = WeeklyWhalePost(h.db, h.app.whales, h.bot, h.app.i18n, h.settings)
        scheduler = AsyncIOScheduler(timezone=h.settings.tz)
        post.schedule(scheduler)
        job = scheduler.get_job("whales_weekly_post")
        after = datetime(2026, 11, 21, 12, 0, tzinfo=h.settings.tz)  # a Saturday
        fire = job.trigger.get_next_fire_time(None, after)
        assert (fire.weekday(), fire.hour, fire.minute, fire.utcoffset()) == (0, 9, 0, timedelta(hours=9))
        assert fire.date().isoformat() == "2026-11-23"
        assert not await post.run()  # TELEGRAM_CHAT_ID unset: nothing sent, nothing claimed
        assert h.session.of("SendPhoto") == []
    finally:
        await h.close()
