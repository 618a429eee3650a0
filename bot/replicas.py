"""What several replicas share, on the dispatcher's side (issue #18): an update delivered twice is handled
once, the throttle counts in Redis, and conversations live in Redis."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from aiogram.types import TelegramObject, Update, User
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.middlewares import ThrottleMiddleware
from services import redis as redis_conn
from services.update_dedup import UpdateDedup

log = logging.getLogger(__name__)

CONVERSATION_TTL = timedelta(days=1)  # with REDIS_URL: an abandoned conversation's state is forgotten after this


class DropRepeatedUpdates(BaseMiddleware):
    """Webhook mode: an update Telegram delivers again (it retries one a replica did not answer) is handled
    once, by whichever replica saw it first (`UpdateDedup`: Redis with REDIS_URL, else the database)."""

    def __init__(self, dedup: UpdateDedup) -> None:
        self.dedup = dedup

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if not await self.dedup.first_time(event.update_id):
            log.info("update %s was delivered again; handled already", event.update_id)
            return None
        return await handler(event, data)


# KEYS[1] the user's log of messages and taps; ARGV: limit, window in µs, a unique member. Redis's clock;
# returns 1: allowed (and counted), 0: over the limit.
_THROTTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return 1
"""


class SharedThrottle(ThrottleMiddleware):
    """With REDIS_URL: the throttle counts a user's messages and taps in Redis, so updates spread over
    replicas count together (the notice is still given once per replica). Redis unreachable: let through."""

    def __init__(self, redis: Redis, limit: int = 8, window: float = 5.0) -> None:
        super().__init__(limit, window)
        self._hit = redis.register_script(_THROTTLE)

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:  # as ThrottleMiddleware: a message or tap from no one goes no further
            return None
        if not await self._allow_shared(user.id):
            if user.id not in self._warned:
                self._warned.add(user.id)
                await self._notify(event)
            return None
        self._warned.discard(user.id)
        return await handler(event, data)

    async def _allow_shared(self, user_id: int) -> bool:
        try:
            return bool(await self._hit(keys=[f"throttle:{{{user_id}}}"],
                                        args=[self.limit, round(self.window * 1e6), secrets.token_hex(8)]))
        except RedisError as exc:
            log.warning("throttle unreachable in Redis (%s); update let through", type(exc).__name__)
            return True


def conversation_storage(redis_url: str) -> RedisStorage:
    """With REDIS_URL: conversations (FSM state and data) live in Redis, so a flow's steps may land on
    different replicas, and (its `create_isolation()`) one user's updates are handled one at a time across
    replicas (aiogram's `RedisStorage` and `RedisEventIsolation`, on a client of their own that the dispatcher
    closes)."""
    return RedisStorage(redis_conn.connect(redis_url), key_builder=DefaultKeyBuilder(with_bot_id=True),
                        state_ttl=CONVERSATION_TTL, data_ttl=CONVERSATION_TTL)
