"""Bot and Dispatcher factories."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.utils.i18n import I18n

from bot.errors import on_error
from bot.i18n import UserLocaleMiddleware
from bot.middlewares import ObserveMiddleware, ThrottleMiddleware, UserMiddleware
from config.settings import Settings
from handlers import build_routers
from services.users import UserService
from transport.gate import OutgoingGate


def create_bot(token: str, api_url: str, gate: OutgoingGate, session: BaseSession | None = None) -> Bot:
    """A bot whose every request passes the gate; `session` replaces the network (tests)."""
    session = session or AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    session.middleware(gate)
    return Bot(token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def create_dispatcher(
    settings: Settings,
    *,
    users: UserService,
    i18n: I18n,
    throttle: ThrottleMiddleware | None = None,
    **services: Any,
) -> Dispatcher:
    """The dispatcher with every router and middleware; `services` reach handlers by name."""
    dp = Dispatcher(storage=MemoryStorage(), settings=settings, users=users, **services)
    dp.update.outer_middleware(ObserveMiddleware())
    dp.update.outer_middleware(UserMiddleware(users, settings.admin_ids))
    UserLocaleMiddleware(i18n).setup(dp)  # before the throttle, whose notice is translated
    throttle = throttle or ThrottleMiddleware()
    dp.message.outer_middleware(throttle)
    dp.callback_query.outer_middleware(throttle)
    dp.errors.register(on_error)
    products = services.get("products")  # products whose handlers live outside handlers/ bring a router
    dp.include_routers(*build_routers(settings.admin_ids, products.routers() if products is not None else ()))
    return dp
