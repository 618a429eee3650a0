"""Engine and sessions.

SQLite is tuned per ARCHITECTURE rule 8: WAL, foreign keys, a busy timeout, and
`BEGIN IMMEDIATE` for write transactions so read-then-write code cannot lose updates.
The same code runs on PostgreSQL.

SQLite has one writer. Inside the process that is a property of the design: write transactions
(`transaction()`) queue for one asyncio lock, in order, instead of several aiosqlite threads spinning
in SQLite's busy handler (which sleeps up to 100 ms between tries and lets latecomers overtake, so
a write could wait seconds). SQLite's busy timeout remains for other processes (migrations, a
`sqlite3` shell). PostgreSQL keeps full concurrency. A transaction that cannot start in time raises
`DatabaseBusy`; `is_busy()` recognises it and the drivers' "database is locked" alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

BUSY_TIMEOUT_MS = 10_000
#: Seconds a write may wait for its turn in this process before `DatabaseBusy` (writes are short, and
#: served in order: a wait this long means something holds the database far too long).
WRITE_QUEUE_TIMEOUT = 30.0
#: Words in a driver's error that mean "someone else holds the lock; try again shortly".
BUSY_WORDS = ("database is locked", "database is busy", "database table is locked", "lock timeout",
              "could not obtain lock", "deadlock detected")


class DatabaseBusy(Exception):
    """The database did not let this write start in time: retry shortly."""


def is_busy(error: BaseException) -> bool:
    """Whether `error` (or what caused it) means the database is busy rather than broken."""
    while error is not None:
        if isinstance(error, DatabaseBusy | PoolTimeout):
            return True
        if isinstance(error, OperationalError) and any(w in str(error.orig).lower() for w in BUSY_WORDS):
            return True
        error = error.__cause__ or error.__context__
    return False


class _Held:
    """Marks the write lock as held by this task (and the tasks it starts meanwhile)."""

    active = True


_holding: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("holding_write_lock", default=None)


def dialect_insert(table: Table | type, dialect: str):
    """INSERT in the dialect's own form (PostgreSQL's or SQLite's), for its ON CONFLICT clause; `table`: a
    table or a mapped class."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict = {"echo": echo}
        #: seconds SQLite's busy handler waits for another process's write (`?timeout=` in the URL, as the
        #: sqlite3 driver reads it)
        self.busy_timeout = BUSY_TIMEOUT_MS / 1000
        #: SQLite's single writer, in this process (None on PostgreSQL)
        self._write_lock: asyncio.Lock | None = None
        if self.is_sqlite:
            self.busy_timeout = float(self.url.query.get("timeout", self.busy_timeout))
            self._write_lock = asyncio.Lock()
            _ensure_sqlite_dir(self.url.database)
            kwargs["connect_args"] = {"timeout": self.busy_timeout}  # sqlite3 sets busy_timeout from it
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        self.engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _tune_sqlite(self.engine.sync_engine, in_memory=self.url.database in (None, "", ":memory:"))
        write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write = async_sessionmaker(write_engine, expire_on_commit=False)

    def insert(self, table: Table | type):
        """dialect_insert in this database's dialect."""
        return dialect_insert(table, self.engine.dialect.name)

    def session(self) -> AsyncSession:
        """A session for reads (on SQLite a deferred transaction)."""
        return self._read()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed on success, rolled back on error. Keep it short (no network
        calls inside): on SQLite every other write in the process waits for it."""
        held = _holding.get()
        if self._write_lock is None or (held is not None and held.active):  # PostgreSQL, or nested
            async with self._write() as session, session.begin():
                yield session
            return
        try:
            async with asyncio.timeout(WRITE_QUEUE_TIMEOUT):
                await self._write_lock.acquire()
        except TimeoutError:
            raise DatabaseBusy(f"no turn to write within {WRITE_QUEUE_TIMEOUT:g} s") from None
        marker = _Held()
        token = _holding.set(marker)
        try:
            async with self._write() as session, session.begin():
                yield session
        finally:
            marker.active = False
            with contextlib.suppress(ValueError):  # closed from another context (a collected generator)
                _holding.reset(token)
            self._write_lock.release()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await self.engine.dispose()


def _ensure_sqlite_dir(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(sync_engine, *, in_memory: bool) -> None:
    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin), as the SQLAlchemy docs advise.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
