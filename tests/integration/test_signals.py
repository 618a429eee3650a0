"""Signals in-process: the real app's HTTP ingest, delivery queue, handlers and track record, with a
recording session instead of Telegram and an injected clock."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from db.models_signals import Outbox, Signal, SignalEvent
from processing.ingest_auth import IngestAuth, signed_headers
from routes.signals import add_signal_routes
from tests.conftest import ADMIN_ID, make_settings
from tests.support.core import Clock
from tests.support.harness import Harness

SECRET = "ingest-secret"
CHANNEL = -100777
SIGNAL = {"id": "ext-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h", "note": "retest"}


@pytest.fixture
async def h(database_url) -> AsyncIterator[Harness]:
    settings = make_settings(database_url=database_url, signal_webhook_secret=SECRET,
                             telegram_channel_map={"crypto": str(CHANNEL)})
    harness = await Harness(settings).start()
    clock = Clock()
    harness.clock = clock
    for service in (harness.app.signals, harness.app.signal_delivery, harness.app.subscriptions,
                    harness.app.broadcasts):
        service.clock = clock
    yield harness
    await harness.close()


@pytest.fixture
async def client(h) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(h.app.web)) as c:
        yield c


async def post(client, path, payload, *, secret=SECRET, timestamp=None, headers=None):
    body = json.dumps(payload).encode()
    sent = signed_headers(secret, body, timestamp=timestamp)
    sent.update(headers or {})
    response = await client.post(path, data=body, headers=sent)
    return response.status, await response.json()


async def users(h, *ids, plan=None, days=30):
    for uid in ids:
        await h.users.seen(uid, username=None, first_name="U", language_code="en")
        if plan:
            await h.app.subscriptions.add_time(uid, plan, days, source="grant")


async def drain(h) -> None:
    for _ in range(20):
        if not await h.app.signal_delivery.run_once():
            return


def signal_texts(h, chat_id) -> list:
    return [m for m in h.session.of("SendMessage") if m.chat_id == chat_id and "Entry:" in m.text]


async def outbox(h, **where) -> list[Outbox]:
    async with h.db.session() as session:
        query = select(Outbox).order_by(Outbox.id)
        for key, value in where.items():
            query = query.where(getattr(Outbox, key) == value)
        return list(await session.scalars(query))


async def count(h, model) -> int:
    async with h.db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


# -- ingest --------------------------------------------------------------------------------------------

async def test_signal_reaches_subscribers_and_channel_in_cornix_format(h, client):
    await users(h, 11, 12, plan="basic")
    status, body = await post(client, "/api/signals", SIGNAL)
    assert status == 202 and body["stored"] is True
    await drain(h)
    [to_user] = signal_texts(h, 11)
    assert to_user.text.startswith("<b>#SOL/USDT</b> Long")
    for line in ("Entry: 142.5", "Take-Profit Targets:\n1) 150\n2) 158", "Stop: 136", "Timeframe: 4h"):
        assert line in to_user.text
    assert len(signal_texts(h, 12)) == 1 and len(signal_texts(h, CHANNEL)) == 1


@pytest.mark.parametrize(("case", "status", "field"), [
    ("bad signature", 401, "X-Signature"),
    ("stale timestamp", 401, "X-Timestamp"),
    ("bad price", 422, "entry"),
    ("missing field", 422, "stop_loss"),
    ("stop above entry", 422, "stop_loss"),
    ("float price", 422, "take_profits"),
])
async def test_refused_ingest_stores_and_sends_nothing(h, client, case, status, field):
    await users(h, 11, plan="basic")
    payload, kwargs = dict(SIGNAL), {}
    if case == "bad signature":
        kwargs["secret"] = "wrong"
    elif case == "stale timestamp":
        kwargs["timestamp"] = int(time.time()) - 301
    elif case == "bad price":
        payload["entry"] = "abc"
    elif case == "missing field":
        del payload["stop_loss"]
    elif case == "stop above entry":
        payload["stop_loss"] = "150"
    elif case == "float price":
        payload["take_profits"] = [150.5]
    got_status, body = await post(client, "/api/signals", payload, **kwargs)
    assert got_status == status
    if field:
        assert body["field"] == field
    assert await count(h, Signal) == 0 and await count(h, Outbox) == 0
    await drain(h)
    assert h.session.of("SendMessage") == []


async def test_repeated_sender_id_is_a_duplicate_and_delivers_nothing_twice(h, client):
    await users(h, 11, plan="pro")
    assert (await post(client, "/api/signals", SIGNAL))[0] == 202
    await drain(h)
    status, body = await post(client, "/api/signals", {**SIGNAL, "entry": "140"})
    assert status == 200 and body == {"stored": False, "duplicate": True, "id": body["id"]}
    await drain(h)
    assert len(signal_texts(h, 11)) == 1 and await count(h, Signal) == 1


async def test_event_for_unknown_signal_is_404_and_events_reply_to_each_copy(h, client):
    await users(h, 11, 12, plan="basic")
    status, body = await post(client, "/api/signals/nope/events", {"type": "tp_hit", "level": 1, "price": "150"},
                              timestamp=int(time.time()) - 1)  # not the signature sent to ext-1 below
    assert status == 404 and await count(h, SignalEvent) == 0
    await post(client, "/api/signals", SIGNAL)
    await drain(h)
    copies = {m.chat_id: m for m in h.session.of("SendMessage") if "Entry:" in m.text}
    sent_ids = {row.chat: row.message_id for row in await outbox(h, kind="signal")}
    status, _ = await post(client, "/api/signals/ext-1/events", {"type": "tp_hit", "level": 1, "price": "150"})
    assert status == 202
    status, body = await post(client, "/api/signals/ext-1/events", {"type": "tp_hit", "level": 1, "price": "150"})
    assert status == 200 and body["duplicate"] is True
    status, body = await post(client, "/api/signals/ext-1/events", {"type": "tp_hit", "level": 3, "price": "170"})
    assert status == 422 and body["field"] == "level"
    await drain(h)
    replies = [m for m in h.session.of("SendMessage") if "Take-Profit target 1" in m.text]
    assert {m.chat_id for m in replies} == set(copies)
    for reply in replies:
        assert reply.reply_parameters.message_id == sent_ids[str(reply.chat_id)]
    await post(client, "/api/signals/ext-1/events", {"type": "closed", "price": "147"})
    status, _ = await post(client, "/api/signals/ext-1/events", {"type": "sl_hit", "price": "136"})
    assert status == 409  # closed signals take no more events


async def test_unknown_ip_is_403_and_stores_nothing(h):
    strict = web.Application()  # the allow-list is read when the app is built
    add_signal_routes(strict, IngestAuth.build(SECRET, ["10.1.2.3"]), h.app.signals, lambda: None)
    async with TestClient(TestServer(strict)) as other:
        status, _ = await post(other, "/api/signals", SIGNAL)
        event_status, _ = await post(other, "/api/signals/ext-1/events", {"type": "closed", "price": "1"})
    assert status == event_status == 403
    assert await count(h, Signal) == 0 and await count(h, Outbox) == 0


# -- eligibility ---------------------------------------------------------------------------------------

async def test_daily_cap_counts_in_the_timezone_and_filters_apply(h, client):
    await users(h, 21, 22)  # Free: 10 a day, delayed
    await users(h, 23, plan="basic")
    await h.app.signals.toggle_filter(22, "symbol", "BTC/USDT")
    for i in range(12):
        await post(client, "/api/signals", {**SIGNAL, "id": f"cap-{i}"})
    rows = await outbox(h, user_id=21)
    assert len(rows) == 10  # Free cap reached: signals 11 and 12 are not queued for user 21
    assert len(await outbox(h, user_id=23)) == 12
    assert await outbox(h, user_id=22) == []  # filtered to BTC/USDT only
    await post(client, "/api/signals", {**SIGNAL, "id": "btc", "symbol": "BTC/USDT", "entry": "90000",
                                        "take_profits": ["95000"], "stop_loss": "85000"})
    assert len(await outbox(h, user_id=22)) == 1
    h.clock.advance(days=1)  # a new day: the cap starts again
    await post(client, "/api/signals", {**SIGNAL, "id": "next-day"})
    assert len(await outbox(h, user_id=21)) == 11


async def test_free_users_get_signals_later_and_see_them_later(h, client):
    await users(h, 31)
    await users(h, 32, plan="basic")
    await post(client, "/api/signals", SIGNAL)
    await drain(h)
    assert len(signal_texts(h, 32)) == 1 and signal_texts(h, 31) == []
    await h.send(31, "/signals")
    assert "SOL/USDT" not in h.session.texts_to(31)[-1]
    h.clock.advance(minutes=31)
    await drain(h)
    assert len(signal_texts(h, 31)) == 1
    await h.send(31, "/signals")
    screen = h.session.texts_to(31)[-1]
    assert "Plan: <b>Free</b>" in screen and "Today: 1 of 10 signals" in screen and "#SOL/USDT" in screen


async def test_blocked_users_are_marked_and_skipped_thereafter(h, client):
    await users(h, 41, 42, plan="basic")
    h.session.blocked.add(41)
    await post(client, "/api/signals", SIGNAL)
    await drain(h)
    [row] = await outbox(h, user_id=41)
    assert row.status == "blocked" and (await h.users.get(41)).is_blocked
    await post(client, "/api/signals", {**SIGNAL, "id": "ext-2"})
    assert len(await outbox(h, user_id=41)) == 1  # not queued again
    assert len(await outbox(h, user_id=42)) == 2


async def test_delivery_outcomes_are_counted_on_metrics(h, client):
    def counted(status: str) -> float:
        return REGISTRY.get_sample_value("bot_outbox_results_total", {"status": status}) or 0.0

    before = {status: counted(status) for status in ("sent", "blocked")}
    await users(h, 51, 52, 53, plan="basic")
    h.session.blocked.add(52)
    await post(client, "/api/signals", SIGNAL)
    await drain(h)
    assert counted("sent") - before["sent"] == 3  # two users and the channel
    assert counted("blocked") - before["blocked"] == 1


# -- /signals filters ----------------------------------------------------------------------------------

async def test_filter_buttons_toggle_and_forged_values_change_nothing(h, client):
    await users(h, 51, plan="basic")
    await post(client, "/api/signals", SIGNAL)
    await h.send(51, "/signals")
    await h.press(51, "sg:filters")
    await h.press(51, "sf:symbol:SOL/USDT")
    assert await h.app.signals.filters(51) == {"ecosystem": set(), "symbol": {"SOL/USDT"}}
    await h.press(51, "sf:symbol:DOGE/USDT")  # never offered
    assert await h.app.signals.filters(51) == {"ecosystem": set(), "symbol": {"SOL/USDT"}}
    await h.press(51, "sg:clear")
    assert await h.app.signals.filters(51) == {"ecosystem": set(), "symbol": set()}


# -- track record ---------------------------------------------------------------------------------------

async def test_performance_shows_figures_chain_and_chart_then_detects_tampering(h, client):
    await users(h, 61, plan="basic")
    await post(client, "/api/signals", SIGNAL)
    await post(client, "/api/signals/ext-1/events", {"type": "closed", "price": "156.75"})  # +10 %
    await h.send(61, "/performance")
    text = h.session.texts_to(61)[-1]
    assert "All time: 1 closed · win rate 100.00% · avg R 2.19 · return +10.00%" in text
    assert "✅" in text
    [photo] = h.session.of("SendPhoto")
    assert photo.photo.data.startswith(b"\x89PNG")
    async with h.db.transaction() as session:
        await session.execute(update(Signal).where(Signal.external_id == "ext-1").values(entry=Decimal("140")))
    await h.send(61, "/performance")
    assert "❌ broken at signal ext-1" in h.session.texts_to(61)[-1]


# -- /signal and /broadcast -------------------------------------------------------------------------------

async def test_admin_posts_a_signal_by_hand(h):
    await users(h, 71, plan="basic")
    await h.send(ADMIN_ID, "/signal crypto ETH/USDT short 3000 2900,2800 3100 1h fade")
    assert "Signal #1 stored" in h.session.texts_to(ADMIN_ID)[-1]
    await h.send(ADMIN_ID, "/signal crypto ETH/USDT short 3000 2900 2950")
    assert "stop_loss" in h.session.texts_to(ADMIN_ID)[-1]
    await drain(h)
    [message] = signal_texts(h, 71)
    assert "#ETH/USDT</b> Short" in message.text and "1) 2900\n2) 2800" in message.text


async def test_broadcast_preview_confirm_progress_and_cancel(h):
    await users(h, 81, 82, 83)
    await users(h, 84, plan="pro")
    await h.send(ADMIN_ID, "/broadcast")
    await h.send(ADMIN_ID, "Hello <b>all</b>")
    audience = h.session.of("SendMessage")[-1]
    labels = [b.text for row in audience.reply_markup.inline_keyboard for b in row]
    assert "Everyone · 5" in labels and "Paying subscribers · 1" in labels  # the admin is a user too
    await h.press(ADMIN_ID, "bca:paying")
    [preview] = h.session.of("CopyMessage")
    assert preview.chat_id == ADMIN_ID
    assert "1 recipients" in h.session.texts_to(ADMIN_ID)[-1]
    await h.press(ADMIN_ID, "bcc:0")  # cancel at the preview: nothing queued
    assert await outbox(h, kind="broadcast") == []

    await h.send(ADMIN_ID, "/broadcast")
    await h.send(ADMIN_ID, "Second")
    await h.press(ADMIN_ID, "bca:all")
    await h.press(ADMIN_ID, "bcc:1")
    assert "Broadcast #1 is sending" in h.session.texts_to(ADMIN_ID)[-1]
    rows = await outbox(h, kind="broadcast")
    assert len(rows) == 5
    h.app.signal_delivery.batch = 2
    await h.app.signal_delivery.run_once()  # two sent...
    await h.press(ADMIN_ID, "bcx:1")  # ...then cancelled
    await drain(h)
    statuses = sorted(r.status for r in await outbox(h, kind="broadcast"))
    assert statuses == ["cancelled", "cancelled", "cancelled", "sent", "sent"]
    assert len(h.session.of("CopyMessage")) == 2 + 2  # two previews, two recipients
    assert "cancelled" in h.session.texts_to(ADMIN_ID)[-1]


async def test_a_cancel_also_stops_rows_already_claimed(h):
    await users(h, *range(61, 71))
    broadcast = await h.app.broadcasts.create(ADMIN_ID, ADMIN_ID, 5, "all")
    copies = h.session.of  # the admin cancels while the third copy is going out
    send = h.session.make_request

    async def admin_cancels_during_the_third(bot, method, **kwargs):
        if type(method).__name__ == "CopyMessage" and len(copies("CopyMessage")) == 2:
            await h.app.broadcasts.cancel(broadcast.id)
        return await send(bot, method, **kwargs)

    h.session.make_request = admin_cancels_during_the_third
    from processing.signal_delivery import SignalDelivery

    worker = SignalDelivery(h.db, h.bot, h.app.i18n, clock=h.clock, concurrency=1, recheck_every=1)
    assert await worker.run_once() == broadcast.total  # one batch, claimed before the cancel
    statuses = [row.status for row in await outbox(h, kind="broadcast")]
    assert statuses.count("sent") == 3 and statuses.count("cancelled") == broadcast.total - 3
    assert len(copies("CopyMessage")) == 3


async def test_broadcast_finishes_and_reports(h):
    await users(h, 91, 92)
    broadcast = await h.app.broadcasts.create(ADMIN_ID, ADMIN_ID, 5, "all")
    await h.app.broadcasts.set_progress_message(broadcast.id, ADMIN_ID, 77)
    h.session.blocked.add(92)
    await drain(h)
    await h.app.broadcast_progress.tick()
    edit = h.session.of("EditMessageText")[-1]
    assert edit.message_id == 77 and "finished" in edit.text and "Blocked the bot: 1" in edit.text


async def test_restart_resumes_without_duplicates_or_losses(h, client):
    await users(h, *range(100, 130), plan="basic")
    await post(client, "/api/signals", SIGNAL)
    worker = h.app.signal_delivery
    worker.batch = 10
    await worker.run_once()
    # a crash: a claimed batch whose sends never happened stays "sending"
    claimed = await worker._claim()
    assert len(claimed) == 10
    from processing.signal_delivery import SignalDelivery

    fresh = SignalDelivery(h.db, h.bot, h.app.i18n, clock=h.clock)
    assert await fresh.recover() == 10
    for _ in range(10):
        if not await fresh.run_once():
            break
    per_chat = {}
    for message in h.session.of("SendMessage"):
        per_chat[message.chat_id] = per_chat.get(message.chat_id, 0) + 1
    assert set(per_chat) == {*range(100, 130), CHANNEL} and set(per_chat.values()) == {1}


async def until_drained(h) -> None:
    async with asyncio.timeout(20):
        while [row for row in await outbox(h) if row.status in ("queued", "sending")]:  # noqa: ASYNC110 - a query
            await asyncio.sleep(0.02)


async def test_the_running_worker_goes_on_across_batches_and_a_stop_repeats_nothing(h, client):
    await users(h, *range(200, 240), plan="basic")
    await post(client, "/api/signals", SIGNAL)
    worker = h.app.signal_delivery
    worker.batch = 7  # six batches, each claimed while the one before is still going out
    running = asyncio.create_task(worker.run())
    while len(h.session.of("SendMessage")) < 20:  # noqa: ASYNC110 - the recording session has no event
        await asyncio.sleep(0.005)
    worker.stop()  # what SIGTERM does: sends in flight finish, the batch claimed ahead goes back to the queue
    await running
    assert [row for row in await outbox(h) if row.status == "queued"]
    assert not [row for row in await outbox(h) if row.status == "sending"]
    from processing.signal_delivery import SignalDelivery

    fresh = SignalDelivery(h.db, h.bot, h.app.i18n, clock=h.clock, batch=7)
    assert await fresh.recover() == 0
    running = asyncio.create_task(fresh.run())
    await until_drained(h)
    fresh.stop()
    await running
    chats = [message.chat_id for message in h.session.of("SendMessage")]
    assert sorted(chats) == sorted([*range(200, 240), CHANNEL])  # each chat exactly once
    assert {row.status for row in await outbox(h)} == {"sent"}


async def test_lease_expiry_also_resumes(h, client):
    await users(h, 140, plan="basic")
    await post(client, "/api/signals", SIGNAL)
    claimed = await h.app.signal_delivery._claim()
    assert len(claimed) == 2
    assert await h.app.signal_delivery.run_once() == 0  # leased: nobody else takes them
    h.clock.advance(minutes=3)
    assert await h.app.signal_delivery.run_once() == 2
    assert len(signal_texts(h, 140)) == 1
