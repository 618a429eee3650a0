"""Scheduler jobs coalesce, never overlap, and a failing job does not stop the others."""

import asyncio
import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from processing.scheduler import build_scheduler
from transport.metrics import JOB_FAILURES


async def test_failing_job_is_counted_and_others_keep_running():
    told = []
    scheduler = build_scheduler(ZoneInfo("UTC"), on_failure=lambda job, exc: told.append((job, str(exc))))
    runs = {"good": 0, "bad": 0}

    async def good():
        runs["good"] += 1

    async def bad():
        runs["bad"] += 1
        raise RuntimeError("provider down")

    before = JOB_FAILURES.labels(job="bad")._value.get()
    scheduler.add_job(good, "interval", seconds=0.05, id="good")
    scheduler.add_job(bad, "interval", seconds=0.05, id="bad")
    scheduler.start()
    try:
        for _ in range(100):  # up to 5 s on a loaded machine; usually 0.15 s
            failures = JOB_FAILURES.labels(job="bad")._value.get() - before
            if failures >= 2 and runs["good"] >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
    # the failure was counted each time and stopped neither its own schedule nor the other job
    assert failures >= 2 and runs["good"] >= 2 and runs["bad"] >= failures
    assert told[0] == ("bad", "provider down") and {job for job, _ in told} == {"bad"}  # admins get told


async def test_slow_job_never_overlaps_itself():
    scheduler = build_scheduler(ZoneInfo("UTC"))
    active, peak = 0, 0

    async def slow():
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.25)
        active -= 1

    scheduler.add_job(slow, "interval", seconds=0.05, id="slow")
    scheduler.start()
    try:
        await asyncio.sleep(0.6)
    finally:
        scheduler.shutdown(wait=False)
    assert peak == 1


async def test_missed_runs_coalesce_into_one():
    scheduler = build_scheduler(ZoneInfo("UTC"))
    runs = 0

    async def job():
        nonlocal runs
        runs += 1

    scheduler.add_job(job, "interval", seconds=0.05, id="catch_up")
    scheduler.start(paused=True)  # like a bot that was busy or down while runs fell due
    try:
        await asyncio.sleep(0.4)
        scheduler.resume()
        await asyncio.sleep(0.02)
    finally:
        scheduler.shutdown(wait=False)
    assert runs == 1  # eight missed runs became one


async def test_stop_lets_a_run_in_progress_finish():
    told = []
    scheduler = build_scheduler(ZoneInfo("UTC"), on_failure=lambda job, exc: told.append(job))
    started, finished = asyncio.Event(), []

    async def job():
        started.set()
        await asyncio.sleep(0.1)
        finished.append(True)

    scheduler.add_job(job, "interval", seconds=10, id="short", next_run_time=datetime.now(UTC))
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    await scheduler.stop(grace=5)
    assert finished == [True] and told == [] and not scheduler.running


async def test_a_run_cancelled_by_the_stop_is_not_a_failure(caplog):
    """SIGTERM while a job waits on a provider that never answers: no traceback, no admin alert."""
    told = []
    scheduler = build_scheduler(ZoneInfo("UTC"), on_failure=lambda job, exc: told.append(job))
    started, cleaned_up = asyncio.Event(), []

    async def poll_payments():
        started.set()
        try:
            await asyncio.Event().wait()  # the provider never answers
        finally:
            cleaned_up.append(True)

    before = JOB_FAILURES.labels(job="hangs")._value.get()
    scheduler.add_job(poll_payments, "interval", seconds=10, id="hangs", next_run_time=datetime.now(UTC))
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    with caplog.at_level(logging.INFO):
        await scheduler.stop(grace=0.05)
        await asyncio.sleep(0.05)  # let any listener or alert that would fire, fire
    assert cleaned_up == [True]  # cancelled, and its cleanup ran before stop() returned
    assert told == [] and JOB_FAILURES.labels(job="hangs")._value.get() == before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "Traceback" not in caplog.text and "job hangs stopped with the scheduler" in caplog.text


async def test_a_cancellation_while_running_is_still_a_failure():
    told = []
    scheduler = build_scheduler(ZoneInfo("UTC"), on_failure=lambda job, exc: told.append((job, type(exc))))

    async def job():
        raise asyncio.CancelledError  # e.g. a library cancelling on its own: not a stop

    scheduler.add_job(job, "interval", seconds=10, id="odd", next_run_time=datetime.now(UTC))
    scheduler.start()
    try:
        for _ in range(100):
            if told:
                break
            await asyncio.sleep(0.02)
    finally:
        await scheduler.stop(grace=0)
    assert told == [("odd", asyncio.CancelledError)]
