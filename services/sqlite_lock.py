"""One process per SQLite database: a second one is refused with a one-line error.

SQLite is the single-process default: the send gate, the scheduler and the recovery of unfinished jobs at
start-up all assume no other process is alive. ``hold(database_url)`` takes an exclusive, non-blocking
``fcntl.flock`` on ``<database>.lock`` and keeps it for the life of the process (the returned object holds
the file open). The operating system drops the lock when the process ends in any way, kill -9 included, so a
stale lock file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url


class SqliteInUse(Exception):
    """Another process uses this SQLite database; ``str()`` is one line naming it and what to do."""


class SqliteLock:
    """Holds ``<database>.lock`` until ``release()`` or the end of the process."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def hold(database_url: str) -> SqliteLock | None:
    """Lock the SQLite database of ``database_url`` for this process; None for other databases and for
    in-memory SQLite. Raises ``SqliteInUse`` when another process holds it."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") \
            or url.database.startswith("file:"):
        return None
    database = Path(url.database).expanduser().resolve()
    path = database.with_name(database.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SqliteInUse(
            f"DATABASE_URL: another process is already running on the SQLite database {database} "
            f"(it holds {path}); stop it first, or, for several replicas, use PostgreSQL "
            "(DATABASE_URL=postgresql+asyncpg://…) with REDIS_URL") from None
    return SqliteLock(path, fd)


__all__ = ["SqliteInUse", "SqliteLock", "hold"]
