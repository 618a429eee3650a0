"""Admins' own settings: whether each one gets a notice per sale (on unless switched off)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from db.base import utcnow
from db.engine import Database
from db.models_admin_prefs import AdminPrefs


class AdminPrefService:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def sale_notice_admins(self, admin_ids: list[int]) -> list[int]:
        """The admins among `admin_ids` who want a notice per sale."""
        async with self.db.session() as session:
            off = set(await session.scalars(select(AdminPrefs.admin_id).where(
                AdminPrefs.admin_id.in_(admin_ids), AdminPrefs.sale_notices.is_(False))))
        return [a for a in admin_ids if a not in off]

    async def toggle_sale_notices(self, admin_id: int) -> bool:
        """Switch this admin's sale notices; returns the new setting."""
        for _attempt in range(2):
            try:
                async with self.db.transaction() as session:
                    current = await session.scalar(select(AdminPrefs.sale_notices).where(
                        AdminPrefs.admin_id == admin_id))
                    if current is None:
                        session.add(AdminPrefs(admin_id=admin_id, sale_notices=False, updated_at=utcnow()))
                        return False
                    result = await session.execute(update(AdminPrefs).where(
                        AdminPrefs.admin_id == admin_id, AdminPrefs.sale_notices == current).values(
                        sale_notices=not current, updated_at=utcnow()))
                    if result.rowcount == 1:
                        return not current
            except IntegrityError:  # the first row written by a concurrent tap: read again
                continue
        return bool(await self.sale_notices_on(admin_id))

    async def sale_notices_on(self, admin_id: int) -> bool:
        return bool(await self.sale_notice_admins([admin_id]))
