"""Scale-out parts on real PostgreSQL and real Redis (issue #18): the scheduler's leader (a new one within 30 s
of kill -9), update dedup (a racing second delivery is not first), one process per SQLite database, and the
gate's budget shared by replicas (≤ the limit in every 1-second window; a 429 seen by one pauses all)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from db.engine import Database
from services.leader import PostgresLeadership, RedisLeadership, advisory_key, build_leadership
from services.sqlite_lock import SqliteInUse, hold
from services.update_dedup import UpdateDedup
from tests.conftest import PG_URL
from tests.support import redis_server as _redis
from tests.support.pg import asyncpg_dsn, fresh_database
from transport.redis_budget import RedisBudget

redis_server, redis_url = _redis.redis_server, _redis.redis_url

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 50
TOTAL = 500


async def python(code: str, *args: str) -> asyncio.subprocess.Process:
    """A separate Python process running ``code`` in the repository (stdout and stderr piped)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(sys.executable, "-c", code, *args, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def read_line(process: asyncio.subprocess.Process, within: float = 20) -> str:
    line = await asyncio.wait_for(process.stdout.readline(), within)
    if not line:
        raise AssertionError(f"the process ended: {(await process.stderr.read()).decode()}")
    return line.decode().strip()


async def kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


def busiest_second(times: list[float]) -> int:
    """The most events in any half-open 1-second window [a, a + 1)."""
    times, most, first = sorted(times), 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1:
            first += 1
        most = max(most, last - first + 1)
    return most


# ---------------------------------------------------------------- leadership

def pg_database():
    return fresh_database(PG_URL, "lead")


LEASES = ["redis"] + (["postgresql"] if PG_URL else [])

HOLDER = """
import asyncio, sys
from redis.asyncio import Redis
from services.leader import PostgresLeadership, RedisLeadership

async def main(kind, url):
    lead = PostgresLeadership(url) if kind == "postgresql" else RedisLeadership(Redis.from_url(url))
    await lead.start()
    print("LEADER" if lead.is_leader else "FOLLOWER", lead.fencing_token, flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.fixture(params=LEASES)
async def lease(request, redis_url) -> AsyncIterator[tuple[str, str]]:
    """(kind, url) of a store the leader holds its lease in: Redis, and PostgreSQL whenever
    TEST_DATABASE_URL is set (as for every database test; `.ci/run` sets it)."""
    if request.param == "redis":
        yield "redis", redis_url
        return
    async with pg_database() as url:
        yield "postgresql", url


class Changes(list[bool]):
    """An ``on_change`` callback recording what it was told, with an event for each direction."""

    def __init__(self) -> None:
        super().__init__()
        self.leading, self.lost = asyncio.Event(), asyncio.Event()

    def __call__(self, leader: bool) -> None:
        self.append(leader)
        (self.leading if leader else self.lost).set()


def follower(kind: str, url: str, changes: Changes, **options) -> PostgresLeadership | RedisLeadership:
    if kind == "postgresql":
        return PostgresLeadership(url, on_change=changes, **options)
    return RedisLeadership(Redis.from_url(url), on_change=changes, **options)


async def test_a_new_leader_within_30_s_of_the_old_one_being_killed(lease):
    kind, url = lease
    holder = await python(HOLDER, kind, url)
    changes = Changes()
    other = follower(kind, url, changes)  # production heartbeat and lease: what an operator gets
    try:
        state, old_token = (await read_line(holder)).split()
        assert state == "LEADER"
        await other.start()
        assert (other.is_leader, other.fencing_token) == (False, None)

        holder.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await holder.wait()
        await asyncio.wait_for(changes.leading.wait(), 35)
        takeover = time.monotonic() - killed
        print(f"{kind}: new leader {takeover:.1f} s after kill -9")
        assert other.is_leader and takeover < 30
        assert other.fencing_token > int(old_token)
        assert changes == [True]
    finally:
        await kill(holder)
        await other.stop()
    assert changes == [True, False] and not other.is_leader


# PostgreSQL only, like the PostgreSQL variants of the database tests: present whenever TEST_DATABASE_URL is.
if PG_URL:
    async def test_a_postgres_leader_whose_connection_drops_steps_down_at_once():
        a_changes, b_changes = Changes(), Changes()
        async with pg_database() as url:
            a = PostgresLeadership(url, on_change=a_changes)  # heartbeat 5 s: the drop is noticed sooner
            b = PostgresLeadership(url, heartbeat=0.2, on_change=b_changes)
            admin = await asyncpg.connect(asyncpg_dsn(url))
            try:
                await a.start()
                await b.start()
                assert (a.is_leader, b.is_leader) == (True, False)
                unsigned = advisory_key("scheduler") & 0xFFFF_FFFF_FFFF_FFFF
                pid = await admin.fetchval("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                                           " AND objid = $1::bigint::oid", unsigned & 0xFFFF_FFFF)
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                dropped = time.monotonic()
                await asyncio.wait_for(a_changes.lost.wait(), 3)
                assert not a.is_leader and time.monotonic() - dropped < 1  # not at the next heartbeat
                await asyncio.wait_for(b_changes.leading.wait(), 3)  # b's next heartbeat
                for _ in range(20):  # a reconnects and keeps trying: never two leaders at once
                    assert not (a.is_leader and b.is_leader)
                    await asyncio.sleep(0.05)
                assert (a_changes, b_changes) == ([True, False], [True])
            finally:
                await admin.close()
                await a.stop()
                await b.stop()


async def test_a_redis_lease_stays_with_its_holder_until_it_is_taken_or_let_go(redis_url):
    client = Redis.from_url(redis_url)
    a_changes: list[bool] = []
    a = RedisLeadership(Redis.from_url(redis_url), ttl_ms=300, on_change=a_changes.append)
    b = RedisLeadership(Redis.from_url(redis_url), ttl_ms=300)
    try:
        await a.start()
        await b.start()
        for _ in range(12):  # four lease lifetimes: renewed, never lapsed
            await asyncio.sleep(0.1)
            assert (a.is_leader, b.is_leader) == (True, False)
        first = a.fencing_token
        await a.stop()  # lets go at once: b takes over on its next try (ttl/3)
        await asyncio.sleep(0.25)
        assert b.is_leader and b.fencing_token == first + 1
        await client.set("leader:{scheduler}", "someone else")  # the lease was lost (e.g. Redis failover)
        await asyncio.sleep(0.25)
        assert not b.is_leader
        assert a_changes == [True, False]
    finally:
        await a.stop()
        await b.stop()
        await client.aclose()


async def test_a_sqlite_process_is_always_the_leader(tmp_path):
    changes: list[bool] = []
    lead = build_leadership(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", on_change=changes.append)
    await lead.start()
    assert lead.is_leader and lead.fencing_token == 1 and changes == [True]
    await lead.stop()
    assert not lead.is_leader and changes == [True, False]
    # several replicas: on PostgreSQL its advisory lock, even with Redis at hand
    redis_client = Redis.from_url("redis://127.0.0.1:1/0")  # never connected
    assert isinstance(build_leadership("postgresql+asyncpg://bot@db/bot", redis_client), PostgresLeadership)
    await redis_client.aclose()


# ---------------------------------------------------------------- update dedup

async def test_an_update_delivered_twice_is_handled_once_in_the_database(database, database_url):
    other_replica = Database(database_url)
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    clock = [now]
    one = UpdateDedup(database, now=lambda: clock[0])
    two = UpdateDedup(other_replica, now=lambda: clock[0])
    try:
        for update_id in range(100, 120):
            firsts = await asyncio.gather(one.first_time(update_id), two.first_time(update_id))
            assert sorted(firsts) == [False, True]
        assert not await one.first_time(100) and not await two.first_time(119)

        clock[0] = now + timedelta(hours=23)
        assert await one.first_time(500)
        clock[0] = now + timedelta(hours=25)
        assert await two.prune() == 20  # the first twenty are a day old; 500 is not
        assert await one.first_time(100)
        assert not await one.first_time(500)
    finally:
        await other_replica.close()


async def test_an_update_delivered_twice_is_handled_once_in_redis(redis_url, tmp_path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")  # not used while Redis is
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    one, two = (UpdateDedup(database, c) for c in clients)
    try:
        for update_id in range(100, 120):
            firsts = await asyncio.gather(one.first_time(update_id), two.first_time(update_id))
            assert sorted(firsts) == [False, True]
        assert not await two.first_time(100)
        assert 86_000 < await clients[0].ttl("tg:update:100") <= 86_400  # forgotten after a day
        assert await one.prune() == 0
    finally:
        for c in clients:
            await c.aclose()
        await database.close()


# ---------------------------------------------------------------- one process per SQLite database

HOLD_SQLITE = """
import sys, time
from services.sqlite_lock import SqliteInUse, hold
try:
    lock = hold(sys.argv[1])
except SqliteInUse as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
print("HELD", flush=True)
time.sleep(120)
"""


async def test_a_second_process_on_the_same_sqlite_database_is_refused(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
    first = await python(HOLD_SQLITE, url)
    try:
        assert await read_line(first) == "HELD"
        second = await python(HOLD_SQLITE, url)
        out, err = await asyncio.wait_for(second.communicate(), 20)
        lines = err.decode().strip().splitlines()
        assert second.returncode == 2 and out == b"" and len(lines) == 1, err
        assert str(tmp_path / "data" / "bot.db") in lines[0]
        assert "PostgreSQL" in lines[0] and "REDIS_URL" in lines[0] and "stop it first" in lines[0]
        with pytest.raises(SqliteInUse):  # this process too
            hold(url)
        other = hold(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'other.db'}")  # another database is free
        assert other is not None
        other.release()

        first.send_signal(signal.SIGKILL)  # the lock dies with its process: no stale lock file
        await first.wait()
        after = await python(HOLD_SQLITE, url)
        try:
            assert await read_line(after) == "HELD"
        finally:
            await kill(after)
    finally:
        await kill(first)
    assert hold(PG_URL or "postgresql+asyncpg://bot@db/bot") is None


# ---------------------------------------------------------------- the shared send budget

async def grant_loop(budget: RedisBudget, granted: list[tuple[float, float]], total: int,
                     chat_id: int | None = None) -> None:
    """Acquire until ``total`` grants were recorded (server time, local time), sleeping as told."""
    while len(granted) < total:
        grant = await budget.reserve(chat_id)
        if grant.wait:
            await asyncio.sleep(grant.wait)
        elif len(granted) < total:
            granted.append((grant.server_time, time.time()))


async def test_three_replicas_together_keep_the_limit_in_every_second(redis_url):
    clients = [Redis.from_url(redis_url) for _ in range(3)]  # three replicas' own connections
    budgets = [RedisBudget(c, LIMIT) for c in clients]
    granted: list[tuple[float, float]] = []
    try:
        await asyncio.gather(*(grant_loop(b, granted, TOTAL) for b in budgets for _ in range(4)))
    finally:
        for c in clients:
            await c.aclose()
    assert_paced([s for s, _ in granted], [t for _, t in granted])


def assert_paced(server: list[float], local: list[float]) -> None:
    assert len(server) >= TOTAL
    assert busiest_second(server) <= LIMIT  # by the server's clock: exactly
    assert busiest_second(local) <= LIMIT * 1.1  # as the replicas saw it: only jitter on top
    span = max(server) - min(server)
    print(f"{len(server)} grants in {span:.2f} s: {len(server) / span:.1f}/s")
    assert (len(server) - 1) / span >= 0.9 * LIMIT  # the budget is used, not wasted in waiting


REPLICA = """
import asyncio, json, sys, time
from redis.asyncio import Redis
from transport.redis_budget import RedisBudget

async def main(url, count):
    budget = RedisBudget(Redis.from_url(url), float(sys.argv[3]))
    print("READY", flush=True)
    sys.stdin.readline()
    granted = []
    async def loop():
        while len(granted) < count:
            grant = await budget.reserve(None)
            if grant.wait:
                await asyncio.sleep(grant.wait)
            elif len(granted) < count:
                granted.append((grant.server_time, time.time()))
    await asyncio.gather(*(loop() for _ in range(4)))
    print(json.dumps(granted), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_three_replica_processes_together_keep_the_limit_in_every_second(redis_url):
    shares = [TOTAL // 3 + (1 if i < TOTAL % 3 else 0) for i in range(3)]
    replicas = []
    for share in shares:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        replicas.append(await asyncio.create_subprocess_exec(
            sys.executable, "-c", REPLICA, redis_url, str(share), str(LIMIT), cwd=ROOT, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE))
    try:
        for r in replicas:
            assert await read_line(r) == "READY"
        for r in replicas:  # all start together
            r.stdin.write(b"go\n")
            await r.stdin.drain()
        granted = [tuple(g) for r in replicas for g in json.loads(await read_line(r, within=60))]
    finally:
        for r in replicas:
            await kill(r)
    assert_paced([s for s, _ in granted], [t for _, t in granted])


async def test_a_pause_seen_by_one_replica_stops_all_of_them(redis_url):
    clients = [Redis.from_url(redis_url) for _ in range(3)]
    budgets = [RedisBudget(c, LIMIT) for c in clients]
    granted: list[tuple[float, float]] = []
    try:
        senders = [asyncio.create_task(grant_loop(b, granted, 10**6)) for b in budgets for _ in range(2)]
        await asyncio.sleep(0.3)
        ends = await budgets[0].pause(0.5)  # replica 0 got a 429 with retry_after 0.5
        began = ends - 0.5
        assert await budgets[0].pause(0.1) == ends  # a shorter one later does not shorten it
        wait = await budgets[2].acquire()
        assert 0.4 < wait <= 0.5  # replica 2 is told to wait out the pause
        await asyncio.sleep(0.9)
        for s in senders:
            s.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
    finally:
        for c in clients:
            await c.aclose()
    times = sorted(s for s, _ in granted)
    assert any(t < began for t in times)
    assert not [t for t in times if began <= t < ends]  # nobody sent during the pause
    assert len([t for t in times if ends <= t < ends + 0.3]) >= 10  # and all resume right after


async def granted_after(budget: RedisBudget, chat_id: int | str) -> float:
    """Seconds until ``chat_id`` may be sent to: acquire, sleeping as told (fractions of a second here)."""
    started = time.monotonic()
    while wait := await budget.acquire(chat_id):
        assert wait < 0.5, wait
        await asyncio.sleep(wait)
    return time.monotonic() - started


async def test_one_message_per_second_per_private_chat_and_twenty_per_minute_per_group(redis_url):
    clients = [Redis.from_url(redis_url) for _ in range(2)]
    one, two = (RedisBudget(c, 1000) for c in clients)
    try:
        assert await one.acquire(7) == 0
        assert 0.9 < await two.acquire(7) <= 1.0  # the same user through another replica
        assert await granted_after(two, 8) < 0.1  # another user is not held up
        assert await granted_after(two, None) < 0.1  # nor a request without per-chat spacing
        for i in range(20):  # a group takes 20 in a row, through either replica
            assert await granted_after(one if i % 2 else two, -100123) < 0.1
        assert 59 < await one.acquire(-100123) <= 60  # the 21st message to that group in a minute
        assert await granted_after(one, "@channel") < 0.1
    finally:
        for c in clients:
            await c.aclose()
