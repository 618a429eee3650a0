"""Cache invalidations shared by the replicas over Redis pub/sub (with `REDIS_URL`).

A replica keeps a few answers in memory: the developer API's checked keys (services/api_keys.py: the key,
its owner's plan and ban, for a minute) and the users it has seen (services/users.py: language, ban,
blocked). In one process db/changes.py drops what a commit changed. With several replicas, every commit
that changes a watched table (keys, subscriptions, users) is also published on one Redis channel, after the
commit, as `{"from": <replica>, "changes": [[table, column, [values] or null], ...]}`; every replica
subscribes and drops the entries it is told about, within milliseconds. So a key revoked, a plan changed or
a user banned through one replica is refused or applied by every other one at once, while the caches still
save the database its lookups.

Pub/sub delivers only to those listening: a replica whose subscription dropped may have missed a message.
So `live` is True only while the subscription is confirmed and answering (a PING every second, an answer
within 3 s); while it is False the caches neither remember nor answer from memory, and going dark or coming
back drops everything they held. A publish that fails (Redis briefly unreachable) is retried until it goes
out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from db import changes
from db.engine import Database

log = logging.getLogger(__name__)

CHANNEL = "signals-bot:invalidate"
PING_SECONDS = 1.0
#: No message or PONG for this long: the subscription is taken for lost.
SILENCE_SECONDS = 3.0
RETRY_SECONDS = 0.5


class SharedInvalidations:
    def __init__(self, redis: Redis, database: Database, *, channel: str = CHANNEL,
                 ping_every: float = PING_SECONDS, silence: float = SILENCE_SECONDS,
                 retry: float = RETRY_SECONDS) -> None:
        self.redis, self.db, self.channel = redis, database, channel
        self.ping_every, self.silence, self.retry = ping_every, silence, retry
        self.origin = uuid.uuid4().hex
        self.live = False
        self.published = self.received = 0
        self._outbox: list[changes.Changes] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._unforward = None
        self._subscribed = asyncio.Event()

    def is_live(self) -> bool:
        """May the caches remember (and answer from memory) now?"""
        return self.live

    async def start(self, *, wait: float = 2.0) -> None:
        """Publish this replica's changes and listen to the others'; waits up to `wait` s for the subscription
        (without it the caches simply do not remember yet)."""
        self._unforward = changes.forward(self.db, self._queue)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen(), name="invalidations.listen"),
                       loop.create_task(self._publish(), name="invalidations.publish")]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), wait)

    async def close(self) -> None:
        if self._unforward is not None:
            self._unforward()
            self._unforward = None
        if self._outbox:  # the last changes of this replica, if Redis takes them now
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self._send(self._outbox), 1.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._dark()

    # -- publishing -----------------------------------------------------------------------------------

    def _queue(self, changed: changes.Changes) -> None:
        """Called at each commit (synchronously): sent by the publishing task."""
        self._outbox.append(changed)
        self._wake.set()

    async def _publish(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                batch, self._outbox = self._outbox, []
                try:
                    await self._send(batch)
                except (RedisError, OSError) as exc:
                    log.warning("publishing cache invalidations failed (%r); retrying", exc)
                    self._outbox[:0] = batch
                    await asyncio.sleep(self.retry)

    async def _send(self, batch: list[changes.Changes]) -> None:
        merged: dict[tuple[str, str], set[Any] | None] = {}
        for changed in batch:
            for key, values in changed.items():
                before = merged.get(key, set())
                merged[key] = None if values is None or before is None else before | values
        await self.redis.publish(self.channel, encode(self.origin, merged))
        self.published += 1

    # -- listening ------------------------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                heard = pinged = time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=min(self.ping_every, 0.5))
                    now = time.monotonic()
                    if message is not None:
                        heard = now
                        if message["type"] == "subscribe":
                            self._lit()
                        elif message["type"] == "message":
                            self._apply(message["data"])
                    if now - pinged >= self.ping_every:
                        pinged = now
                        await pubsub.ping()
                    if now - heard > self.silence:
                        raise ConnectionError(f"no answer from Redis for {self.silence:g} s")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.live:
                    log.warning("cache invalidations: subscription lost (%r); caches off until it is back", exc)
                self._dark()
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)
            await asyncio.sleep(self.retry)

    def _lit(self) -> None:
        self._forget_all()  # messages may have been missed before: start afresh
        self.live = True
        self._subscribed.set()
        log.info("cache invalidations: subscribed to %s", self.channel)

    def _dark(self) -> None:
        was = self.live
        self.live = False
        if was:
            self._forget_all()

    def _forget_all(self) -> None:
        for table, column in changes.watched():
            changes.apply(self.db, table, column, None)

    def _apply(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            if message.get("from") == self.origin:
                return  # this replica's own commit: its watchers ran at the commit
            items = [(str(t), str(c), None if v is None else set(v)) for t, c, v in message["changes"]]
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("cache invalidations: unreadable message dropped everything (%r)", exc)
            self._forget_all()
            return
        self.received += 1
        for table, column, values in items:
            changes.apply(self.db, table, column, values)


def encode(origin: str, merged: dict[tuple[str, str], set[Any] | None]) -> str:
    """The message; values that JSON cannot carry as they are become "any"."""
    items = []
    for (table, column), values in merged.items():
        listed = None if values is None else list(values)
        if listed is not None and not all(isinstance(v, (int, str)) for v in listed):
            listed = None
        items.append([table, column, listed])
    return json.dumps({"from": origin, "changes": items}, separators=(",", ":"))
