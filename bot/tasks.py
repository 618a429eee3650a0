"""Background tasks whose failures are never lost. Every asyncio task the app starts goes through here.

asyncio keeps only a weak reference to a task, and the exception of a task nobody awaits shows up as
"Task exception was never retrieved" whenever the task happens to be collected — late, without context,
or never. `spawn()` keeps the task alive, logs its failure the moment it happens (with the task's name)
and calls `on_crash`. `supervise()` runs a long-lived worker (fulfilment, signal delivery) and restarts
it with exponential backoff when it crashes, calling `on_crash` once per worker, not at every restart.
Cancellation (shutdown) is not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Called with the task's name and its exception (must not block: schedule any I/O).
CrashHook = Callable[[str, BaseException], None]

_alive: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], *, name: str, on_crash: CrashHook | None = None) -> asyncio.Task[T]:
    """`asyncio.create_task`, kept referenced until done, its failure logged and reported."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _alive.add(task)
    task.add_done_callback(functools.partial(_finished, on_crash=on_crash))
    return task


def _finished(task: asyncio.Task[Any], *, on_crash: CrashHook | None) -> None:
    _alive.discard(task)
    if task.cancelled():
        return
    error = task.exception()  # retrieved: asyncio will not complain about it later
    if error is None:
        return
    log.error("background task %s failed: %r", task.get_name(), error, exc_info=error)
    _report(on_crash, task.get_name(), error)


def _report(on_crash: CrashHook | None, name: str, error: BaseException) -> None:
    if on_crash is None:
        return
    try:
        on_crash(name, error)
    except Exception:
        log.exception("reporting the failure of %s failed", name)


async def keep_running(work: Callable[[], Awaitable[None]], *, name: str, stopped: asyncio.Event,
                       on_crash: CrashHook | None = None, first_delay: float = 1.0, max_delay: float = 60.0) -> None:
    """Run `work()` until it returns; when it raises, log, report (once) and run it again after a delay
    that doubles up to `max_delay` (and starts over after a run that lasted longer than `max_delay`).
    Once `stopped` is set, a crashed worker is not restarted (and a pending restart is dropped)."""
    loop = asyncio.get_running_loop()
    delay, reported = first_delay, False
    while True:
        started = loop.time()
        try:
            await work()
            return
        except Exception as error:
            if loop.time() - started > max_delay:
                delay = first_delay
            log.error("worker %s crashed: %r%s", name, error,
                      "" if stopped.is_set() else f"; restarting in {delay:g} s", exc_info=error)
            if not reported:
                reported = True
                _report(on_crash, name, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), delay)
        if stopped.is_set():
            return
        delay = min(delay * 2, max_delay)


def supervise(work: Callable[[], Awaitable[None]], *, name: str, stopped: asyncio.Event,
              on_crash: CrashHook | None = None, first_delay: float = 1.0, max_delay: float = 60.0
              ) -> asyncio.Task[None]:
    """Start `keep_running(work)` as a task (see `spawn`)."""
    return spawn(keep_running(work, name=name, stopped=stopped, on_crash=on_crash, first_delay=first_delay,
                              max_delay=max_delay), name=name, on_crash=on_crash)
