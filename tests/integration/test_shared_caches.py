"""Caches that hold across replicas (issue 18): with REDIS_URL each replica still answers API keys and users
from memory, and a key revoked, a plan changed or a user banned through one replica is refused or applied by
the other within a second, while its cache is warm. Two replicas here are two sets of services, each with its
own database connections, sharing one database (SQLite and PostgreSQL) and one real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from sqlalchemy import event

from bot.wiring import build_services
from db.engine import Database
from services.api_keys import ApiKeyService
from services.invalidations import SharedInvalidations
from services.subscriptions import SubscriptionService
from services.users import UserService
from tests.conftest import make_settings
from tests.support import redis_server as _redis

redis_server, redis_url = _redis.redis_server, _redis.redis_url
USER = 41


class Replica:
    """The parts of one replica that keep caches: its own connections, its own subscription."""

    def __init__(self, database_url: str, redis_url: str, channel: str, name: str, **bus) -> None:
        self.db = Database(database_url)
        self.redis = Redis.from_url(redis_url, client_name=name)
        self.bus = SharedInvalidations(self.redis, self.db, channel=channel, **bus)
        self.users = UserService(self.db, shared=self.bus.is_live)
        self.keys = ApiKeyService(self.db, shared=self.bus.is_live)
        self.subscriptions = SubscriptionService(self.db)
        self.queries = 0
        event.listen(self.db.engine.sync_engine, "before_cursor_execute", self._counted)

    def _counted(self, *_args) -> None:
        self.queries += 1

    async def close(self) -> None:
        await self.bus.close()
        await self.redis.aclose()
        await self.db.close()


@pytest.fixture
async def replicas(database, database_url, redis_url) -> AsyncIterator[tuple[Replica, Replica]]:
    channel = f"test-invalidate-{uuid.uuid4().hex}"
    a = Replica(database_url, redis_url, channel, "replica-a")
    b = Replica(database_url, redis_url, channel, "replica-b", retry=2.0)
    await asyncio.gather(a.bus.start(), b.bus.start())
    assert a.bus.live and b.bus.live
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def within(seconds: float, check: Callable[[], Awaitable[bool]]) -> float:
    """How long until `check()` holds (fails after `seconds`)."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def key_for(a: Replica) -> tuple[int, str]:
    await a.users.seen(USER, username="dev", first_name="Dev", language_code="en")
    key, raw = await a.keys.create(USER, "main")
    return key.id, raw


async def warm(b: Replica, raw: str) -> None:
    """B has checked the key and answers it from memory now (no query)."""
    assert await b.keys.authenticate(raw) is not None
    before = b.queries
    assert await b.keys.authenticate(raw) is not None
    assert b.queries == before


async def test_a_key_revoked_through_one_replica_is_refused_by_the_other_within_a_second(replicas):
    a, b = replicas
    key_id, raw = await key_for(a)
    await warm(b, raw)

    assert await a.keys.revoke(USER, key_id)

    async def refused() -> bool:
        return await b.keys.authenticate(raw) is None

    assert await within(1.0, refused) < 1.0
    assert b.bus.received >= 1


async def test_a_plan_change_and_a_ban_through_one_replica_apply_on_the_other_within_a_second(replicas):
    a, b = replicas
    _key_id, raw = await key_for(a)
    await warm(b, raw)
    assert (await b.keys.authenticate(raw)).current.plan.code == "free"
    seen = await b.users.seen(USER, username="dev", first_name="Dev", language_code="en")
    assert not seen.is_banned

    await a.subscriptions.add_time(USER, "pro", 30, source="test")

    async def on_pro() -> bool:
        return (await b.keys.authenticate(raw)).current.plan.code == "pro"

    await within(1.0, on_pro)
    await warm(b, raw)  # remembered again, with the new plan

    assert await a.users.set_banned(USER, True) is False

    async def banned_for_the_api() -> bool:
        return (await b.keys.authenticate(raw)).banned

    async def banned_in_the_bot() -> bool:
        return (await b.users.seen(USER, username="dev", first_name="Dev", language_code="en")).is_banned

    await within(1.0, banned_for_the_api)
    await within(1.0, banned_in_the_bot)
    await a.users.set_language(USER, "ru")  # a bulk UPDATE naming the user: only that user is dropped

    async def in_russian() -> bool:
        return (await b.users.seen(USER, username="dev", first_name="Dev", language_code="en")).language == "ru"

    await within(1.0, in_russian)


async def test_while_its_subscription_is_down_a_replica_answers_nothing_from_memory(replicas, redis_url):
    a, b = replicas
    key_id, raw = await key_for(a)
    await warm(b, raw)

    admin = Redis.from_url(redis_url)
    try:
        clients = await admin.client_list(_type="pubsub")
        [b_subscription] = [c["id"] for c in clients if c.get("name") == "replica-b"]
        await admin.client_kill_filter(_id=b_subscription)
    finally:
        await admin.aclose()

    async def dark() -> bool:
        return not b.bus.live

    await within(1.0, dark)
    before = b.queries
    assert await b.keys.authenticate(raw) is not None
    assert b.queries > before  # asked the database, not its memory
    assert await a.keys.revoke(USER, key_id)  # published while B cannot hear it
    assert await b.keys.authenticate(raw) is None  # refused at once all the same
    assert not b.bus.live

    async def back() -> bool:
        return b.bus.live

    await within(4.0, back)
    assert await b.keys.authenticate(raw) is None


async def test_with_redis_the_app_remembers_keys_and_hears_the_other_replicas(redis_url, database_url):
    services = build_services(make_settings(database_url=database_url, redis_url=redis_url))
    try:
        assert services.invalidations is not None and services.api_keys.remember_seconds == 60
        assert services.api_keys.shared == services.invalidations.is_live
        assert services.users.shared == services.invalidations.is_live
    finally:
        await services.redis.aclose()
        await services.db.close()
    alone = build_services(make_settings(database_url=database_url))
    try:
        assert alone.invalidations is None and alone.api_keys.shared is None
    finally:
        await alone.db.close()
