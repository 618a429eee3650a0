"""Audit log of admin actions: who, what, target, before and after."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select

from db.base import utcnow
from db.engine import Database
from db.models_admin import AuditEntry


class AuditService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.clock = database, clock

    async def record(self, admin_id: int, action: str, target: str = "", *, before: dict | None = None,
                     after: dict | None = None) -> None:
        async with self.db.transaction() as session:
            session.add(AuditEntry(admin_id=admin_id, action=action[:64], target=target[:256], before=before,
                                   after=after, created_at=self.clock()))

    async def page(self, page: int, size: int = 10) -> tuple[list[AuditEntry], int]:
        """Newest first; returns the entries of `page` (0-based) and the number of pages."""
        async with self.db.session() as session:
            total = await session.scalar(select(func.count()).select_from(AuditEntry))
            rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())
                                         .offset(page * size).limit(size))
            return list(rows), max(1, -(-total // size))
