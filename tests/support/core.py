"""The payment core assembled as the app assembles it, with a virtual clock and a recording bot."""

from __future__ import annotations

from datetime import timedelta

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties

from bot.i18n import build_i18n
from db.engine import Database
from processing.delivery import BotDeliverer
from processing.fulfilment import FulfilmentWorker
from processing.notify import Notifier
from processing.payments import PaymentProcessor
from services.orders import OrderService
from services.users import UserService
from tests.conftest import ADMIN_ID, make_settings
from tests.support.clock import Clock
from tests.support.payments import RecordingProduct, ScriptedProvider
from tests.support.recording import RecordingSession

ADMIN = ADMIN_ID


class Core:
    def __init__(self, database: Database) -> None:
        self.db = database
        self.clock = Clock()
        self.session = RecordingSession()
        self.bot = Bot(make_settings().telegram_bot_token.get_secret_value(), session=self.session,
                       default=DefaultBotProperties(parse_mode="HTML"))
        self.users = UserService(database, clock=self.clock)
        self.orders = OrderService(database, clock=self.clock)
        self.provider = ScriptedProvider(self.clock)
        self.product = RecordingProduct()
        self.notifier = Notifier(self.bot, self.users, build_i18n(), [ADMIN])
        self.restart()

    def restart(self) -> None:
        """A new process: fresh worker and processor, nothing kept in memory but the database."""
        self.worker = FulfilmentWorker(self.db, self.orders, {"test": self.product}, BotDeliverer(self.notifier),
                                       clock=self.clock, base_delay=1, max_attempts=4)
        self.processor = PaymentProcessor(self.orders, {self.provider.name: self.provider}, self.notifier,
                                          self.worker)

    async def user(self, user_id: int) -> None:
        await self.users.seen(user_id, username=None, first_name="U", language_code="en")

    async def order(self, user_id: int = 1, cents: int = 999, ttl_minutes: int = 30):
        await self.user(user_id)
        return await self.orders.create(user_id=user_id, product="test", product_ref="item", title="Test item",
                                        amount_cents=cents, ttl=timedelta(minutes=ttl_minutes))

    async def invoice(self, order, provider=None):
        from services.payments.base import InvoiceRequest

        provider = provider or self.provider
        draft = await provider.create_invoice(InvoiceRequest(
            order.id, order.user_id, order.amount_cents, order.title, "desc",
            int((order.expires_at - self.clock()).total_seconds())))
        await self.orders.add_invoice(order.id, provider=provider.name, external_id=draft.external_id,
                                      amount=draft.amount, asset=draft.asset, expires_at=draft.expires_at,
                                      pay_url=draft.pay_url)
        return draft.external_id

    async def drain(self) -> None:
        """Run the worker until nothing is due (advancing past backoffs and leases)."""
        for _ in range(50):
            if not await self.worker.run_once():
                self.clock.advance(minutes=10)
                if not await self.worker.run_once():
                    return
