"""A payment provider is one module: nothing else names it, and one defined only here (plus its line in
the registry) is offered at checkout with its label and minimum, paid through its own webhook route, and
named in receipts — without touching any other module."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from config.settings import Settings
from db.base import utcnow
from handlers.user.checkout import PayWith, payment_options
from presentation.texts import provider_name
from services.orders import Status
from services.payments import registry
from services.payments.base import Method, Wiring
from tests.conftest import make_settings
from tests.support.harness import Harness
from tests.support.payments import ScriptedProvider

ROOT = Path(__file__).resolve().parents[2]
APP_CODE = ("bot", "handlers", "services", "processing", "presentation")  # sandbox/ and tests/ are exempt
#: Each provider's names: its id, display names, how its code and methods are spelled.
NAMES = {
    "stars": r"""["']stars["']|Telegram Stars|StarsProvider|payments\.stars\b|payments import stars\b""",
    "cryptopay": r"(?i:cryptopay)|Crypto Pay|CryptoBot",
    "kryptoexpress": r"(?i:kryptoexpress)|kx-",
}
#: Besides each provider's own module: the list of providers, and the settings that enable them.
ALLOWED = {"services/payments/registry.py", "config/settings.py"}


def test_no_provider_is_named_outside_its_module_and_the_registry():
    modules = {cls.name: cls.__module__.replace(".", "/") + ".py" for cls in registry.PROVIDERS}
    assert set(modules) == set(NAMES), "a new provider: add its names to NAMES"
    found = []
    for top in APP_CODE:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for provider, pattern in NAMES.items():
                    if rel != modules[provider] and re.search(pattern, line):
                        found.append(f"{rel}:{number}: names {provider}: {line.strip()}")
    assert not found, "provider names outside their module and the registry:\n" + "\n".join(found)


class ToyPay(ScriptedProvider):
    """A provider that exists only in this test: USD invoices with a pay link, a $3 minimum, a webhook."""

    name = "toypay"
    minimum_cents = 300
    webhook_max_bytes = 1024

    @classmethod
    def title(cls) -> str:
        return "Toy Pay"

    @classmethod
    def from_settings(cls, settings: Settings, wiring: Wiring) -> ToyPay | None:
        return cls(utcnow, name=cls.name)

    def method_label(self, method: Method, amount_cents: int) -> str:
        return f"🧸 Toy Pay (${amount_cents / 100:.2f})"


@pytest.fixture
async def shop(database_url, monkeypatch):
    monkeypatch.setattr(registry, "PROVIDERS", (*registry.PROVIDERS, ToyPay))  # the one line in the registry
    h = await Harness(make_settings(database_url=database_url)).start()
    yield h
    await h.close()


async def order_for(h, user_id: int, cents: int):
    await h.users.seen(user_id, username=None, first_name="Buyer", language_code="en")
    await h.users.accept_terms(user_id)
    return await h.app.orders.create(user_id=user_id, product="ai_tokens", product_ref="m", title="5,000 tokens",
                                     amount_cents=cents, ttl=timedelta(minutes=30), details={"base_usd": "1"})


def buttons(markup) -> list[str]:
    return [button.text for row in markup.inline_keyboard for button in row]


async def test_a_provider_added_in_one_module_is_offered_paid_and_named(shop):
    cheap, order = await order_for(shop, 1, 250), await order_for(shop, 1, 999)
    with shop.app.i18n.context(), shop.app.i18n.use_locale("en"):
        assert buttons(payment_options(order, shop.app.checkout)) == [
            "⭐ Telegram Stars (769 ⭐)", "🧸 Toy Pay ($9.99)", "✖️ Cancel order"]
        assert "🧸 Toy Pay ($2.50)" not in buttons(payment_options(cheap, shop.app.checkout))  # under its minimum
        assert provider_name("toypay") == "Toy Pay"

    await shop.press(1, PayWith(order_id=order.id, method="toypay").pack())
    [invoice] = await shop.app.orders.invoices(order.id)
    assert "Pay $9.99 with the button below." in shop.session.of("EditMessageText")[-1].text

    provider = shop.app.providers["toypay"]
    provider.pay(invoice.external_id)
    async with TestClient(TestServer(shop.app.web)) as client:
        body = json.dumps({"invoice_id": invoice.external_id})
        forged = await client.post("/webhooks/toypay", data=body, headers={"x-test-signature": "no"})
        assert forged.status == 401
        assert (await shop.app.orders.get(order.id)).status == Status.PENDING
        signed = await client.post("/webhooks/toypay", data=body, headers={"x-test-signature": "ok"})
        assert signed.status == 200
        too_big = await client.post("/webhooks/toypay", data="x" * 2048, headers={"x-test-signature": "ok"})
        assert too_big.status == 413  # its own body cap
    assert (await shop.app.orders.get(order.id)).status == Status.PAID
