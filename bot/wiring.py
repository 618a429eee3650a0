"""The process's parts, built once in dependency order (`build_services`) into one typed object
(`Services`) that the app, the dispatcher (handlers declare `services: Services`) and the jobs read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.utils.i18n import I18n
from pydantic import SecretStr
from redis.asyncio import Redis

from bot import startup
from bot.i18n import build_i18n
from config.settings import Settings
from db.engine import Database
from db.models import Order
from presentation.ai_tokens import ai_tokens_product
from presentation.api import api_credit_product
from presentation.content import ChannelPosts
from presentation.datasets import datasets_product
from presentation.formatting import order_title
from presentation.marketplace import marketplace_product
from presentation.plans import plan_product
from processing.alerts import AdminAlerts
from processing.broadcast_progress import BroadcastProgress
from processing.content import ContentPublisher
from processing.delivery import BotDeliverer
from processing.fulfilment import FulfilmentWorker
from processing.notify import Notifier
from processing.payments import PaymentProcessor
from processing.payouts import PayoutJob
from processing.provider_reminders import ProviderReminders
from processing.referrals import RewardingDeliverer
from processing.refunds import RefundService
from processing.signal_delivery import SignalDelivery
from processing.subscriptions import SubscriptionLifecycle
from processing.suspension import SuspensionRefunds
from processing.webhook_delivery import WebhookWorker
from processing.whale_alerts import WhaleAlerts
from processing.whale_post import WeeklyWhalePost
from services import redis as redis_conn
from services.admin_prefs import AdminPrefService
from services.ai_tokens import AiTokenShop, Headroom, PriceBook, PriceRules
from services.api_credit import ApiCreditShop
from services.api_data import ApiData
from services.api_keys import REMEMBER_SECONDS, ApiKeyService
from services.api_metering import ApiMeter, storage_for
from services.api_webhooks import WebhookService
from services.audit import AuditService
from services.broadcasts import BroadcastService
from services.channel import PrivateChannel
from services.checkout import CheckoutService
from services.content import ContentService
from services.content_facts import top_whale_fact, track_record_fact
from services.datasets import DatasetService, DatasetShop
from services.deepseek import DeepSeekClient
from services.earnings import EarningsService
from services.invalidations import SharedInvalidations
from services.leader import Leadership, build_leadership
from services.ledger import LedgerService
from services.marketplace import MarketplaceService
from services.marketplace_board import MarketBoard
from services.openrouter import OpenRouterClient
from services.orders import OrderService
from services.payments import registry as payment_registry
from services.payments.base import PaymentProvider
from services.payouts import PayoutService
from services.plan_notices import PlanNotices
from services.plan_sales import PlanShop
from services.products import Catalog, ProductBuilder, ProductParts, build_catalog
from services.provider_notices import ProviderNotices
from services.ratings import RatingService
from services.referrals import ReferralService
from services.signals import SignalService
from services.subscriptions import SubscriptionService
from services.update_dedup import UpdateDedup
from services.users import UserService
from services.vault import SecretVault
from services.whales import WhaleService
from transport.gate import OutgoingGate
from transport.redis_budget import RedisBudget

WHALE_RANKING_TTL = 30  # seconds a computed leaderboard is served before it is recomputed
MARKET_BOARD_TTL = 300  # seconds the computed /market board is served (a job recomputes it before then)
BUILT_IN_PRODUCTS: tuple[ProductBuilder, ...] = (ai_tokens_product, plan_product, api_credit_product,
                                                  datasets_product, marketplace_product)
"""The built-in products (told in presentation/'s words), in menu and command order; registered ones
(services.products.register) follow."""


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


#: Outbox rows a replica claims at a time (one process claims 1,000).
REPLICA_BATCH = 200


def create_bot(token: str, api_url: str, gate: OutgoingGate, session: BaseSession | None = None) -> Bot:
    """A bot whose every request passes the gate; `session` replaces the network (tests)."""
    session = session or AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    session.middleware(gate)
    return Bot(token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


@dataclass(slots=True, kw_only=True)
class Services:
    """Every long-lived part of the process, one field each, in the order they are built."""

    settings: Settings
    db: Database
    redis: Redis | None  # REDIS_URL: what the replicas share (send budget, update ids, leader without PostgreSQL)
    leadership: Leadership  # whether this process runs the scheduled jobs now
    update_dedup: UpdateDedup  # an update delivered twice is handled once (webhook mode)
    invalidations: SharedInvalidations | None  # REDIS_URL: cache invalidations heard from every replica
    users: UserService
    orders: OrderService
    i18n: I18n
    gate: OutgoingGate
    bot: Bot
    notifier: Notifier
    alerts: AdminAlerts
    providers: dict[str, PaymentProvider]  # only the providers with credentials
    checkout: CheckoutService
    openrouter: OpenRouterClient
    ai_tokens: AiTokenShop
    vault: SecretVault
    subscriptions: SubscriptionService
    channel: PrivateChannel
    plan_shop: PlanShop
    products: Catalog
    plan_lifecycle: SubscriptionLifecycle
    referrals: ReferralService
    worker: FulfilmentWorker
    admin_prefs: AdminPrefService
    audit: AuditService
    refunds: RefundService
    payments: PaymentProcessor
    deepseek: DeepSeekClient
    content: ContentService
    publisher: ContentPublisher
    whales: WhaleService
    signals: SignalService
    broadcasts: BroadcastService
    signal_delivery: SignalDelivery
    broadcast_progress: BroadcastProgress
    whale_alerts: WhaleAlerts
    whale_post: WeeklyWhalePost
    ledger: LedgerService  # the one money ledger (API credit; provider payouts later)
    api_keys: ApiKeyService
    api_credit: ApiCreditShop
    datasets: DatasetService  # datasets for sale: catalogue, credit purchases, signed links, exports
    dataset_shop: DatasetShop
    api_meter: ApiMeter  # the developer API's limits (memory, or Redis with REDIS_URL) and charges
    api_data: ApiData
    webhooks: WebhookService  # the developer API's outbound webhooks
    webhook_delivery: WebhookWorker
    marketplace: MarketplaceService  # signal providers: applications, review, subscriptions to a provider
    earnings: EarningsService  # sellers' shares of their orders in the ledger (held, payable, refunded)
    market_board: MarketBoard  # /market's ranking of providers and their cards' figures (cached)
    payouts: PayoutService  # payout runs: every seller's payable balance paid once (transfer or by hand)
    payout_job: PayoutJob  # runs them (admin, monthly, hourly resume) and tells the payees
    suspension: SuspensionRefunds  # a suspended provider's subscribers told and their unused time refunded
    provider_reminders: ProviderReminders  # renewal reminders for provider subscriptions (3 days, 1 day before)
    ratings: RatingService  # providers' ratings: stars and a review per subscriber, the provider's reply


def build_services(settings: Settings, *, session: BaseSession | None = None) -> Services:
    """Every part, built once from `settings`; `session` replaces the Telegram network (tests)."""
    with startup.database_file(settings.database_url):
        db = Database(settings.database_url)
    redis = redis_conn.connect(settings.redis_url) if settings.redis_url else None
    invalidations = SharedInvalidations(redis, db) if redis else None
    heard = invalidations.is_live if invalidations else None  # caches answer from memory while True
    users = UserService(db, shared=heard)
    orders = OrderService(db)
    i18n = build_i18n()
    gate = OutgoingGate(settings.telegram_rate_limit, on_blocked=users.mark_blocked,
                        budget=RedisBudget(redis, settings.telegram_rate_limit) if redis else None)
    bot = create_bot(secret(settings.telegram_bot_token) or "", settings.telegram_api_url, gate, session)
    notifier = Notifier(bot, users, i18n, settings.admin_ids)
    alerts = AdminAlerts(notifier)

    def public_url(path: str) -> str | None:
        base = settings.public_base_url
        return f"{base}{path}" if base else None

    providers = payment_registry.build(settings, bot=bot, public_url=public_url)

    def invoice_title(order: Order) -> str:
        """The order's title in the buyer's language while their tap is handled; in English for an invoice
        made outside an update (a worker, a script)."""
        with i18n.context():
            return order_title(order)

    checkout = CheckoutService(orders, providers, describe=invoice_title)
    openrouter = OpenRouterClient(settings.openrouter_api_url, secret(settings.openrouter_management_key))
    ai_tokens = AiTokenShop(
        PriceBook(openrouter, settings.ai_token_models),
        PriceRules(settings.ai_token_markup, settings.ai_token_max_order_usd, settings.ai_token_min_tokens),
        Headroom(openrouter, db), orders, ttl=timedelta(minutes=settings.invoice_ttl_minutes))
    vault = SecretVault(db, secret(settings.openrouter_management_key), purpose="openrouter-keys")
    subscriptions = SubscriptionService(db)
    channel = PrivateChannel(bot, settings.private_channel_id)
    plan_shop = PlanShop(orders, ttl=timedelta(minutes=settings.invoice_ttl_minutes))
    ledger = LedgerService(db)
    marketplace = MarketplaceService(db, orders, price_range=settings.marketplace_price_range_usd,
                                     ttl=timedelta(minutes=settings.invoice_ttl_minutes))
    earnings = EarningsService(db, ledger, share=settings.marketplace_provider_share,
                               hold=timedelta(days=settings.payout_hold_days))
    products = build_catalog(ProductParts(
        settings=settings, db=db, bot=bot, users=users, orders=orders, checkout=checkout, openrouter=openrouter,
        vault=vault, ai_tokens=ai_tokens, subscriptions=subscriptions, channel=channel, plan_shop=plan_shop,
        ledger=ledger, marketplace=marketplace, earnings=earnings,
    ), BUILT_IN_PRODUCTS)
    plan_lifecycle = SubscriptionLifecycle(subscriptions, PlanNotices(db), channel, notifier, settings.tz)
    referrals = ReferralService(db, subscriptions, reward_days=settings.referral_reward_days)
    worker = FulfilmentWorker(db, orders, products.fulfillers,
                              RewardingDeliverer(BotDeliverer(notifier, orders), referrals, notifier))
    admin_prefs = AdminPrefService(db)
    audit = AuditService(db)
    refunds = RefundService(db, orders, notifier, providers, products.fulfillers, audit, ledger=ledger)
    payments = PaymentProcessor(orders, providers, notifier, worker, tz=settings.tz, admin_prefs=admin_prefs,
                                refunds=refunds)
    deepseek = DeepSeekClient(settings.deepseek_api_url, secret(settings.deepseek_key), settings.deepseek_model,
                              attempts=settings.telegram_content_max_retries)
    content = ContentService(db, deepseek, settings, ChannelPosts())
    whales = WhaleService(db, ranking_ttl=WHALE_RANKING_TTL)
    signals = SignalService(db, tz=settings.tz, channel_map=settings.telegram_channel_map)
    content.feeders.update(track_record=track_record_fact(signals), top_whale=top_whale_fact(whales))
    broadcasts = BroadcastService(db)
    datasets = DatasetService.from_settings(settings, db, ledger)
    payouts = PayoutService(db, ledger, earnings, providers, {"provider": marketplace.payee})
    webhooks = WebhookService(db, subscriptions, material=secret(settings.telegram_bot_token),
                              allow_private=settings.api_webhook_allow_private)
    return Services(
        settings=settings, db=db, users=users, orders=orders, i18n=i18n, gate=gate, bot=bot, notifier=notifier,
        alerts=alerts, providers=providers, checkout=checkout, openrouter=openrouter, ai_tokens=ai_tokens,
        vault=vault, subscriptions=subscriptions, channel=channel, plan_shop=plan_shop, products=products,
        plan_lifecycle=plan_lifecycle, referrals=referrals, worker=worker, admin_prefs=admin_prefs, audit=audit,
        redis=redis, leadership=build_leadership(settings.database_url, redis), update_dedup=UpdateDedup(db, redis),
        invalidations=invalidations,
        refunds=refunds,
        payments=payments, deepseek=deepseek, content=content,
        publisher=ContentPublisher(bot, content, notifier, settings),
        whales=whales, signals=signals, broadcasts=broadcasts,
        # replicas claim smaller batches, so the end of a fan-out is shared by all of them, not left to one
        signal_delivery=SignalDelivery(db, bot, i18n, batch=REPLICA_BATCH if settings.redis_url else 1000),
        broadcast_progress=BroadcastProgress(broadcasts, notifier),
        whale_alerts=WhaleAlerts(whales, notifier, subscriptions, settings.tz),
        whale_post=WeeklyWhalePost(db, whales, bot, i18n, settings),
        ledger=ledger, api_keys=ApiKeyService(db, remember_seconds=REMEMBER_SECONDS, shared=heard),
        api_credit=ApiCreditShop(orders, ttl=timedelta(minutes=settings.invoice_ttl_minutes)),
        datasets=datasets,
        dataset_shop=DatasetShop(datasets, orders, ttl=timedelta(minutes=settings.invoice_ttl_minutes)),
        api_meter=ApiMeter(db, ledger, limits=settings.api_limits, prices=settings.api_prices,
                           storage=storage_for(settings.redis_url)),
        api_data=ApiData(db, signals, whales),
        webhooks=webhooks, webhook_delivery=WebhookWorker(db, webhooks, notifier),
        market_board=MarketBoard(db, ttl=MARKET_BOARD_TTL),
        marketplace=marketplace, earnings=earnings, payouts=payouts, payout_job=PayoutJob(payouts, notifier),
        suspension=SuspensionRefunds(marketplace, refunds, notifier),
        provider_reminders=ProviderReminders(marketplace, ProviderNotices(db), notifier, settings.tz),
        ratings=RatingService(db),
    )
