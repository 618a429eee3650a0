"""The real app's HTTP surface, every POST endpoint switched on, for hardening tests.

`http_app(database_url)` starts the in-process App (webhook mode, ingest on, Crypto Pay and KryptoExpress
configured against their local stand-ins) behind a real aiohttp server and yields an `Endpoints` that
signs a body the way each endpoint's sender would (or forges it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from db.base import Base
from db.models_api import ApiKey
from processing.ingest_auth import signed_headers
from sandbox.cryptopay import CryptoPayStandIn
from sandbox.kryptoexpress import KryptoExpressStandIn
from services.api_keys import key_hash, new_key
from services.marketplace import Application, Review
from tests.conftest import make_settings
from tests.support.harness import Harness

INGEST_SECRET = "ingest-secret"
TELEGRAM_SECRET = "tg-webhook-secret"
CRYPTO_PAY_TOKEN = "4242:AAcryptopaytesttoken"
KE_KEY = "ke-api-key"
KE_SECRET = "ke-callback-secret"

#: Every POST endpoint, with a path to reach it by.
ENDPOINTS = {
    "/webhooks/cryptopay": "/webhooks/cryptopay",
    "/webhooks/kryptoexpress": "/webhooks/kryptoexpress",
    "/api/signals": "/api/signals",
    "/api/signals/{id}/events": "/api/signals/ext-1/events",
    "/api/whales/trades": "/api/whales/trades",
    "/telegram/webhook": "/telegram/webhook",
    "/api/v1/webhook/secret": "/api/v1/webhook/secret",
    "/api/v1/datasets/{id}/purchases": "/api/v1/datasets/signals/purchases",
    "/api/v1/provider/signals": "/api/v1/provider/signals",
    "/api/v1/provider/signals/{id}/events": "/api/v1/provider/signals/ext-1/events",
}
API_KEY = new_key()  # a developer-API key of API_USER (an approved marketplace provider), stored by http_app
API_USER = 4242


def authentic_headers(route: str, path: str, body: bytes) -> dict[str, str]:
    """The headers the legitimate sender of ``route`` would send with ``body``."""
    if route == "/webhooks/cryptopay":
        key = hashlib.sha256(CRYPTO_PAY_TOKEN.encode()).digest()
        return {"crypto-pay-api-signature": hmac.new(key, body, hashlib.sha256).hexdigest()}
    if route == "/webhooks/kryptoexpress":
        return {"X-Signature": hmac.new(KE_SECRET.encode(), body, hashlib.sha512).hexdigest()}
    if route == "/telegram/webhook":
        return {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    if route.startswith("/api/v1/"):
        return {"Authorization": f"Bearer {API_KEY}"}
    return signed_headers(INGEST_SECRET, body)


def forged_headers(route: str) -> dict[str, str]:
    """Headers of the right shape and a wrong secret."""
    if route == "/webhooks/cryptopay":
        return {"crypto-pay-api-signature": "0" * 64}
    if route == "/webhooks/kryptoexpress":
        return {"X-Signature": "0" * 128}
    if route == "/telegram/webhook":
        return {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
    if route.startswith("/api/v1/"):
        return {"Authorization": f"Bearer {new_key()}"}
    return signed_headers("not-the-secret", b"")


@dataclass
class Endpoints:
    h: Harness
    client: TestClient
    cryptopay: CryptoPayStandIn
    kryptoexpress: KryptoExpressStandIn

    async def post(self, route: str, body: bytes, *, signed: bool = True, path: str | None = None,
                   headers: dict[str, str] | None = None, stream: Any = None) -> tuple[int, bytes]:
        """POST ``body`` (or ``stream``, chunked, signed as ``body``) to ``route``: status and raw answer."""
        path = path or ENDPOINTS[route]
        sent = authentic_headers(route, path, body) if signed else forged_headers(route)
        sent.update(headers or {})
        response = await self.client.post(path, data=body if stream is None else stream, headers=sent)
        answer = response.status, await response.read()
        if route == "/telegram/webhook":  # aiogram handles the update in a background task: let it finish
            await asyncio.gather(*self._telegram_tasks())
        return answer

    def _telegram_tasks(self) -> set[asyncio.Task]:
        for route in self.h.app.web.router.routes():
            if route.resource is not None and route.resource.canonical == "/telegram/webhook":
                return set(route.handler.__self__._background_feed_update_tasks)
        return set()

    async def row_counts(self) -> dict[str, int]:
        """Rows in every table."""
        async with self.h.db.session() as session:
            return {table.name: await session.scalar(select(func.count()).select_from(table))
                    for table in Base.metadata.sorted_tables}


@asynccontextmanager
async def http_app(database_url: str, **overrides) -> AsyncIterator[Endpoints]:
    async with CryptoPayStandIn(CRYPTO_PAY_TOKEN) as cryptopay, KryptoExpressStandIn(KE_KEY) as kryptoexpress:
        settings = make_settings(
            database_url=database_url, signal_webhook_secret=INGEST_SECRET,
            crypto_pay_token=CRYPTO_PAY_TOKEN, crypto_pay_api_url=cryptopay.base_url,
            krypto_express_api_key=KE_KEY, krypto_express_api_url=kryptoexpress.api_url,
            krypto_express_callback_secret=KE_SECRET,
            telegram_webhook_url="https://bot.example.com/telegram/webhook",
            telegram_webhook_secret=TELEGRAM_SECRET, **overrides)
        h = await Harness(settings).start()
        try:
            await h.users.seen(API_USER, username=None, first_name="Dev", language_code="en")
            async with h.db.transaction() as session:
                session.add(ApiKey(user_id=API_USER, name="hardening", key_hash=key_hash(API_KEY),
                                   prefix=API_KEY[:8], permissions=[]))
            provider = await h.app.marketplace.apply(API_USER, Application(  # so its key may publish
                name="Hardening", description="d", ecosystems=("crypto",), price_cents=1000,
                payout_method="telegram"))
            await h.app.marketplace.review(provider.id, Review.APPROVE, admin_id=1)
            async with TestClient(TestServer(h.app.web)) as client:
                yield Endpoints(h, client, cryptopay, kryptoexpress)
        finally:
            await h.close()
