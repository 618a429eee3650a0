"""Admin routers. One filter on the parent router guards every admin handler."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message

from handlers.admin import audit, broadcast, content, grant, orders, panel, providers, sales, stats, support, users
from handlers.admin import payouts as payout_admin
from handlers.admin import signals as signal_admin
from handlers.admin import whales as whale_admin
from handlers.admin.audit import AuditMiddleware


class AdminsOnly(Filter):
    """Async, so aiogram calls it in the loop (a plain function filter runs in a thread for every update)."""

    def __init__(self, admin_ids: list[int]) -> None:
        self.ids = frozenset(admin_ids)

    async def __call__(self, event: Message | CallbackQuery) -> bool:
        return event.from_user is not None and event.from_user.id in self.ids


def build_router(admin_ids: list[int]) -> Router:
    router = Router(name="admin")
    only_admins = AdminsOnly(admin_ids)
    router.message.filter(only_admins)
    router.callback_query.filter(only_admins)
    router.message.middleware(AuditMiddleware())  # inner: runs only for admin updates a handler takes
    router.callback_query.middleware(AuditMiddleware())
    router.include_routers(audit.build_router(), users.build_router(), stats.build_router())
    router.include_routers(panel.build_router(), content.build_router(), orders.build_router(), support.build_router(),
                           grant.build_router())
    router.include_routers(signal_admin.build_router(), broadcast.build_router())
    router.include_routers(whale_admin.build_router())
    router.include_routers(sales.build_router())
    router.include_routers(providers.build_router())
    router.include_routers(payout_admin.build_router())
    return router
