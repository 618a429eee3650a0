"""The whole process: database, bot, dispatcher, HTTP app and scheduler, started and stopped together."""

from __future__ import annotations

import asyncio
import logging

from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.commands import register_commands
from bot.factory import create_bot, create_dispatcher
from bot.gate import OutgoingGate
from bot.i18n import build_i18n
from bot.web import build_web_app
from db import migrate
from db.engine import Database
from processing.scheduler import build_scheduler
from services.settings import Settings
from services.users import UserService

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.users = UserService(self.db)
        self.i18n = build_i18n()
        self.gate = OutgoingGate(settings.telegram_rate_limit, on_blocked=self.users.mark_blocked)
        token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
        self.bot = create_bot(token, settings.telegram_api_url, self.gate)
        self.dp = create_dispatcher(settings, users=self.users, i18n=self.i18n, db=self.db)
        self.scheduler = build_scheduler(settings.tz)
        self.web = build_web_app(self.db)
        if settings.webhook_mode:
            secret = settings.telegram_webhook_secret
            SimpleRequestHandler(
                self.dp, self.bot, secret_token=secret.get_secret_value() if secret else None
            ).register(self.web, path=WEBHOOK_PATH)
        self._runner: web.AppRunner | None = None
        self._polling: asyncio.Task | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Migrate, serve HTTP, start the scheduler, then start taking updates."""
        await migrate.upgrade(self.db)
        self._runner = web.AppRunner(self.web, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.web_host, self.settings.web_port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        me = await self.bot.get_me()
        await register_commands(self.bot, self.i18n, self.settings.admin_ids)
        self.scheduler.start()
        allowed = self.dp.resolve_used_update_types()
        if self.settings.webhook_mode:
            secret = self.settings.telegram_webhook_secret
            await self.bot.set_webhook(
                self.settings.telegram_webhook_url,
                secret_token=secret.get_secret_value() if secret else None,
                allowed_updates=allowed,
            )
            await self.dp.emit_startup(bot=self.bot)
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._polling = asyncio.create_task(
                self.dp.start_polling(
                    self.bot, handle_signals=False, close_bot_session=False, allowed_updates=allowed
                ),
                name="polling",
            )
        mode = "webhook" if self.settings.webhook_mode else "long polling"
        log.info("@%s is up (%s); HTTP on %s:%s", me.username, mode, self.settings.web_host, self.port)

    async def stop(self) -> None:
        """Stop taking updates, let in-flight work finish, then close everything."""
        if self._polling is not None:
            try:
                await self.dp.stop_polling()
            except RuntimeError:  # stopped before polling had begun
                self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        elif self.settings.webhook_mode:
            await self.dp.emit_shutdown(bot=self.bot)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._runner is not None:
            await self._runner.cleanup()
        await self.dp.storage.close()
        await self.bot.session.close()
        await self.db.close()
        log.info("stopped cleanly")
