"""Background tasks: a failure is logged when it happens and reported once, a crashed worker is restarted
with backoff, a stop ends the restarts, and asyncio never has an exception left to call unretrieved."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from bot.tasks import spawn, supervise


@pytest.fixture
async def unretrieved():
    """What the event loop reports on its own, e.g. "Task exception was never retrieved"."""
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    yield reported
    loop.set_exception_handler(previous)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)


async def test_a_crashing_worker_is_logged_reported_once_and_restarted(caplog, unretrieved):
    runs, crashes, done = [], [], asyncio.Event()

    async def worker() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError(f"boom {len(runs)}")
        done.set()
        await asyncio.Event().wait()  # a healthy worker runs until stopped

    stopped = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="bot.tasks"):
        task = supervise(worker, name="fulfilment", stopped=stopped, first_delay=0.01,
                         on_crash=lambda name, error: crashes.append((name, str(error))))
        await asyncio.wait_for(done.wait(), 2)
    assert len(runs) == 3
    assert crashes == [("fulfilment", "boom 1")]  # admins hear once, not at every restart
    logged = [r for r in caplog.records if "fulfilment" in r.getMessage()]
    assert len(logged) == 2 and "restarting in 0.01 s" in logged[0].getMessage()
    assert "restarting in 0.02 s" in logged[1].getMessage()  # backoff doubles
    assert logged[0].exc_info is not None
    stopped.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await settle()
    assert unretrieved == []


async def test_after_a_stop_a_crashed_worker_is_not_restarted_and_a_pending_restart_is_dropped():
    runs = []

    async def worker() -> None:
        runs.append(1)
        raise RuntimeError("boom")

    stopped = asyncio.Event()
    task = supervise(worker, name="signal_delivery", stopped=stopped, first_delay=30)
    await asyncio.sleep(0.01)
    assert len(runs) == 1  # waiting 30 s before the restart ...
    stopped.set()
    await asyncio.wait_for(task, 1)  # ... which a stop drops at once
    assert len(runs) == 1


async def test_a_failed_background_task_is_logged_with_its_name_and_never_left_unretrieved(caplog, unretrieved):
    crashes = []

    async def fails() -> None:
        raise ValueError("lost?")

    with caplog.at_level(logging.ERROR, logger="bot.tasks"):
        spawn(fails(), name="reconcile", on_crash=lambda name, error: crashes.append(name))  # reference dropped
        await settle()
    assert crashes == ["reconcile"]
    assert any("reconcile" in r.getMessage() and "lost?" in r.getMessage() for r in caplog.records)
    assert unretrieved == []


async def test_cancellation_is_not_a_failure(caplog):
    crashes = []
    with caplog.at_level(logging.ERROR, logger="bot.tasks"):
        task = spawn(asyncio.sleep(10), name="polling", on_crash=lambda name, error: crashes.append(name))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await settle()
    assert crashes == [] and caplog.records == []
