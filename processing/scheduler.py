"""APScheduler 3.11 on the bot's event loop.

Every job coalesces missed runs, never runs two instances at once, and a job's exception
is logged and counted without stopping the scheduler. Jobs themselves must be safe to run
twice (they work from database state, not from memory).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import Counter

log = logging.getLogger(__name__)
JOB_FAILURES = Counter("bot_job_failures_total", "Scheduled job runs that raised", ["job"])

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}


def build_scheduler(timezone: ZoneInfo,
                    on_failure: Callable[[str, BaseException], None] | None = None) -> AsyncIOScheduler:
    """`on_failure(job_id, exception)` is told of every failed run (the app alerts admins)."""
    scheduler = AsyncIOScheduler(timezone=timezone, job_defaults=JOB_DEFAULTS)

    def on_event(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
            return
        JOB_FAILURES.labels(job=event.job_id).inc()
        log.error("job %s failed: %r", event.job_id, event.exception, exc_info=event.exception)
        if on_failure is not None:
            on_failure(event.job_id, event.exception)

    scheduler.add_listener(on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler
