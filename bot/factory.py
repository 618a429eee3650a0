"""The dispatcher factory: every router and middleware, with the app's services as workflow data."""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.fsm.storage.memory import MemoryStorage

from bot.errors import on_error
from bot.i18n import UserLocaleMiddleware
from bot.middlewares import ObserveMiddleware, ThrottleMiddleware, UserMiddleware
from bot.wiring import Services
from config.settings import Settings
from handlers import build_routers

# TRANSITIONAL: the services handlers still take one by one, by name (as before `Services`); this goes once
# every handler takes `services: Services`.
_BY_NAME = ("users", "i18n", "db", "orders", "checkout", "payments", "refunds", "notifier", "ai_tokens", "audit",
            "alerts", "content", "publisher", "signals", "broadcasts", "signal_delivery", "broadcast_progress",
            "subscriptions", "whales", "plan_shop", "channel", "admin_prefs", "products")


def create_dispatcher(settings: Settings, services: Services, throttle: ThrottleMiddleware | None = None
                      ) -> Dispatcher:
    """The dispatcher with every router and middleware; handlers declare `services: Services`."""
    by_name = {name: getattr(services, name) for name in _BY_NAME}
    dp = Dispatcher(storage=MemoryStorage(), settings=settings, services=services, **by_name)
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
