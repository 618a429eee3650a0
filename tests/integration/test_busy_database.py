"""SQLite held by another process (a `sqlite3` shell, a migration, a backup): nobody sees a 500 or
"something went wrong". HTTP answers 503 with Retry-After and stores nothing; a retry stores once. A user is
told to try again in a moment, and a short hold is ridden out by retrying. Inside the process, writes queue
in order for SQLite's single writer instead of racing in its busy handler."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text

from bot import middlewares
from db.engine import Database
from db.models_signals import Signal
from processing.ingest_auth import signed_headers
from tests.conftest import make_settings
from tests.support.harness import Harness

SECRET = "busy-secret"
SIGNAL = {"id": "busy-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150"], "stop_loss": "136", "timeframe": "4h"}
BUSY_TIMEOUT = 0.1  # SQLite's busy handler gives up after this (the URL's ?timeout=)


@contextlib.contextmanager
def another_process_writing(path: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock from outside the app, as a second process would."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=5)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    finally:
        connection.rollback()
        connection.close()


@pytest.fixture
async def h(tmp_path) -> AsyncIterator[Harness]:
    path = tmp_path / "busy.db"
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{path}?timeout={BUSY_TIMEOUT}",
                             signal_webhook_secret=SECRET)
    harness = await Harness(settings).start()
    harness.path = path
    yield harness
    await harness.close()


@pytest.fixture
async def client(h) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(h.app.web)) as c:
        yield c


async def post_signal(client: TestClient):
    body = json.dumps(SIGNAL).encode()
    return await client.post("/api/signals", data=body, headers=signed_headers(SECRET, body))


async def stored_signals(h) -> int:
    async with h.db.session() as session:
        return await session.scalar(select(func.count()).select_from(Signal))


async def test_ingest_answers_503_with_retry_after_while_locked_and_a_retry_stores_once(h, client):
    with another_process_writing(h.path):
        response = await post_signal(client)
        assert response.status == 503
        assert int(response.headers["Retry-After"]) > 0
        assert response.content_type == "application/problem+json"
        problem = await response.json()
        assert problem["status"] == 503 and "busy" in problem["detail"]
    assert await stored_signals(h) == 0
    assert (await post_signal(client)).status == 202
    assert (await post_signal(client)).status == 200  # the sender's next retry: a duplicate
    assert await stored_signals(h) == 1


async def test_a_user_is_told_to_try_again_in_a_moment_not_that_something_broke(h, monkeypatch):
    monkeypatch.setattr(middlewares, "BUSY_RETRY_DELAYS", (0.01, 0.01))
    with another_process_writing(h.path):
        await h.send(501, "/start")
    [answer] = h.session.texts_to(501)
    assert "try again in a moment" in answer
    assert "something went wrong" not in answer


async def test_a_short_hold_is_ridden_out_by_retrying_and_the_user_gets_the_answer(h):
    with another_process_writing(h.path) as outside:
        asyncio.get_running_loop().call_later(BUSY_TIMEOUT * 1.5, outside.rollback)  # released mid-retry
        await h.send(502, "/help")
    answers = h.session.texts_to(502)
    assert answers and not any("try again in a moment" in a or "went wrong" in a for a in answers)
    assert await h.users.get(502) is not None


async def test_writes_in_the_process_take_turns_in_order_instead_of_racing(tmp_path):
    """Each write holds the database for a while: with SQLite's busy handler alone, waiters poll at growing
    intervals and overtake each other; queued in the process they commit in the order they asked."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    async with db.transaction() as session:
        await session.execute(text("CREATE TABLE turns (n INTEGER)"))

    async def write(n: int) -> None:
        async with db.transaction() as session:
            await session.execute(text("SELECT count(*) FROM turns"))  # read-then-write
            await asyncio.sleep(0.01)
            await session.execute(text("INSERT INTO turns (n) VALUES (:n)"), {"n": n})

    try:
        await asyncio.gather(*(write(n) for n in range(12)))
        async with db.session() as session:
            order = list(await session.scalars(text("SELECT n FROM turns ORDER BY rowid")))
    finally:
        await db.close()
    assert order == list(range(12))
