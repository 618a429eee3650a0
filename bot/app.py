"""The whole process: database, bot, dispatcher, HTTP app, scheduler and workers, started and
stopped together."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from aiogram import Dispatcher
from aiogram.client.session.base import BaseSession
from aiohttp import web

from bot import startup
from bot.commands import all_commands, register_commands
from bot.factory import create_dispatcher
from bot.middlewares import ThrottleMiddleware
from bot.replicas import SharedThrottle, conversation_storage
from bot.tasks import spawn, supervise
from bot.wiring import MARKET_BOARD_TTL, WHALE_RANKING_TTL, Services, build_services, secret
from config.settings import Settings
from db import migrate
from processing.ingest_auth import IngestAuth
from processing.metrics_job import refresh_today
from processing.scheduler import JobScheduler, build_scheduler
from routes.api_extras import dataset_endpoints, webhook_endpoints
from routes.api_provider import provider_endpoints
from routes.api_v1 import ApiV1, add_api_routes
from routes.app import TelegramWebhookHandler, build_web_app
from routes.downloads import add_routes as add_download_routes
from routes.signals import add_signal_routes
from routes.whales import add_routes as add_whale_routes
from services import sqlite_lock
from services.products import Fulfiller

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
EXPIRY_CHECK_SECONDS = 20
SHUTDOWN_GRACE_SECONDS = 20
JOB_GRACE_SECONDS = 5  # a scheduled run in progress at a stop gets this long, then is cancelled
WHALE_ALERT_TICK_SECONDS = 10


def build_web(services: Services, dp: Dispatcher) -> web.Application:
    """The HTTP app: health and metrics, payment webhooks, signal and whale ingest, the developer API, the
    Telegram webhook."""
    s = services
    app = build_web_app(s.db, payment_webhook=s.payments.handle_webhook, leader=lambda: s.leadership.is_leader)
    ingest_auth = IngestAuth.from_settings(s.settings, on_rejected=s.alerts.ingest_rejected)
    add_signal_routes(app, ingest_auth, s.signals, lambda: (s.signal_delivery.wake(), s.webhook_delivery.wake()))
    add_whale_routes(app, s.whales, ingest_auth)
    add_download_routes(app, s.datasets)
    api = ApiV1(s.api_keys, s.api_meter, s.api_data, s.ledger)
    for endpoint in (*webhook_endpoints(s.webhooks), *dataset_endpoints(s.datasets),
                     *provider_endpoints(s.marketplace, s.signals, s.signal_delivery.wake)):
        api.add(endpoint)
    add_api_routes(app, api)
    if s.settings.webhook_mode:
        TelegramWebhookHandler(dp, s.bot, secret_token=secret(s.settings.telegram_webhook_secret)
                               ).register(app, path=WEBHOOK_PATH)
    return app


def schedule_jobs(scheduler: JobScheduler, services: Services) -> None:
    """The periodic jobs (added at start, so an app that is only built runs none)."""
    s, settings = services, services.settings
    scheduler.add_job(s.payments.poll, "interval", seconds=settings.payment_poll_interval_seconds,
                      id="poll_payments")
    scheduler.add_job(s.payments.expire, "interval", seconds=EXPIRY_CHECK_SECONDS, id="expire_orders")
    if s.ai_tokens.can_deliver:  # without a management key nothing is sold: don't ask OpenRouter
        scheduler.add_job(s.ai_tokens.prices.refresh, "interval", minutes=5, id="refresh_ai_prices",
                          next_run_time=datetime.now(UTC))
        # warn while the largest order can still be covered, not when sales already fail
        largest_base = settings.ai_token_max_order_usd / (1 + settings.ai_token_markup)
        scheduler.add_job(s.alerts.check_headroom, "interval", minutes=30, id="openrouter_headroom",
                          args=(s.ai_tokens.headroom, largest_base))
    scheduler.add_job(s.refunds.sweep, "interval", minutes=1, id="refunds", next_run_time=datetime.now(UTC))
    scheduler.add_job(s.plan_lifecycle.run, "interval", minutes=5, id="plan_lifecycle",
                      next_run_time=datetime.now(UTC))
    scheduler.add_job(refresh_today, "interval", minutes=1, id="business_metrics",
                      args=(s.db, s.products.ids, settings.tz), next_run_time=datetime.now(UTC))
    scheduler.add_job(s.broadcast_progress.tick, "interval", seconds=2, id="broadcast_progress")
    scheduler.add_job(s.whale_alerts.tick, "interval", seconds=WHALE_ALERT_TICK_SECONDS, id="whale_alerts")
    scheduler.add_job(s.whales.refresh_rankings, "interval", seconds=WHALE_RANKING_TTL * 2 // 3,
                      id="whale_rankings")
    scheduler.add_job(s.market_board.refresh, "interval", seconds=MARKET_BOARD_TTL * 2 // 3, id="market_board",
                      next_run_time=datetime.now(UTC))  # at once: an upgrade's one-off record rebuild is not a view's
    scheduler.add_job(s.update_dedup.prune, "interval", hours=1, id="update_dedup_prune")
    scheduler.add_job(s.earnings.release_due, "interval", hours=1, id="seller_earnings",
                      next_run_time=datetime.now(UTC))  # shares past PAYOUT_HOLD_DAYS become payable
    scheduler.add_job(s.payout_job.monthly, "cron", day=1, hour=9, id="payout_run")  # settings.tz: the scheduler's
    scheduler.add_job(s.payout_job.resume, "interval", hours=1, id="payout_resume")  # transfers a run left open
    scheduler.add_job(s.suspension.sweep, "interval", minutes=5, id="suspension_refunds")  # finish interrupted ones
    scheduler.add_job(s.provider_reminders.run, "interval", minutes=5, id="provider_reminders",
                      next_run_time=datetime.now(UTC))  # renewal reminders, 3 days and 1 day before the end
    s.whale_post.schedule(scheduler)
    if settings.telegram_content_enabled:
        s.publisher.schedule(scheduler)


class App:
    """The running process. Its parts are `services` (bot/wiring.py), also readable as the app's own
    attributes (`app.orders`, `sb.app.db`), which tests, benchmarks and the sandbox use."""

    def __init__(self, settings: Settings, *, session: BaseSession | None = None,
                 throttle: ThrottleMiddleware | None = None) -> None:
        self.settings = settings
        self.services = build_services(settings, session=session)
        redis = self.services.redis
        if throttle is None and redis is not None:
            throttle = SharedThrottle(redis)
        self.dp = create_dispatcher(
            settings, self.services, throttle=throttle,
            storage=conversation_storage(settings.redis_url) if settings.redis_url else None,
            dedup=self.services.update_dedup if settings.webhook_mode else None)
        self.scheduler = build_scheduler(settings.tz, on_failure=self.services.alerts.job_failed)
        self.web = build_web(self.services, self.dp)
        self._runner: web.AppRunner | None = None
        self._polling: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()  # no more restarts of crashed workers
        self.port: int | None = None
        self.started = False
        self.job_grace = JOB_GRACE_SECONDS
        self._db_lock: sqlite_lock.SqliteLock | None = None

    def __getattr__(self, name: str) -> Any:
        """A service by name (`app.orders` is `app.services.orders`); only called for names the app lacks."""
        if name == "services":  # not built (yet): don't recurse
            raise AttributeError(name)
        return getattr(self.services, name)

    @property
    def fulfillers(self) -> dict[str, Fulfiller]:
        return self.services.products.fulfillers

    def _schedule(self) -> None:
        schedule_jobs(self.scheduler, self.services)

    async def start(self) -> None:
        """Migrate, serve HTTP, start the scheduler (running jobs while this process leads) and workers,
        then start taking updates."""
        s, settings = self.services, self.settings
        if settings.redis_url and not settings.webhook_mode:
            raise startup.StartupError(
                "REDIS_URL is set (several replicas) but TELEGRAM_WEBHOOK_URL is not: replicas cannot share long "
                "polling; set TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET, or unset REDIS_URL for one process")
        try:
            self._db_lock = sqlite_lock.hold(settings.database_url)
        except sqlite_lock.SqliteInUse as exc:
            raise startup.StartupError(str(exc)) from None
        await startup.check_database(s.db, settings.database_url)
        await migrate.upgrade(s.db)
        if s.invalidations is not None:  # before any request: caches hear the other replicas' changes
            await s.invalidations.start()
        self._runner = web.AppRunner(self.web, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.web_host, settings.web_port)
        with startup.web_listener(settings.web_host, settings.web_port):
            await site.start()
        self.port = self._runner.addresses[0][1]
        with startup.telegram(settings.telegram_api_url):
            me = await s.bot.get_me()
        admin_languages = {a: u.language for a in settings.admin_ids if (u := await s.users.get(a)) is not None}
        await register_commands(s.bot, s.i18n, settings.admin_ids, all_commands(s.products.commands), admin_languages)
        self._schedule()
        self.scheduler.start(paused=True)
        s.leadership.on_change = self._lead
        await s.leadership.start()
        # one process: what its dead predecessor held goes back to the queue now; several replicas (REDIS_URL):
        # only once its lease has expired, so a starting replica never takes the live work of another
        shared = bool(settings.redis_url)
        if not shared:
            await s.worker.recover()
        crashed = s.alerts.task_crashed
        self._tasks = [supervise(s.worker.run, name="fulfilment", stopped=self._stopped, on_crash=crashed),
                       spawn(self._reconcile(), name="reconcile", on_crash=crashed)]
        if not shared:
            await s.signal_delivery.recover()
        self._tasks.append(supervise(s.signal_delivery.run, name="signal_delivery", stopped=self._stopped,
                                     on_crash=crashed))
        self._tasks.append(supervise(s.webhook_delivery.run, name="webhook_delivery", stopped=self._stopped,
                                     on_crash=crashed))
        allowed = self.dp.resolve_used_update_types()
        if settings.webhook_mode:
            with startup.webhook(settings.telegram_webhook_url):
                await s.bot.set_webhook(settings.telegram_webhook_url,
                                        secret_token=secret(settings.telegram_webhook_secret),
                                        allowed_updates=allowed)
            await self.dp.emit_startup(bot=s.bot)
        else:
            await s.bot.delete_webhook(drop_pending_updates=False)
            self._polling = spawn(
                self.dp.start_polling(s.bot, handle_signals=False, close_bot_session=False,
                                      allowed_updates=allowed), name="polling", on_crash=crashed)
        self.started = True
        mode = "webhook" if settings.webhook_mode else "long polling"
        log.info("@%s is up (%s); HTTP on %s:%s; payments: %s", me.username, mode, settings.web_host,
                 self.port, ", ".join(s.providers) or "none")

    def _lead(self, leading: bool) -> None:
        """Leadership changed: the scheduled jobs run on the leader only (runs in progress finish)."""
        if self._stopped.is_set() or not self.scheduler.running:
            return
        if leading:
            self.scheduler.resume()
        else:
            self.scheduler.pause()

    async def _reconcile(self) -> None:
        try:
            await self.services.payments.reconcile()
        except Exception:
            log.exception("start-up reconciliation failed; the scheduled jobs will catch up")

    async def stop(self) -> None:
        """Stop taking updates, let in-flight work finish, then close everything."""
        self._stopped.set()
        if self._polling is not None:
            try:
                await self.dp.stop_polling()
            except RuntimeError:  # stopped before polling had begun
                self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        elif self.settings.webhook_mode:
            await self.dp.emit_shutdown(bot=self.services.bot)
        # side by side, so a stop waits for the longer grace, not for both: scheduled runs in progress get
        # theirs, then are cancelled quietly (a stop is not a failure); the workers finish what they hold
        await asyncio.gather(self.scheduler.stop(self.job_grace), self._stop_workers())
        await self.services.leadership.stop()  # after the runs in progress, so the next leader starts afresh
        if self._runner is not None:
            await self._runner.cleanup()
        await self.close_resources()
        await self.services.bot.session.close()
        if self._db_lock is not None:
            self._db_lock.release()
            self._db_lock = None
        if self.started:  # after a failed start run.py's one line says it all
            log.info("stopped cleanly")

    async def _stop_workers(self) -> None:
        self.services.worker.stop()  # the job in hand finishes; an unfinished one is resumed after restart
        self.services.signal_delivery.stop()  # sends in hand finish; the rest stay queued for the next start
        self.services.webhook_delivery.stop()  # posts in hand finish; the rest stay queued for later
        payout_run = self.services.payout_job.background  # an admin's run in the background gets the same grace;
        tasks = [*self._tasks, *([payout_run] if payout_run is not None else [])]  # the hourly resume ends it
        try:
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), SHUTDOWN_GRACE_SECONDS)
        except TimeoutError:
            log.warning("background work did not finish in time; it resumes at the next start")

    async def close_resources(self) -> None:
        """Close the HTTP clients, the FSM storage and the database (also used by in-process tests)."""
        s = self.services
        try:
            await s.api_keys.flush_usage()  # the keys' last-use times remembered since the last write
            await s.api_meter.flush()  # the API calls counted since the last write
        except Exception:
            log.exception("could not record the API keys' last use and calls at shutdown")
        for provider in s.providers.values():
            await provider.close()
        await s.openrouter.close()
        await s.webhook_delivery.close()
        await s.deepseek.close()
        await self.dp.storage.close()
        if s.invalidations is not None:
            await s.invalidations.close()
        if s.redis is not None:
            await s.redis.aclose()
        await s.db.close()
