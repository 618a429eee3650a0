"""APScheduler 3.11 on the bot's event loop.

Every job coalesces missed runs, never runs two instances at once, and a job's exception
is logged and counted without stopping the scheduler. Jobs themselves must be safe to run
twice (they work from database state, not from memory).

A stop is not a failure: `JobScheduler.stop()` starts no new runs, gives the runs in progress a
grace period, then cancels the rest; a run cancelled that way ends quietly (no traceback, no
admin alert) and simply runs again after the restart.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, EVENT_SCHEDULER_SHUTDOWN, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.util import iscoroutinefunction_partial

from transport import metrics

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
UNWIND_SECONDS = 2.0  # how long cancelled runs get to run their cleanup


class JobScheduler(AsyncIOScheduler):
    """`AsyncIOScheduler` that knows its runs in progress, so it can stop without failing them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._runs: set[asyncio.Task] = set()

    def add_job(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        if iscoroutinefunction_partial(func):
            func = self._tracked(func, kwargs.get("id") or getattr(func, "__qualname__", "job"))
        return super().add_job(func, *args, **kwargs)

    def _tracked(self, func: Callable[..., Any], name: str) -> Callable[..., Any]:
        @functools.wraps(func)
        async def run(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self._runs.add(task)
            try:
                return await func(*args, **kwargs)
            except asyncio.CancelledError:
                if self.state != STATE_STOPPED:
                    raise  # cancelled by something else: a real failure
                log.info("job %s stopped with the scheduler; it runs again after the restart", name)
                return None  # the task is the executor's own and awaited by no one
            finally:
                self._runs.discard(task)

        return run

    async def stop(self, grace: float) -> None:
        """Start no new runs, let the runs in progress finish within `grace` seconds, cancel the
        rest and wait for them to unwind (so nothing runs on after the database is closed)."""
        if not self.running:
            return
        self.pause()
        if self._runs:
            await asyncio.wait(set(self._runs), timeout=grace)
        shut = asyncio.Event()
        self.add_listener(lambda _: shut.set(), EVENT_SCHEDULER_SHUTDOWN)
        self.shutdown(wait=False)  # on the loop's next turn; cancels what is still running
        await shut.wait()
        if self._runs:
            await asyncio.wait(set(self._runs), timeout=UNWIND_SECONDS)


def build_scheduler(timezone: ZoneInfo,
                    on_failure: Callable[[str, BaseException], None] | None = None) -> JobScheduler:
    """`on_failure(job_id, exception)` is told of every failed run (the app alerts admins)."""
    scheduler = JobScheduler(timezone=timezone, job_defaults=JOB_DEFAULTS)

    def on_event(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
            return
        if isinstance(event.exception, asyncio.CancelledError) and scheduler.state == STATE_STOPPED:
            return  # cancelled by the stop before it began
        metrics.JOB_FAILURES.labels(job=event.job_id).inc()
        log.error("job %s failed: %r", event.job_id, event.exception, exc_info=event.exception)
        if on_failure is not None:
            on_failure(event.job_id, event.exception)

    scheduler.add_listener(on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler
