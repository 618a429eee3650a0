"""Which path each ingest signature was first presented for (CONTRACT "Ingest authentication").

A signature may be presented again for the same path (an ordinary retry) but not for another one while
its timestamp is inside the window. One process remembers in a dict; with ``REDIS_URL`` set every
replica shares one memory in Redis (``SET key path NX`` with an expiry at the end of the window).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Protocol

from services.redis import Redis

KEY_PREFIX = "ingest:sig:"


class SignatureMemory(Protocol):
    async def bind(self, signature: str, path: str, expires_at: float) -> bool:
        """Remember ``signature`` -> ``path`` until ``expires_at`` (unix seconds); False when it is already
        bound to another path. Raises when the memory is unreachable (the request is then refused)."""
        ...

    async def close(self) -> None: ...


class LocalMemory:
    """In-process memory for one replica; expired entries are dropped as new ones arrive."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._paths: dict[str, tuple[str, float]] = {}
        self._expiry: list[tuple[float, str]] = []
        self._clock = clock

    async def bind(self, signature: str, path: str, expires_at: float) -> bool:
        now = self._clock()
        while self._expiry and self._expiry[0][0] <= now:
            _, old = heapq.heappop(self._expiry)
            if old in self._paths and self._paths[old][1] <= now:
                del self._paths[old]
        bound = self._paths.get(signature)
        if bound is not None and bound[1] > now:
            return bound[0] == path
        self._paths[signature] = (path, expires_at)
        heapq.heappush(self._expiry, (expires_at, signature))
        return True

    async def close(self) -> None:
        return None


class RedisMemory:
    """Shared memory in Redis: the first replica to see a signature binds it with SET NX."""

    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis, self._clock = redis, clock

    async def bind(self, signature: str, path: str, expires_at: float) -> bool:
        key = KEY_PREFIX + signature
        ttl_ms = max(1, int((expires_at - self._clock()) * 1000))
        for _attempt in range(3):
            if await self._redis.set(key, path.encode(), nx=True, px=ttl_ms):
                return True
            bound = await self._redis.get(key)
            if bound is not None:
                return bound == path.encode()
            # expired between SET and GET: try to bind again
        return False

    async def close(self) -> None:
        await self._redis.aclose()
