"""Leadership for scheduled jobs: of several replicas, exactly one runs the scheduler at a time.

* **PostgreSQL** (`PostgresLeadership`): a session-level ``pg_try_advisory_lock`` held on a dedicated
  connection (raw asyncpg, outside the pool). The lock lives exactly as long as that session, so when the
  leader dies (kill -9) the server ends the session and frees the lock at once, and a follower takes it
  on its next heartbeat (every ``heartbeat`` s); TCP keepalives end the session of a leader whose host
  vanished without a word. The leader re-checks the lock on every heartbeat and steps down at once when
  the connection drops (asyncpg's termination listener) or a check fails or times out, so it lets go
  before the server can give the lock to anyone else. Fencing token: ``txid_current()`` taken right after
  the lock, which only grows across the whole server (a later leader always has a larger one).
* **Redis** (`RedisLeadership`): a lease (``SET key token NX PX ttl``, in a script), renewed every ``ttl/3``
  by a Lua compare-and-extend (only the holder's own token is extended), released by a compare-and-delete.
  Acquiring also ``INCR``s a fence counter in the same script: the fencing token. A holder that cannot
  renew steps down before its lease could have expired (``ttl/5`` to spare), so two leaders never overlap
  by the holder's own clock. A dead leader's lease ends after at most ``ttl`` and a follower, trying every
  ``ttl/3``, takes over within ``ttl * 4/3`` (default 10 s: ≤ 14 s).
* **SQLite** (`SingleProcessLeadership`): one process per database (services/sqlite_lock.py), so it is
  always the leader.

Why the advisory lock on PostgreSQL even when ``REDIS_URL`` is set: the jobs write to that database, the
lock needs no clock or TTL (takeover in one heartbeat instead of a lease's lifetime) and it cannot outlive
its holder. The Redis lease is for a replica set whose database is not PostgreSQL.
``build_leadership`` picks accordingly.

``on_change(is_leader)`` is called (synchronously, on the event loop) on every change, e.g. to resume or
pause the scheduler; it must not block.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

OnChange = Callable[[bool], None]

#: Seconds between two heartbeats of a PostgreSQL leader or follower.
PG_HEARTBEAT_SECONDS = 5.0
#: Seconds a PostgreSQL check may take before the leader steps down (and drops its session).
PG_QUERY_TIMEOUT_SECONDS = 3.0
#: Server-side keepalives: the session of a leader whose host vanished ends after ~10 + 3 * 5 s.
PG_KEEPALIVES = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}
#: Lifetime of a Redis lease in milliseconds (renewed every third of it).
REDIS_LEASE_MS = 10_000

_HELD_SQL = ("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
             " AND pid = pg_backend_pid() AND classid = $1::bigint::oid AND objid = $2::bigint::oid"
             " AND objsubid = 1)")

# KEYS[1] lease, KEYS[2] fence counter; ARGV[1] owner, ARGV[2] ttl ms. Returns the fencing token, or nil
# while someone else holds the lease. A lease already ours (the reply to our last try was lost) is kept.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]))
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return redis.call('INCR', KEYS[2])
end
return false
"""
# Extends the lease only while it is still ours. Returns 1 (extended) or 0 (lost).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(f"leader:{name}".encode()).digest()[:8], "big", signed=True)


class Leadership(ABC):
    """Whether this process leads now. ``start()`` makes the first attempt before returning, then keeps
    trying (or keeps holding) on a heartbeat until ``stop()``, which lets go."""

    def __init__(self, *, on_change: OnChange | None = None) -> None:
        self.on_change = on_change
        self._leader = False
        self._token: int | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def fencing_token(self) -> int | None:
        """Grows with every new leader (None while not leading): stamp leader-only writes with it."""
        return self._token

    async def start(self) -> None:
        self._stopping = False
        await self._tick()
        self._task = asyncio.create_task(self._loop(), name=f"{type(self).__name__}-heartbeat")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._release()
        self._set(False, None)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._pause())
            try:
                await self._tick()
            except Exception:  # a heartbeat never dies; the next one tries again
                log.exception("leadership heartbeat failed")
                self._set(False, None)

    def _set(self, leader: bool, token: int | None) -> None:
        if leader == self._leader:
            return
        self._leader, self._token = leader, token if leader else None
        log.info("%s leadership (%s)%s", "took" if leader else "lost", type(self).__name__,
                 f", fencing token {token}" if leader else "")
        if self.on_change is not None:
            try:
                self.on_change(leader)
            except Exception:
                log.exception("leadership on_change callback failed")

    @abstractmethod
    def _pause(self) -> float:
        """Seconds until the next heartbeat."""

    @abstractmethod
    async def _tick(self) -> None:
        """One heartbeat: take leadership if free, or confirm it is still held (or step down)."""

    @abstractmethod
    async def _release(self) -> None:
        """Let go of whatever is held (called once the heartbeat has stopped)."""


class SingleProcessLeadership(Leadership):
    """SQLite: one process per database, always the leader."""

    def _pause(self) -> float:
        return math.inf

    async def _tick(self) -> None:
        self._set(True, 1)

    async def _release(self) -> None:
        return None


class PostgresLeadership(Leadership):
    """A session-level advisory lock on a dedicated asyncpg connection (see the module docstring)."""

    def __init__(self, database_url: str, *, name: str = "scheduler", heartbeat: float = PG_HEARTBEAT_SECONDS,
                 query_timeout: float = PG_QUERY_TIMEOUT_SECONDS, on_change: OnChange | None = None) -> None:
        super().__init__(on_change=on_change)
        url = make_url(database_url)
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._key = advisory_key(name)
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        self._classid, self._objid = unsigned >> 32, unsigned & 0xFFFF_FFFF
        self._heartbeat = heartbeat
        self._timeout = query_timeout
        self._conn: asyncpg.Connection | None = None

    def _pause(self) -> float:
        return self._heartbeat

    async def _tick(self) -> None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn, timeout=self._timeout, server_settings=PG_KEEPALIVES)
                self._conn.add_termination_listener(self._terminated)
            conn = self._conn
            if self._leader:
                if not await conn.fetchval(_HELD_SQL, self._classid, self._objid, timeout=self._timeout):
                    log.warning("the leader's advisory lock is gone")
                    await self._drop()
            elif await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key, timeout=self._timeout):
                token = await conn.fetchval("SELECT txid_current()", timeout=self._timeout)
                self._set(True, token)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("leadership: database unreachable (%s); not leading", type(exc).__name__)
            await self._drop()

    def _terminated(self, conn: asyncpg.Connection) -> None:
        """The lock's session is gone (server restart, network, pg_terminate_backend): so is the lock."""
        if conn is self._conn and not self._stopping:
            self._set(False, None)

    async def _drop(self) -> None:
        """Step down and end the session, so the server frees the lock if it still holds it."""
        self._set(False, None)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:  # closing the session frees the lock; unlock first so a follower need not wait for the close
            if self._leader:
                await conn.fetchval("SELECT pg_advisory_unlock($1)", self._key, timeout=self._timeout)
            await conn.close(timeout=self._timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()


class RedisLeadership(Leadership):
    """A Redis lease with a fencing token (see the module docstring)."""

    def __init__(self, redis: Redis, *, name: str = "scheduler", ttl_ms: int = REDIS_LEASE_MS,
                 on_change: OnChange | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(on_change=on_change)
        self._redis = redis
        self._keys = [f"leader:{{{name}}}", f"leader:{{{name}}}:fence"]
        self._ttl_ms = ttl_ms
        self._clock = clock
        self._owner = secrets.token_hex(16)
        self._valid_until = -math.inf  # our clock: the lease cannot have ended before this
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._delete = redis.register_script(_RELEASE)

    def _pause(self) -> float:
        every = self._ttl_ms / 3000
        if self._leader:  # wake in time to step down if renewals keep failing
            return max(0.0, min(every, self._deadline() - self._clock()))
        return every

    def _deadline(self) -> float:
        return self._valid_until - self._ttl_ms / 5000

    async def _tick(self) -> None:
        sent = self._clock()
        try:
            if self._leader:
                if await self._renew(keys=self._keys[:1], args=[self._owner, self._ttl_ms]):
                    self._valid_until = sent + self._ttl_ms / 1000
                else:
                    log.warning("the leader's Redis lease was taken or expired")
                    self._set(False, None)
                return
            token = await self._acquire(keys=self._keys, args=[self._owner, self._ttl_ms])
            if token is not None:
                self._valid_until = sent + self._ttl_ms / 1000
                self._set(True, int(token))
        except (RedisError, OSError) as exc:
            if self._leader and self._clock() >= self._deadline():
                log.warning("leadership: Redis unreachable (%s) until the lease's end; stepping down",
                            type(exc).__name__)
                self._set(False, None)

    async def _release(self) -> None:
        if self._leader:
            with contextlib.suppress(RedisError, OSError):
                await self._delete(keys=self._keys[:1], args=[self._owner])


def build_leadership(database_url: str, redis: Redis | None = None, *,
                     on_change: OnChange | None = None) -> Leadership:
    """The leadership for this deployment: SQLite → always; PostgreSQL → advisory lock; else a Redis lease."""
    backend = make_url(database_url).get_backend_name()
    if backend == "sqlite":
        return SingleProcessLeadership(on_change=on_change)
    if backend == "postgresql":
        return PostgresLeadership(database_url, on_change=on_change)
    if redis is None:
        raise ValueError(f"several replicas on {backend} need REDIS_URL for a leader")
    return RedisLeadership(redis, on_change=on_change)


__all__ = ["Leadership", "PostgresLeadership", "RedisLeadership", "SingleProcessLeadership", "advisory_key",
           "build_leadership"]
