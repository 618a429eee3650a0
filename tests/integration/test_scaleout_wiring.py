"""The scale-out parts wired into the app (issue #18): one process per SQLite file, `/healthz` naming the leader,
on PostgreSQL + Redis one leader running the scheduled jobs and another taking over, an update delivered twice
handled once, a conversation whose steps land on different replicas, migrations run once by replicas starting
together, and gates sharing one send budget."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import SendMessage
from aiogram.types import Update, User
from alembic.script import ScriptDirectory
from apscheduler.schedulers.base import STATE_RUNNING
from redis.asyncio import Redis
from sqlalchemy import select, text

from bot.app import App
from bot.replicas import SharedThrottle
from bot.startup import StartupError
from db import migrate
from db.engine import Database
from db.models import FulfilmentJob
from sandbox.runner import SANDBOX_TOKEN
from sandbox.telegram import TelegramStandIn
from services.leader import PostgresLeadership
from services.orders import OrderService
from services.users import UserService
from tests.conftest import ADMIN_ID, PG_URL, make_settings
from tests.support import redis_server as _redis
from tests.support.pg import fresh_database
from transport.gate import OutgoingGate
from transport.redis_budget import RedisBudget

redis_server, redis_url = _redis.redis_server, _redis.redis_url

SECRET = "replica_Secret-0123456789"
USER = 7101


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramStandIn]:
    async with TelegramStandIn(rate_limit=None) as stand_in:
        yield stand_in


def replica(telegram: TelegramStandIn, database_url: str, **overrides) -> App:
    """An app as a replica runs it: webhook mode (Telegram's deliveries are posted here by the test)."""
    return App(make_settings(
        telegram_bot_token=SANDBOX_TOKEN, telegram_api_url=telegram.base_url, database_url=database_url,
        web_port=0, admin_ids=[ADMIN_ID], telegram_webhook_url="http://127.0.0.1:9/telegram/webhook",
        telegram_webhook_secret=SECRET, **overrides))


async def healthz(app: App) -> dict:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{app.port}/healthz")
    assert answer.status_code == 200
    return answer.json()


async def post_update(app: App, update: dict) -> None:
    """Telegram's delivery of `update` to this replica's webhook."""
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"http://127.0.0.1:{app.port}/telegram/webhook", json=update,
                                   headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert answer.status_code == 200, answer.text


def written(telegram: TelegramStandIn, user_id: int, fragment: str) -> list[dict]:
    return [m for m in telegram.chat_messages(user_id, bot_only=True)
            if fragment.lower() in m.get("text", "").lower()]


def answers(telegram: TelegramStandIn) -> list[str]:
    """What the bot wrote to USER, in order."""
    return [m.get("text", "") for m in telegram.chat_messages(USER, bot_only=True)]


async def answered_once_more(telegram: TelegramStandIn, app: App) -> None:
    """Send USER's /help and wait for its answer (and a moment more): a duplicate handled meanwhile shows."""
    before = len(answers(telegram))
    telegram.send_text(USER, "/help")
    await post_update(app, take_update(telegram))
    await telegram.wait_for(lambda: len(answers(telegram)) > before)
    await asyncio.sleep(0.2)
    assert len(answers(telegram)) == before + 1


def take_update(telegram: TelegramStandIn) -> dict:
    """The update the stand-in queued for the webhook (delivered by hand here, to a replica of our choice)."""
    return telegram.updates.pop(0)


@contextlib.asynccontextmanager
async def running(*apps: App) -> AsyncIterator[None]:
    try:
        for app in apps:
            await app.start()
        yield
    finally:
        for app in apps:
            await app.stop()


# ---------------------------------------------------------------- one process (SQLite)

async def test_a_second_process_on_the_same_sqlite_file_is_refused_in_one_line(telegram, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    first = replica(telegram, url)
    async with running(first):
        assert (await healthz(first))["leader"] is True  # a single process always leads
        assert first.scheduler.state == STATE_RUNNING  # its jobs run
        second = replica(telegram, url)
        try:
            with pytest.raises(StartupError) as refused:
                await second.start()
        finally:
            await second.stop()
        line = str(refused.value)
        assert "\n" not in line and line.startswith("DATABASE_URL: another process is already running")
        assert "PostgreSQL" in line
        assert (await healthz(first))["status"] == "ok"  # the first one is untouched
    again = replica(telegram, url)  # once the first has stopped, the file is free
    async with running(again):
        assert (await healthz(again))["leader"] is True


async def test_polling_with_redis_url_is_refused_as_replicas_cannot_share_it(telegram, tmp_path, redis_url):
    app = App(make_settings(telegram_bot_token=SANDBOX_TOKEN, telegram_api_url=telegram.base_url, web_port=0,
                            database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", redis_url=redis_url))
    try:
        with pytest.raises(StartupError) as refused:
            await app.start()
    finally:
        await app.stop()
    line = str(refused.value)
    assert "\n" not in line and line.startswith("REDIS_URL is set") and "TELEGRAM_WEBHOOK_URL" in line
    assert not telegram.calls_of("deleteWebhook") and not telegram.calls_of("getUpdates")


async def test_an_update_delivered_twice_is_handled_once_without_redis(telegram, tmp_path):
    telegram.add_user(USER, "Ann")
    app = replica(telegram, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    async with running(app):
        telegram.send_text(USER, "/terms")
        update = take_update(telegram)
        await post_update(app, update)
        [terms] = await telegram.wait_for(lambda: answers(telegram))
        await post_update(app, update)  # Telegram retries: the answer was lost on the way
        await answered_once_more(telegram, app)
        assert answers(telegram).count(terms) == 1


# ---------------------------------------------------------------- replicas (PostgreSQL + Redis)

def pg_database():
    return fresh_database(PG_URL, "wire")


def replicas(telegram: TelegramStandIn, database_url: str, redis: str, count: int = 2) -> list[App]:
    apps = [replica(telegram, database_url, redis_url=redis) for _ in range(count)]
    for app in apps:  # a heartbeat of 0.2 s instead of 5 s, so a takeover takes a fraction of a second here
        app.services.leadership = PostgresLeadership(database_url, heartbeat=0.2)
    return apps


# PostgreSQL only, like the PostgreSQL variants of the database tests: present whenever TEST_DATABASE_URL is.
if PG_URL:
    async def test_one_replica_leads_and_runs_the_jobs_and_another_takes_over_when_it_stops(telegram, redis_url):
        async with pg_database() as url:
            a, b = replicas(telegram, url, redis_url)
            runs = {"a": 0, "b": 0}

            def probe(name: str):
                async def run() -> None:
                    runs[name] += 1
                return run

            try:
                await b.start()
                await a.start()
                assert (await healthz(a))["leader"] is False  # b started first and holds the lock
                assert (await healthz(b))["leader"] is True
                for app, name in ((a, "a"), (b, "b")):
                    app.scheduler.add_job(probe(name), "interval", seconds=0.05, id="probe")
                await asyncio.sleep(0.5)
                assert runs["b"] > 0 and runs["a"] == 0  # the scheduled jobs run on the leader only

                await b.stop()  # the leader stops
                stopped = time.monotonic()
                await telegram.wait_for(lambda: a.services.leadership.is_leader, timeout=3)
                assert time.monotonic() - stopped < 1  # one heartbeat of a's
                before = runs["a"]
                await telegram.wait_for(lambda: runs["a"] > before, timeout=2)
                assert (await healthz(a))["leader"] is True
            finally:
                await a.stop()
                await b.stop()
            assert not a.services.leadership.is_leader

    async def test_an_update_delivered_to_two_replicas_is_handled_once(telegram, redis_url):
        telegram.add_user(USER, "Ann")
        async with pg_database() as url:
            a, b = replicas(telegram, url, redis_url)
            async with running(a, b):
                telegram.send_text(USER, "/terms")
                update = take_update(telegram)
                await asyncio.gather(post_update(a, update), post_update(b, update))
                [terms] = await telegram.wait_for(lambda: answers(telegram))
                await answered_once_more(telegram, b)
                assert answers(telegram).count(terms) == 1

    async def test_a_conversation_whose_steps_land_on_different_replicas(telegram, redis_url):
        telegram.add_user(USER, "Ann")
        telegram.add_user(ADMIN_ID, "Admin")
        async with pg_database() as url:
            a, b = replicas(telegram, url, redis_url)
            async with running(a, b):
                telegram.send_text(USER, "/paysupport")
                await post_update(a, take_update(telegram))
                await telegram.wait_for(lambda: written(telegram, USER, "Describe the problem"))
                telegram.send_text(USER, "Order 12 was paid but not delivered")
                await post_update(b, take_update(telegram))  # b knows what a asked for
                await telegram.wait_for(lambda: written(telegram, USER, "Sent."))
                await telegram.wait_for(lambda: written(telegram, ADMIN_ID, "Support request from Ann"))

    async def test_a_starting_replica_leaves_alone_the_work_another_replica_holds(telegram, redis_url):
        async with pg_database() as url:
            db = Database(url)
            try:
                await migrate.upgrade(db)
                await UserService(db).seen(USER, username=None, first_name="Ann", language_code="en")
                order = await OrderService(db).create(user_id=USER, product="ai_tokens", product_ref="m",
                                                      title="Tokens", amount_cents=500, ttl=timedelta(minutes=30))
                held_until = datetime.now(UTC) + timedelta(minutes=5)  # another replica is fulfilling it now
                async with db.transaction() as session:
                    session.add(FulfilmentJob(order_id=order.id, status="running", attempts=1,
                                              lease_until=held_until))
                [starting] = replicas(telegram, url, redis_url, count=1)
                async with running(starting):
                    await asyncio.sleep(0.3)
                    async with db.session() as session:
                        job = await session.scalar(select(FulfilmentJob))
                assert job.status == "running" and job.attempts == 1  # not requeued, not taken
                assert abs((job.lease_until - held_until).total_seconds()) < 1
            finally:
                await db.close()

    async def test_replicas_starting_together_on_an_empty_database_migrate_once(redis_url):
        async with pg_database() as url:
            databases = [Database(url) for _ in range(3)]
            try:
                await asyncio.gather(*(migrate.upgrade(db) for db in databases))
                async with databases[0].engine.connect() as connection:
                    versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
                head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
                assert versions == [(head,)]
            finally:
                for db in databases:
                    await db.close()


# ---------------------------------------------------------------- the send budget shared by gates

async def test_two_gates_sharing_a_budget_keep_the_limit_together(redis_url):
    rate, total = 30, 60
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    gates = [OutgoingGate(rate, budget=RedisBudget(client, rate)) for client in clients]
    sent: list[float] = []

    async def make_request(bot, method):
        sent.append(time.monotonic())
        return True

    try:
        await asyncio.gather(*(gates[i % 2](make_request, None, SendMessage(chat_id=1000 + i, text="hi"))
                               for i in range(total)))
    finally:
        for client in clients:
            await client.aclose()
    assert len(sent) == total
    sent.sort()
    busiest = max(sum(1 for t in sent if start <= t < start + 1) for start in sent)
    assert busiest <= rate * 1.1  # each gate alone would have sent `rate` a second: together twice that
    assert sent[-1] - sent[0] >= (total - rate) / rate * 0.9


async def test_a_429_seen_by_one_gate_pauses_the_other(redis_url):
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    gates = [OutgoingGate(1000, budget=RedisBudget(client, 1000)) for client in clients]
    refused = asyncio.Event()

    async def flooded(bot, method):
        if not refused.is_set():
            refused.set()
            raise TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=1)
        return True

    async def fine(bot, method):
        return time.monotonic()

    try:
        first = asyncio.create_task(gates[0](flooded, None, SendMessage(chat_id=1, text="hi")))
        await refused.wait()
        await asyncio.sleep(0.05)  # the pause is in Redis now
        asked = time.monotonic()
        went = await gates[1](fine, None, SendMessage(chat_id=2, text="hi"))
        assert went - asked >= 0.8  # waited for the other gate's flood-control pause
        assert await first is True  # and the refused request went out after it
    finally:
        for client in clients:
            await client.aclose()


async def test_a_gate_whose_budget_is_unreachable_waits_rather_than_sends():
    client = Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    gate = OutgoingGate(1000, budget=RedisBudget(client, 1000))
    sent: list[SendMessage] = []

    async def make_request(bot, method):
        sent.append(method)
        return True

    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(gate(make_request, None, SendMessage(chat_id=1, text="hi")), 0.5)
    finally:
        await client.aclose()
    assert sent == []


# ---------------------------------------------------------------- the throttle shared by replicas

async def test_the_throttle_counts_a_users_messages_on_every_replica_together(redis_url, i18n_context):
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    throttles = [SharedThrottle(client, limit=3, window=5) for client in clients]

    async def handler(event, data):
        return "handled"

    def on(replica: int, user_id: int, update_id: int):
        user = User(id=user_id, is_bot=False, first_name="Ann")
        return throttles[replica](handler, Update(update_id=update_id), {"event_from_user": user})

    try:
        assert [await on(i % 2, USER, i) for i in range(5)] == ["handled"] * 3 + [None] * 2
        assert await on(1, USER + 1, 9) == "handled"  # another user has a count of their own
    finally:
        for client in clients:
            await client.aclose()
