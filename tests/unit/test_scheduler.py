"""Scheduler jobs coalesce, never overlap, and a failing job does not stop the others."""

import asyncio
from zoneinfo import ZoneInfo

from processing.scheduler import JOB_FAILURES, build_scheduler


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
