"""Answers kept in memory for a few seconds, for many callers asking the same thing at once.

`Memo.get(key, make)`: a fresh answer is returned as is; concurrent misses share one `make()`; an answer that
expired less than one TTL ago is still returned while the next is made, so no caller waits on the refresh.
An answer is therefore at most two TTLs old. A failed `make()` is not remembered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    def __init__(self, ttl: float, size: int = 512) -> None:
        self.ttl, self.size = ttl, size
        self._kept: dict[Hashable, tuple[float, T]] = {}  # key -> (fresh until, answer)
        self._making: dict[Hashable, asyncio.Future[T]] = {}

    async def get(self, key: Hashable, make: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        kept = self._kept.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        making = self._making.get(key)
        if making is None:
            making = self._making[key] = asyncio.ensure_future(make())
            making.add_done_callback(lambda done: self._keep(key, done))
        if kept is not None and kept[0] + self.ttl > now:
            return kept[1]
        return await asyncio.shield(making)

    def _keep(self, key: Hashable, done: asyncio.Future[T]) -> None:
        self._making.pop(key, None)
        if done.cancelled() or done.exception() is not None:
            return
        now = time.monotonic()
        if len(self._kept) >= self.size:
            self._kept = {k: v for k, v in self._kept.items() if v[0] + self.ttl > now}
        if len(self._kept) < self.size:
            self._kept[key] = (now + self.ttl, done.result())
