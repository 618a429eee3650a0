"""The whole process: database, bot, dispatcher, HTTP app, scheduler and workers, started and
stopped together."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from aiogram.client.session.base import BaseSession
from aiohttp import web

from bot import startup
from bot.commands import all_commands, register_commands
from bot.factory import create_bot, create_dispatcher
from bot.i18n import build_i18n
from bot.middlewares import ThrottleMiddleware
from bot.tasks import spawn, supervise
from config.settings import Settings
from db import migrate
from db.engine import Database
from processing.alerts import AdminAlerts
from processing.broadcast_progress import BroadcastProgress
from processing.content import ContentPublisher
from processing.delivery import BotDeliverer
from processing.fulfilment import FulfilmentWorker
from processing.ingest_auth import IngestAuth
from processing.metrics_job import refresh_today
from processing.notify import Notifier
from processing.payments import PaymentProcessor
from processing.refunds import RefundService
from processing.scheduler import build_scheduler
from processing.signal_delivery import SignalDelivery
from processing.subscriptions import SubscriptionLifecycle
from processing.whale_alerts import WhaleAlerts
from processing.whale_post import WeeklyWhalePost
from routes.app import TelegramWebhookHandler, build_web_app
from routes.signals import add_signal_routes
from routes.whales import add_routes as add_whale_routes
from services.admin_prefs import AdminPrefService
from services.ai_tokens import AiTokenShop, Headroom, PriceBook, PriceRules, ai_tokens_product
from services.audit import AuditService
from services.broadcasts import BroadcastService
from services.channel import PrivateChannel
from services.checkout import CheckoutService
from services.content import ContentService
from services.content_facts import top_whale_fact, track_record_fact
from services.deepseek import DeepSeekClient
from services.openrouter import OpenRouterClient
from services.orders import OrderService
from services.payments import registry as payment_registry
from services.payments.base import PaymentProvider
from services.plan_notices import PlanNotices
from services.plan_sales import PlanShop, plan_product
from services.products import build_catalog
from services.signals import SignalService
from services.subscriptions import SubscriptionService
from services.users import UserService
from services.vault import SecretVault
from services.whales import WhaleService
from transport.gate import OutgoingGate

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
EXPIRY_CHECK_SECONDS = 20
SHUTDOWN_GRACE_SECONDS = 20
JOB_GRACE_SECONDS = 5  # a scheduled run in progress at a stop gets this long, then is cancelled
WHALE_RANKING_TTL = 30  # seconds a computed leaderboard is served before it is recomputed
WHALE_ALERT_TICK_SECONDS = 10


def secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


class App:
    def __init__(self, settings: Settings, *, session: BaseSession | None = None,
                 throttle: ThrottleMiddleware | None = None) -> None:
        self.settings = settings
        with startup.database_file(settings.database_url):
            self.db = Database(settings.database_url)
        self.users = UserService(self.db)
        self.orders = OrderService(self.db)
        self.i18n = build_i18n()
        self.gate = OutgoingGate(settings.telegram_rate_limit, on_blocked=self.users.mark_blocked)
        self.bot = create_bot(secret(settings.telegram_bot_token) or "", settings.telegram_api_url, self.gate,
                              session)
        self.notifier = Notifier(self.bot, self.users, self.i18n, settings.admin_ids)
        self.alerts = AdminAlerts(self.notifier)
        self.providers = self._providers()
        self.openrouter = OpenRouterClient(settings.openrouter_api_url, secret(settings.openrouter_management_key))
        self.ai_tokens = AiTokenShop(
            PriceBook(self.openrouter, settings.ai_token_models),
            PriceRules(settings.ai_token_markup, settings.ai_token_max_order_usd, settings.ai_token_min_tokens),
            Headroom(self.openrouter, self.db), self.orders, ttl=timedelta(minutes=settings.invoice_ttl_minutes))
        self.vault = SecretVault(self.db, secret(settings.openrouter_management_key), purpose="openrouter-keys")
        self.subscriptions = SubscriptionService(self.db)
        self.channel = PrivateChannel(self.bot, settings.private_channel_id)
        self.plan_shop = PlanShop(self.orders, ttl=timedelta(minutes=settings.invoice_ttl_minutes))
        self.products = build_catalog(self, (ai_tokens_product, plan_product))  # and any registered product
        self.fulfillers = self.products.fulfillers
        self.plan_lifecycle = SubscriptionLifecycle(self.subscriptions, PlanNotices(self.db), self.channel,
                                                    self.notifier, settings.tz)
        self.worker = FulfilmentWorker(self.db, self.orders, self.fulfillers, BotDeliverer(self.notifier, self.orders))
        self.admin_prefs = AdminPrefService(self.db)
        self.payments = PaymentProcessor(self.orders, self.providers, self.notifier, self.worker,
                                        tz=settings.tz, admin_prefs=self.admin_prefs)
        self.audit = AuditService(self.db)
        self.refunds = RefundService(self.db, self.orders, self.notifier, self.providers, self.fulfillers,
                                     self.audit)
        self.payments.refunds = self.refunds  # an extra payment for a paid order is refunded through it
        self.checkout = CheckoutService(self.orders, self.providers)
        self.deepseek = DeepSeekClient(settings.deepseek_api_url, secret(settings.deepseek_key),
                                       settings.deepseek_model, attempts=settings.telegram_content_max_retries)
        self.content = ContentService(self.db, self.deepseek, settings)
        self.publisher = ContentPublisher(self.bot, self.content, self.notifier, settings)
        self.whales = WhaleService(self.db, ranking_ttl=WHALE_RANKING_TTL)
        self.signals = SignalService(self.db, tz=settings.tz, channel_map=settings.telegram_channel_map)
        self.content.feeders.update(track_record=track_record_fact(self.signals), top_whale=top_whale_fact(self.whales))
        self.broadcasts = BroadcastService(self.db)
        self.signal_delivery = SignalDelivery(self.db, self.bot, self.i18n)
        self.broadcast_progress = BroadcastProgress(self.broadcasts, self.notifier)
        self.dp = create_dispatcher(
            settings, users=self.users, i18n=self.i18n, db=self.db, orders=self.orders, checkout=self.checkout,
            payments=self.payments, refunds=self.refunds, notifier=self.notifier,
            ai_tokens=self.ai_tokens, audit=self.audit, alerts=self.alerts, content=self.content,
            publisher=self.publisher,
            signals=self.signals, broadcasts=self.broadcasts, signal_delivery=self.signal_delivery,
            broadcast_progress=self.broadcast_progress,
            throttle=throttle, subscriptions=self.subscriptions, whales=self.whales,
            plan_shop=self.plan_shop, channel=self.channel, admin_prefs=self.admin_prefs, products=self.products)
        self.scheduler = build_scheduler(settings.tz, on_failure=self.alerts.job_failed)
        self.web = build_web_app(self.db, payment_webhook=self.payments.handle_webhook)
        ingest_auth = IngestAuth.from_settings(settings, on_rejected=self.alerts.ingest_rejected)
        add_signal_routes(self.web, ingest_auth, self.signals, self.signal_delivery.wake)
        add_whale_routes(self.web, self.whales, ingest_auth)
        self.whale_alerts = WhaleAlerts(self.whales, self.notifier, self.subscriptions, settings.tz)
        self.whale_post = WeeklyWhalePost(self.db, self.whales, self.bot, self.i18n, settings)
        if settings.webhook_mode:
            TelegramWebhookHandler(self.dp, self.bot, secret_token=secret(settings.telegram_webhook_secret)
                                   ).register(self.web, path=WEBHOOK_PATH)
        self._runner: web.AppRunner | None = None
        self._polling: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()  # no more restarts of crashed workers
        self.port: int | None = None
        self.started = False
        self.job_grace = JOB_GRACE_SECONDS

    def _providers(self) -> dict[str, PaymentProvider]:
        """Only providers with credentials are offered."""
        return payment_registry.build(self.settings, bot=self.bot, public_url=self._public_url)

    def _public_url(self, path: str) -> str | None:
        base = self.settings.public_base_url
        return f"{base}{path}" if base else None

    def _schedule(self) -> None:
        s = self.settings
        self.scheduler.add_job(self.payments.poll, "interval", seconds=s.payment_poll_interval_seconds,
                               id="poll_payments")
        self.scheduler.add_job(self.payments.expire, "interval", seconds=EXPIRY_CHECK_SECONDS, id="expire_orders")
        if self.ai_tokens.can_deliver:  # without a management key nothing is sold: don't ask OpenRouter
            self.scheduler.add_job(self.ai_tokens.prices.refresh, "interval", minutes=5, id="refresh_ai_prices",
                                   next_run_time=datetime.now(UTC))
            # warn while the largest order can still be covered, not when sales already fail
            largest_base = s.ai_token_max_order_usd / (1 + s.ai_token_markup)
            self.scheduler.add_job(self.alerts.check_headroom, "interval", minutes=30, id="openrouter_headroom",
                                   args=(self.ai_tokens.headroom, largest_base))
        self.scheduler.add_job(self.refunds.sweep, "interval", minutes=1, id="refunds",
                               next_run_time=datetime.now(UTC))
        self.scheduler.add_job(self.plan_lifecycle.run, "interval", minutes=5, id="plan_lifecycle",
                               next_run_time=datetime.now(UTC))
        self.scheduler.add_job(refresh_today, "interval", minutes=1, id="business_metrics",
                               args=(self.db, self.products.ids, s.tz), next_run_time=datetime.now(UTC))
        self.scheduler.add_job(self.broadcast_progress.tick, "interval", seconds=2, id="broadcast_progress")
        self.scheduler.add_job(self.whale_alerts.tick, "interval", seconds=WHALE_ALERT_TICK_SECONDS, id="whale_alerts")
        self.scheduler.add_job(self.whales.refresh_rankings, "interval", seconds=WHALE_RANKING_TTL * 2 // 3,
                               id="whale_rankings")
        self.whale_post.schedule(self.scheduler)
        if s.telegram_content_enabled:
            self.publisher.schedule(self.scheduler)

    async def start(self) -> None:
        """Migrate, serve HTTP, start the scheduler and workers, then start taking updates."""
        await startup.check_database(self.db, self.settings.database_url)
        await migrate.upgrade(self.db)
        self._runner = web.AppRunner(self.web, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.web_host, self.settings.web_port)
        with startup.web_listener(self.settings.web_host, self.settings.web_port):
            await site.start()
        self.port = self._runner.addresses[0][1]
        with startup.telegram(self.settings.telegram_api_url):
            me = await self.bot.get_me()
        await register_commands(self.bot, self.i18n, self.settings.admin_ids, all_commands(self.products.commands))
        self._schedule()
        self.scheduler.start()
        await self.worker.recover()
        crashed = self.alerts.task_crashed
        self._tasks = [supervise(self.worker.run, name="fulfilment", stopped=self._stopped, on_crash=crashed),
                       spawn(self._reconcile(), name="reconcile", on_crash=crashed)]
        await self.signal_delivery.recover()
        self._tasks.append(supervise(self.signal_delivery.run, name="signal_delivery", stopped=self._stopped,
                                     on_crash=crashed))
        allowed = self.dp.resolve_used_update_types()
        if self.settings.webhook_mode:
            with startup.webhook(self.settings.telegram_webhook_url):
                await self.bot.set_webhook(self.settings.telegram_webhook_url,
                                           secret_token=secret(self.settings.telegram_webhook_secret),
                                           allowed_updates=allowed)
            await self.dp.emit_startup(bot=self.bot)
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._polling = spawn(
                self.dp.start_polling(self.bot, handle_signals=False, close_bot_session=False,
                                      allowed_updates=allowed), name="polling", on_crash=crashed)
        self.started = True
        mode = "webhook" if self.settings.webhook_mode else "long polling"
        log.info("@%s is up (%s); HTTP on %s:%s; payments: %s", me.username, mode, self.settings.web_host,
                 self.port, ", ".join(self.providers) or "none")

    async def _reconcile(self) -> None:
        try:
            await self.payments.reconcile()
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
            await self.dp.emit_shutdown(bot=self.bot)
        # scheduled runs in progress get a grace period, then are cancelled quietly (a stop is not a failure)
        jobs = spawn(self.scheduler.stop(self.job_grace), name="scheduler_stop")
        self.worker.stop()  # the job in hand finishes; an unfinished one is resumed after restart
        self.signal_delivery.stop()  # sends in hand finish; the rest stay queued for the next start
        try:
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), SHUTDOWN_GRACE_SECONDS)
        except TimeoutError:
            log.warning("background work did not finish in time; it resumes at the next start")
        await jobs
        if self._runner is not None:
            await self._runner.cleanup()
        await self.close_resources()
        await self.bot.session.close()
        if self.started:  # after a failed start run.py's one line says it all
            log.info("stopped cleanly")

    async def close_resources(self) -> None:
        """Close the HTTP clients, the FSM storage and the database (also used by in-process tests)."""
        for provider in self.providers.values():
            await provider.close()
        await self.openrouter.close()
        await self.deepseek.close()
        await self.dp.storage.close()
        await self.db.close()
