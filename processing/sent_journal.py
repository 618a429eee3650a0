"""A local journal of Telegram's "sent" answers for the fan-out worker (processing/signal_delivery.py).

Results reach the database in group commits; a process killed between Telegram's answer and that commit
would send those rows again after the restart. Each "sent" answer is therefore appended here the moment it
arrives: one `write()` of a short line, no thread hop, no transaction, and it survives the process being
killed (the kernel keeps the page). The next start applies the journal before requeueing what was left
`sending`, so a kill repeats only the requests Telegram had not answered yet: the sends in flight.

Used on SQLite, where one bot process owns the database file and the journal lies next to it; PostgreSQL
deployments commit each result before the send's slot is freed instead (no shared disk between replicas).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


class SentJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def append(self, row_id: int, claim: str, message_id: int | None) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self._fd, f"{row_id} {claim} {message_id if message_id is not None else '-'}\n".encode())

    def read(self) -> list[tuple[int, str, int | None]]:
        """Every complete line (a torn last line from a kill mid-write is ignored)."""
        try:
            raw = self.path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return []
        entries = []
        for line in raw.split("\n")[:-1]:
            parts = line.split(" ")
            if len(parts) == 3 and parts[0].isdigit() and (parts[2] == "-" or parts[2].lstrip("-").isdigit()):
                entries.append((int(parts[0]), parts[1], None if parts[2] == "-" else int(parts[2])))
        return entries

    def clear(self) -> None:
        """Forget everything written so far (call only once it is all committed)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.truncate(self.path, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def journal_for(database: str | None, is_sqlite: bool) -> SentJournal | None:
    """The journal next to a SQLite database file; None for PostgreSQL or an in-memory database."""
    if not is_sqlite or not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database).expanduser().resolve()
    return SentJournal(path.with_name(path.name + "-sent"))
