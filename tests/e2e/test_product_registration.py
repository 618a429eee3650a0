"""A product is one registration (issue 15): a "report" product defined only in this test, registered
through `services.products.registered`, is in the command menu, /help and the main menu, is sold end
to end through every payment provider of the sandbox (Telegram Stars, Crypto Pay, KryptoExpress),
shows its live state in /orders and its figures in /stats and on /metrics. No other module knows it.

This file is CONTRIBUTING.md's worked example of "Add a product"."""

from datetime import timedelta

import pytest
from aiogram import F, Router
from aiogram.filters import Command as CommandFilter
from aiogram.types import CallbackQuery, Message
from prometheus_client import REGISTRY

from bot.keyboards import Menu
from bot.wiring import Services
from db.models import Order
from handlers.user.checkout import offer_payment
from processing.metrics_job import refresh_today
from sandbox.runner import running_sandbox
from services.orders import Status
from services.products import Command, Delivery, MenuEntry, Product, ProductParts, TakenBack, registered

ADMIN = 1000
PRICE_CENTS = 150  # KryptoExpress takes $1 or more


class ReportFulfiller:
    """Delivers the weekly whale report (a link made from the order id); a refund switches it off."""

    product = "report"

    def __init__(self) -> None:
        self.revoked: set[int] = set()

    async def fulfil(self, order: Order) -> Delivery:
        link = f"https://reports.example/weekly/{order.id}"
        return Delivery(text=lambda: f"📄 Your whale report is ready: {link}", record={"link": link})

    def takes_back(self, order: Order) -> str:
        return "the report link is switched off"

    async def revoke(self, order: Order) -> TakenBack:
        self.revoked.add(order.id)
        return TakenBack(text=lambda: "the report link is switched off", record={"link": "off"})


def report_router() -> Router:
    router = Router(name="report")

    async def sell(message: Message, user_id: int, services: Services,
                   edit: bool) -> None:
        order = await services.orders.create(user_id=user_id, product="report", product_ref="weekly",
                                    title="Weekly whale report", amount_cents=PRICE_CENTS, ttl=timedelta(hours=1))
        await offer_payment(message, order, services.checkout, edit=edit)

    @router.message(CommandFilter("report"))
    async def report_command(message: Message, services: Services):
        await sell(message, message.from_user.id, services, edit=False)

    @router.callback_query(Menu.filter(F.section == "report"))
    async def report_menu(query: CallbackQuery, services: Services):
        await sell(query.message, query.from_user.id, services, edit=True)
        await query.answer()

    return router


def report_product(parts: ProductParts) -> Product:
    """The whole registration: built from the app's services like the built-in products."""

    async def order_lines(orders: list[Order]) -> dict[int, list[str]]:
        return {o.id: [f"📄 Report: {o.delivery['link']}"] for o in orders
                if o.product == "report" and o.status == Status.FULFILLED and o.delivery}

    return Product(
        id="report", name="Whale report", fulfiller=ReportFulfiller(), order_lines=order_lines,
        menu=MenuEntry("report", "📄 Whale report"),
        commands=(Command("report", "Weekly whale report", help="/report — the weekly whale report"),),
        router=report_router)


@pytest.fixture
async def sb(tmp_path):
    with registered(report_product):
        async with running_sandbox(tmp_path, admin_ids=[ADMIN], payment_poll_interval_seconds=1) as sandbox:
            yield sandbox


def newest(sb, chat_id: int, fragment: str, after: int = 0):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True)
                 if fragment in m.get("text", "") and m["message_id"] > after]
        return found[-1] if found else None
    return check


def last_id(sb, chat_id: int) -> int:
    return max([m["message_id"] for m in sb.telegram.chat_messages(chat_id)], default=0)


async def choose(sb, buyer: int, method: str, *, via_menu: bool):
    sb.telegram.add_user(buyer, "Buyer")
    if via_menu:
        sb.telegram.send_text(buyer, "/start")
        start = await sb.telegram.wait_for(newest(sb, buyer, "Choose what you need"))
        labels = [b["text"] for row in start["reply_markup"]["inline_keyboard"] for b in row]
        assert labels[:6] == ["🤖 AI tokens", "📈 Signal plans", "🔌 Developer API", "📦 Datasets",
                              "🏪 Signal marketplace", "📄 Whale report"]
        sb.telegram.press_button(buyer, "📄 Whale report")
    else:
        sb.telegram.send_text(buyer, "/report")
    await sb.telegram.wait_for(newest(sb, buyer, "Choose how to pay"))
    sb.telegram.press_button(buyer, method)
    await sb.telegram.wait_for(newest(sb, buyer, "accept our terms"))
    sb.telegram.press_button(buyer, "I accept")
    [order] = await sb.app.orders.for_user(buyer)
    assert (order.product, order.amount_cents) == ("report", PRICE_CENTS)
    return order


async def delivered(sb, buyer: int, order_id: int) -> dict:
    message = await sb.telegram.wait_for(newest(sb, buyer, "Your whale report is ready"), timeout=10)
    assert f"Receipt: order #{order_id}" in message["text"]

    async def fulfilled():
        return (await sb.app.orders.get(order_id)).status == Status.FULFILLED
    await sb.telegram.wait_for(fulfilled)
    return message


async def pay_with_stars(sb, buyer: int) -> int:
    order = await choose(sb, buyer, "Telegram Stars", via_menu=True)
    invoice = await sb.telegram.wait_for(lambda: next((m for m in sb.telegram.chat_messages(buyer, bot_only=True)
                                                       if "invoice" in m), None))
    paid = await sb.telegram.pay_invoice(buyer, invoice["message_id"])
    assert paid["ok"], paid
    await delivered(sb, buyer, order.id)
    return order.id


async def pay_outside_telegram(sb, buyer: int, method: str, shown: str, stand_in) -> int:
    """Crypto Pay or KryptoExpress: the buyer pays on the provider's side; its signed webhook follows."""
    order = await choose(sb, buyer, method, via_menu=False)
    await sb.telegram.wait_for(newest(sb, buyer, shown))
    [invoice] = await sb.app.orders.invoices(order.id)
    stand_in.pay(invoice.external_id)
    await delivered(sb, buyer, order.id)
    return order.id


async def test_a_product_registered_in_a_test_is_listed_sold_through_every_provider_and_counted(sb):
    commands = [c for c in sb.telegram.calls_of("setMyCommands") if "scope" not in c.params
                or c.params["scope"].get("type") == "default"]
    names = [c["command"] for c in commands[-1].params["commands"]]
    assert names[:9] == ["start", "tokens", "plans", "signals", "api", "data", "market", "provider", "signal"]
    assert names[9] == "report"
    assert dict((c["command"], c["description"]) for c in commands[-1].params["commands"])["report"] == \
        "Weekly whale report"

    sb.telegram.add_user(701, "Buyer")
    sb.telegram.send_text(701, "/help")
    help_text = (await sb.telegram.wait_for(newest(sb, 701, "How it works")))["text"]
    assert "/report — the weekly whale report" in help_text
    assert help_text.index("/api") < help_text.index("/report") < help_text.index("/whales")

    order_ids = [await pay_with_stars(sb, 701),
                 await pay_outside_telegram(sb, 702, "Crypto Pay", "with the button below", sb.cryptopay),
                 await pay_outside_telegram(sb, 703, "USDT TRC20 on-chain", "Send exactly", sb.kryptoexpress)]
    orders = [await sb.app.orders.get(i) for i in order_ids]
    assert [o.provider for o in orders] == ["stars", "cryptopay", "kryptoexpress"]

    after = last_id(sb, 702)
    sb.telegram.send_text(702, "/orders")
    shown = (await sb.telegram.wait_for(newest(sb, 702, "Your orders", after)))["text"]
    assert f"#{order_ids[1]} · Weekly whale report · $1.50" in shown
    assert f"📄 Report: https://reports.example/weekly/{order_ids[1]}" in shown

    await refresh_today(sb.app.db, sb.app.products.ids, sb.app.settings.tz)
    assert REGISTRY.get_sample_value("product_orders_today", {"product": "report"}) == 3
    assert REGISTRY.get_sample_value("product_delivery_success_ratio_today", {"product": "report"}) == 1

    sb.telegram.add_user(ADMIN, "Admin")
    sb.telegram.send_text(ADMIN, "/stats")
    stats = (await sb.telegram.wait_for(newest(sb, ADMIN, "30 days by product")))["text"]
    assert "Whale report $4.50" in stats
