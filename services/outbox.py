"""Writes to the delivery queue (db.models_signals.Outbox) that processing/signal_delivery.py sends from:
one row per (item, recipient)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models_signals import Outbox


def row(kind: str, item_id: int, chat: int | str, user_id: int | None, *, due: datetime, now: datetime,
        parent_id: int | None = None) -> dict[str, Any]:
    """A queued row for `chat` (a user's id, or a channel), due at `due`."""
    return dict(kind=kind, item_id=item_id, chat=str(chat), user_id=user_id, parent_id=parent_id, status="queued",
                attempts=0, next_attempt_at=due, created_at=now)


async def enqueue(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert the rows in the caller's transaction, as one Core executemany: the ORM's bulk path spends
    about a quarter of a second per 10,000 rows before the first one can be sent."""
    if rows:
        await session.execute(insert(Outbox.__table__), rows)
