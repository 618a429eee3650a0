"""Group commit: writes that arrive while one batch is being written go together in the next batch.

On SQLite every write waits for the one writer, so under load the cost of a write is mostly its turn; a
batch of twenty signals or whale-trade posts written in one transaction costs little more than one. Each
caller still gets its own result (or its own exception) only once its batch is committed. When a batch
fails, each of its items is retried alone, so one bad item never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WriteBatch = Callable[[list[T]], Awaitable[Sequence[R]]]
"""Writes a batch in one transaction; returns one result per item, in order."""


@dataclass(slots=True)
class _Waiting(Generic[T, R]):
    item: T
    done: asyncio.Future[R]


def _settle(waiting: _Waiting, outcome: object, *, failed: bool = False) -> None:
    if waiting.done.done():  # the caller gave up (cancelled)
        return
    if failed:
        waiting.done.set_exception(outcome)  # type: ignore[arg-type]
    else:
        waiting.done.set_result(outcome)


class GroupCommit(Generic[T, R]):
    def __init__(self, write: WriteBatch[T, R], *, limit: int, name: str) -> None:
        self._write, self._limit, self._name = write, limit, name
        self._pending: list[_Waiting[T, R]] = []
        self._flusher: asyncio.Task | None = None

    async def submit(self, item: T) -> R:
        """Queue `item` for the next batch and wait until that batch is committed."""
        waiting: _Waiting[T, R] = _Waiting(item, asyncio.get_running_loop().create_future())
        self._pending.append(waiting)
        if self._flusher is None or self._flusher.done():
            # A clean context: the flusher queues for the write lock itself, whoever woke it.
            self._flusher = asyncio.create_task(self._flush(), name=self._name, context=contextvars.Context())
        return await waiting.done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:self._limit], self._pending[self._limit:]
            try:
                results = await self._write([w.item for w in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0], exc, failed=True)
                    continue
                for waiting in batch:  # one bad item must not fail its neighbours: retry each alone
                    try:
                        [result] = await self._write([waiting.item])
                    except Exception as single:
                        _settle(waiting, single, failed=True)
                    else:
                        _settle(waiting, result)
                continue
            for waiting, result in zip(batch, results, strict=True):
                _settle(waiting, result)
