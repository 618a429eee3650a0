"""Bursts the benchmarks measure (issue 15): many new users at once, and a fan-out killed while the
database is slow to record results."""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, select, text

from db.models import User
from processing.ingest_auth import signed_headers
from processing.signal_delivery import SignalDelivery
from services.users import UserService
from tests.conftest import make_settings
from tests.support.harness import Harness

SECRET = "ingest-secret"
CHANNEL = -100777
SIGNAL = {"id": "ext-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}


async def test_a_burst_of_new_users_is_recorded_in_a_few_writes_each_new_exactly_once(database):
    users = UserService(database)
    await users.seen(1, username="ref", first_name="Ref", language_code="en")
    inserts: list[str] = []
    event.listen(database.engine.sync_engine, "before_cursor_execute",
                 lambda *a: inserts.append(a[2]) if a[2].lstrip().upper().startswith("INSERT") else None)
    ids = list(range(100, 300))
    sightings = [users.seen(uid, username=f"u{uid}", first_name="N", language_code="ru-RU" if uid % 2 else "en")
                 for uid in ids] + [users.seen(150, username="u150", first_name="N", language_code="en")]
    infos = await asyncio.gather(*sightings)

    assert [info.id for info in infos if info.is_new] == ids  # the repeated sighting of 150 is not new again
    assert len(inserts) <= 5  # 200 first contacts: a few group commits, not a transaction each
    async with database.session() as session:
        stored = {u.id: u for u in await session.scalars(select(User).where(User.id >= 100))}
    assert sorted(stored) == ids
    assert stored[101].language == "ru" and stored[100].language == "en"
    assert await users.set_referrer(123, 1) and not await users.set_referrer(123, 1)  # referrer recorded once


@pytest.fixture
async def h(database_url) -> AsyncIterator[Harness]:
    settings = make_settings(database_url=database_url, signal_webhook_secret=SECRET,
                             telegram_channel_map={"crypto": str(CHANNEL)})
    harness = await Harness(settings).start()
    yield harness
    await harness.close()


async def test_a_kill_while_results_wait_for_the_database_repeats_at_most_the_sends_in_flight(h):
    for uid in range(500, 540):
        await h.users.seen(uid, username=None, first_name="U", language_code="en")
        await h.app.subscriptions.add_time(uid, "basic", 30, source="grant")
    async with TestClient(TestServer(h.app.web)) as client:
        body = json.dumps(SIGNAL).encode()
        assert (await client.post("/api/signals", data=body, headers=signed_headers(SECRET, body))).status == 202

    # From the first send on, another writer holds the database: results cannot be recorded.
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_database() -> None:
        async with h.db.transaction() as session:
            if not h.db.is_sqlite:
                await session.execute(text("LOCK TABLE signal_outbox IN EXCLUSIVE MODE"))
            held.set()
            await release.wait()

    holder: list[asyncio.Task] = []
    send = h.session.make_request

    async def first_send_stalls_the_database(bot, method, **kwargs):
        if not holder:
            holder.append(asyncio.create_task(hold_the_database(), context=contextvars.Context()))
            await held.wait()
        return await send(bot, method, **kwargs)

    h.session.make_request = first_send_stalls_the_database
    worker = h.app.signal_delivery
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)
    sent_before_kill = len(h.session.of("SendMessage"))
    running.cancel()  # killed: whatever was sent but not recorded is sent again after the restart
    with pytest.raises(asyncio.CancelledError):
        await running
    release.set()
    await holder[0]
    h.session.make_request = send

    assert sent_before_kill > 0
    fresh = SignalDelivery(h.db, h.bot, h.app.i18n, batch=10)
    await fresh.recover()
    while await fresh.run_once():
        pass
    per_chat = Counter(message.chat_id for message in h.session.of("SendMessage"))
    assert set(per_chat) == {*range(500, 540), CHANNEL}  # no losses
    assert sum(per_chat.values()) - len(per_chat) <= worker.concurrency  # duplicates within the window
