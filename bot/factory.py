"""The dispatcher factory: every router and middleware, with the app's services as workflow data."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage

from bot.errors import on_error
from bot.i18n import UserLocaleMiddleware
from bot.middlewares import ObserveMiddleware, ThrottleMiddleware, UserMiddleware
from bot.replicas import DropRepeatedUpdates
from bot.wiring import Services
from config.settings import Settings
from handlers import build_routers
from services.update_dedup import UpdateDedup


def create_dispatcher(settings: Settings, services: Services, throttle: ThrottleMiddleware | None = None, *,
                      storage: BaseStorage | None = None, dedup: UpdateDedup | None = None) -> Dispatcher:
    """The dispatcher with every router and middleware; handlers declare `services: Services`. `storage`:
    where conversations live (memory by default; with it, its event isolation); `dedup` (webhook mode): an
    update delivered again is dropped before anything else sees it."""
    dp = Dispatcher(storage=storage or MemoryStorage(),
                    events_isolation=storage.create_isolation() if storage is not None else None,
                    services=services)
    if dedup is not None:
        dp.update.outer_middleware(DropRepeatedUpdates(dedup))
    dp.update.outer_middleware(ObserveMiddleware())
    dp.update.outer_middleware(UserMiddleware(services.users, settings.admin_ids))
    UserLocaleMiddleware(services.i18n).setup(dp)  # before the throttle, whose notice is translated
    throttle = throttle or ThrottleMiddleware()
    dp.message.outer_middleware(throttle)
    dp.callback_query.outer_middleware(throttle)
    dp.errors.register(on_error)
    # products whose handlers live outside handlers/ bring a router
    dp.include_routers(*build_routers(settings.admin_ids, services.products.routers()))
    return dp
