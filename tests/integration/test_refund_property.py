"""Property (issue 14): the payment core with refunds of every product. Whatever the order of payment,
fulfilment, crashes, refunds, provider faults and retries: after a refund nothing of the product
remains usable (the test product's effect is withdrawn, the plan's time is gone, the AI key answers
no more), each payment is owed back exactly once, and money a provider sends back is sent once
(a retried transfer reuses its spend id) — never reported sent when it was not."""

import asyncio
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from db import migrate
from db.engine import Database
from db.models_refunds import RefundRequest
from presentation.ai_tokens import AiTokenTexts
from presentation.plans import PlanTexts
from processing.delivery import BotDeliverer
from processing.fulfilment import FulfilmentWorker
from processing.refunds import SENT, RefundService
from sandbox.openrouter import OpenRouterStandIn
from services.ai_tokens import AiTokenFulfiller, key_name
from services.channel import PrivateChannel
from services.openrouter import OpenRouterClient
from services.payments.base import ProviderError
from services.plan_sales import PlanFulfiller
from services.subscriptions import SubscriptionService
from services.vault import SecretVault
from tests.conftest import ADMIN_ID
from tests.support.core import Core
from tests.support.payments import ScriptedProvider

PRODUCTS = ("test", "plan", "ai_tokens")
ACTIONS = st.sampled_from(["pay", "work", "refund", "crash_mid_fulfilment", "restart", "sweep",
                           "provider_loses_answer", "provider_down", "provider_up", "openrouter_down",
                           "openrouter_up", "flaky_product"])
STEPS = st.lists(st.tuples(ACTIONS, st.integers(0, len(PRODUCTS) - 1)), max_size=25)


class PayingBackProvider(ScriptedProvider):
    """A provider that pays back by API, like Crypto Pay's transfer: once per spend id."""

    def __init__(self, clock) -> None:
        super().__init__(clock, name="paysback")
        self.sent: dict[str, tuple[int, Decimal]] = {}  # spend id -> (user, amount)
        self.lose_next_answer = False

    def payback_terms(self, payment, amount):
        return payment.asset, amount

    async def pay_back(self, payment, *, user_id, asset, amount, spend_id, comment) -> str:
        if self.down:
            raise ProviderError("provider down")
        self.sent.setdefault(spend_id, (user_id, amount))  # the provider accepts a spend id once
        if self.lose_next_answer:  # sent, but the answer never reached us
            self.lose_next_answer = False
            raise ProviderError("timed out")
        return f"transfer {spend_id}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
@example(steps=[("pay", 0), ("pay", 1), ("pay", 2), ("work", 0), ("refund", 0), ("refund", 1), ("refund", 2)])
@example(steps=[("pay", 2), ("pay", 1), ("refund", 2), ("refund", 1), ("work", 0)])  # refunded before delivery
@example(steps=[("pay", 0), ("work", 0), ("provider_loses_answer", 0), ("refund", 0), ("sweep", 0)])
@example(steps=[("pay", 2), ("crash_mid_fulfilment", 0), ("openrouter_down", 0), ("refund", 2), ("restart", 0)])
def test_after_a_refund_nothing_of_the_product_remains_usable(steps):
    asyncio.run(scenario(steps))


async def scenario(steps) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'r.db'}")
        await migrate.upgrade(db)
        try:
            async with OpenRouterStandIn(credits=Decimal("50")) as openrouter:
                await play(Core(db), openrouter, steps)
        finally:
            await db.close()


async def play(core: Core, openrouter: OpenRouterStandIn, steps) -> None:
    provider = PayingBackProvider(core.clock)
    core.provider = provider
    client = OpenRouterClient(openrouter.base_url, openrouter.management_key)
    subscriptions = SubscriptionService(core.db, clock=core.clock)
    channel = PrivateChannel(core.bot, None, clock=core.clock)
    fulfillers = {"test": core.product, "plan": PlanFulfiller(subscriptions, channel, PlanTexts(core.clock().tzinfo)),
                  "ai_tokens": AiTokenFulfiller(client, SecretVault(core.db, openrouter.management_key),
                                                AiTokenTexts())}
    await core.user(ADMIN_ID)

    def restart():
        core.restart()
        core.worker = FulfilmentWorker(core.db, core.orders, fulfillers, BotDeliverer(core.notifier),
                                       clock=core.clock, base_delay=1, max_attempts=4)
        return RefundService(core.db, core.orders, core.notifier, {provider.name: provider}, fulfillers,
                             clock=core.clock)

    refunds = restart()
    orders, invoices, paid, refunded = [], [], set(), set()
    for i, product in enumerate(PRODUCTS):
        await core.user(200 + i)
        ref = {"test": "item", "plan": "pro:month", "ai_tokens": "openai/gpt-4o-mini"}[product]
        order = await core.orders.create(
            user_id=200 + i, product=product, product_ref=ref, title=product, amount_cents=300 + i,
            ttl=timedelta(minutes=30),
            details={"plan": "pro", "period": "month", "days": 30, "model": "openai/gpt-4o-mini",
                     "tokens": 1000, "base_usd": "0.0006"})
        orders.append(order)
        invoices.append(await core.invoice(order))

    try:
        for action, i in steps:
            if action == "pay" and i not in paid:
                provider.pay(invoices[i])
                await core.processor.poll()
                paid.add(i)
            elif action == "work":
                await core.worker.run_once()
            elif action == "refund" and i in paid:
                result = await refunds.refund(orders[i].id, admin_id=ADMIN_ID)
                if result.ok:
                    refunded.add(i)
            elif action == "crash_mid_fulfilment":
                due = await core.worker._due(1)
                if due and await core.worker._claim(due[0][0]):
                    refunds = restart()
            elif action == "restart":
                refunds = restart()
                await core.worker.recover()
            elif action == "sweep":
                await refunds.sweep()
            elif action == "provider_loses_answer":
                provider.lose_next_answer = True
            elif action in ("provider_down", "provider_up"):
                provider.down = action == "provider_down"
            elif action in ("openrouter_down", "openrouter_up"):
                openrouter.down = action == "openrouter_down"
            elif action == "flaky_product":
                core.product.fail_next += 1

        # Let everything settle, as a running bot would (the retry job runs every minute).
        provider.down = openrouter.down = False
        core.product.fail_next = 0
        provider.lose_next_answer = False
        core.clock.advance(hours=1)
        await core.drain()
        await refunds.sweep()
        core.clock.advance(minutes=5)
        await refunds.sweep()

        keys = await client.keys()
        for i, order in enumerate(orders):
            order = await core.orders.get(order.id)
            async with core.db.session() as session:
                owed = list(await session.scalars(select(RefundRequest).where(RefundRequest.order_id == order.id)))
            if i not in refunded:
                assert order.status != "refunded" and owed == []
                continue
            assert order.status == "refunded"
            [request] = owed  # one payment, owed back once
            assert request.state == SENT and request.amount == Decimal(300 + i) / 100
            assert provider.sent[request.spend_id] == (order.user_id, request.amount)
            if order.product == "test":
                assert order.id in core.product.revoked
            elif order.product == "plan":
                assert not (await subscriptions.current(order.user_id)).plan.is_paid
            else:
                live = [k for k in keys if k.name == key_name(order.id) and not k.disabled]
                assert live == [], live
                async with httpx.AsyncClient() as http:  # and no key made for it answers
                    for key in openrouter.keys.values():
                        if key.name == key_name(order.id):
                            answer = await http.post(f"{openrouter.base_url}/chat/completions",
                                                     headers={"Authorization": f"Bearer {key.secret}"},
                                                     json={"model": "openai/gpt-4o-mini", "max_tokens": 5,
                                                           "messages": [{"role": "user", "content": "hi"}]})
                            assert answer.status_code == 401
        assert len(provider.sent) == len(refunded)  # nothing sent twice or for an order not refunded
    finally:
        await client.close()
