"""CryptoPayProvider against the Crypto Pay stand-in, over real HTTP on localhost."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.cryptopay import CryptoPayStandIn, iso
from services.payments.base import InvoiceRequest, ProviderError, WebhookRejected
from services.payments.cryptopay import CryptoPayProvider
from tests.support import webhooks

TOKEN = "777:test-crypto-pay-token"
ASSETS = ["USDT", "BTC", "TON"]

clock, receiver = webhooks.clock, webhooks.receiver  # shared fixtures


@pytest.fixture
async def cp(receiver, clock):
    async with CryptoPayStandIn(TOKEN, receiver.url, clock=clock, webhook_retry_delays=(0.01,)) as standin:
        yield standin


@pytest.fixture
async def provider(cp, clock):
    p = CryptoPayProvider(TOKEN, cp.base_url, ASSETS, clock=clock)
    yield p
    await p.close()


def request(order_id: int = 42, cents: int = 999, ttl: int = 1800) -> InvoiceRequest:
    return InvoiceRequest(order_id=order_id, user_id=7, amount_cents=cents, title="100 AI tokens",
                          description="100 AI tokens for gpt-x", expires_in_seconds=ttl)


async def test_create_fetch_pay_fetch(cp, provider, clock):
    draft = await provider.create_invoice(request())
    assert draft.amount == Decimal("9.99") and isinstance(draft.amount, Decimal) and draft.asset == "USD"
    assert draft.expires_at == clock.now + timedelta(seconds=1800)
    assert draft.pay_url == cp.invoices[int(draft.external_id)]["bot_invoice_url"]
    sent = cp.calls_of("createInvoice")[0].params
    assert sent["currency_type"] == "fiat" and sent["fiat"] == "USD" and sent["amount"] == "9.99"
    assert sent["accepted_assets"] == "USDT,BTC,TON" and sent["payload"] == "42" and sent["expires_in"] == 1800
    assert sent["allow_comments"] is False and sent["allow_anonymous"] is False
    inv = cp.invoices[int(draft.external_id)]
    assert inv["accepted_assets"] == ASSETS and inv["allow_comments"] is False
    json.dumps(draft.raw)  # storable in a JSON column

    [remote] = await provider.fetch([draft.external_id])
    assert remote.external_id == draft.external_id and remote.state == "active" and remote.payments == ()

    clock.now += timedelta(minutes=3)
    cp.pay(draft.external_id, "TON")
    [remote] = await provider.fetch([draft.external_id])
    assert remote.state == "paid"
    [report] = remote.payments
    assert report.provider == "cryptopay" and report.invoice_id == draft.external_id
    assert report.payment_id == f"cryptopay:{draft.external_id}"
    assert report.amount == Decimal("9.99") and isinstance(report.amount, Decimal) and report.asset == "USD"
    assert report.usd_cents == 999 and report.paid_at == clock.now
    assert report.raw["paid_asset"] == "TON"
    [again] = (await provider.fetch([draft.external_id]))[0].payments
    assert again == report  # a repeat observation is the same payment


async def test_expired_and_unknown(cp, provider, clock):
    a = await provider.create_invoice(request(order_id=1, ttl=60))
    b = await provider.create_invoice(request(order_id=2))
    cp.expire(b.external_id)
    clock.now += timedelta(seconds=61)
    got = {r.external_id: r.state for r in await provider.fetch([a.external_id, b.external_id, "999999", "x"])}
    assert got == {a.external_id: "expired", b.external_id: "expired"}
    assert await provider.fetch([]) == []


async def test_fetch_batches_100_ids_per_request(cp, provider):
    drafts = [await provider.create_invoice(request(order_id=i)) for i in range(3)]
    cp.pay(drafts[1].external_id)
    ids = [d.external_id for d in drafts] + [str(5000 + i) for i in range(247)]
    remote = await provider.fetch(ids)
    calls = cp.calls_of("getInvoices")
    assert len(calls) == 3
    sizes = [len(str(c.params["invoice_ids"]).split(",")) for c in calls]
    assert sizes == [100, 100, 50]
    assert all(int(c.params["count"]) >= n for c, n in zip(calls, sizes, strict=True))
    assert {r.external_id: r.state for r in remote} == {
        drafts[0].external_id: "active", drafts[1].external_id: "paid", drafts[2].external_id: "active"}


async def test_webhook_from_the_stand_in_verifies(cp, provider, receiver):
    draft = await provider.create_invoice(request())
    cp.pay(draft.external_id)
    await cp.drain()
    [(headers, body)] = receiver.requests
    assert provider.webhook_invoice_ids(headers, body) == [draft.external_id]
    lower = {k.lower(): v for k, v in headers.items()}
    upper = {k.upper(): v for k, v in headers.items()}
    assert provider.webhook_invoice_ids(lower, body) == provider.webhook_invoice_ids(upper, body)


async def test_forged_webhooks_are_rejected(cp, provider, receiver, clock):
    draft = await provider.create_invoice(request())
    cp.pay(draft.external_id)
    await cp.drain()
    [(headers, body)] = receiver.requests
    sig = headers["crypto-pay-api-signature"]

    def update(**fields) -> bytes:
        base = {"update_id": 9, "update_type": "invoice_paid", "request_date": iso(clock.now),
                "payload": {"invoice_id": 5}}
        return json.dumps({**base, **fields}).encode()

    forged = update(payload={"invoice_id": 1})
    cases = [
        ({"crypto-pay-api-signature": "0" * 64}, body),  # forged signature
        ({"content-type": "application/json"}, body),  # missing header
        ({"crypto-pay-api-signature": sig}, body + b" "),  # body changed after signing
        ({"crypto-pay-api-signature": sig}, forged),  # replayed signature on another body
        ({"crypto-pay-api-signature": cp.sign("1:other-token", body)}, body),  # another app's token
        ({"crypto-pay-api-signature": "é" * 64}, body),  # non-ASCII header
        ({"crypto-pay-api-signature": cp.sign(TOKEN, b"not json")}, b"not json"),
        ({"crypto-pay-api-signature": cp.sign(TOKEN, b"[1]")}, b"[1]"),
        ({"crypto-pay-api-signature": cp.sign(TOKEN, update(request_date="2026-02-27T11:00:00.000Z"))},
         update(request_date="2026-02-27T11:00:00.000Z")),  # older than a day
        ({"crypto-pay-api-signature": cp.sign(TOKEN, update(payload={}))}, update(payload={})),
    ]
    for headers_, body_ in cases:
        with pytest.raises(WebhookRejected):
            provider.webhook_invoice_ids(headers_, body_)
    other = update(update_type="something_new")
    assert provider.webhook_invoice_ids({"Crypto-Pay-API-Signature": cp.sign(TOKEN, other)}, other) == []


async def test_errors_map_to_retryable_or_not(cp, provider):
    cp.down = True
    with pytest.raises(ProviderError) as err:
        await provider.create_invoice(request())
    assert err.value.retryable is True
    with pytest.raises(ProviderError) as err:
        await provider.fetch(["1001"])
    assert err.value.retryable is True
    cp.down = False

    cp.fail_next("getInvoices", 429)
    with pytest.raises(ProviderError) as err:
        await provider.fetch(["1001"])
    assert err.value.retryable is True

    cp.fail_next("createInvoice", 400, error="AMOUNT_TOO_SMALL")
    with pytest.raises(ProviderError, match="AMOUNT_TOO_SMALL") as err:
        await provider.create_invoice(request())
    assert err.value.retryable is False

    bad = CryptoPayProvider("1:wrong-token", cp.base_url, ASSETS)
    try:
        with pytest.raises(ProviderError, match="UNAUTHORIZED") as err:
            await bad.create_invoice(request())
        assert err.value.retryable is False and "wrong-token" not in str(err.value)
    finally:
        await bad.close()


async def test_unreachable_and_slow_provider_is_retryable(cp, clock):
    async with httpx.AsyncClient() as client:
        down = CryptoPayProvider(TOKEN, "http://127.0.0.1:9", ASSETS, client=client)
        with pytest.raises(ProviderError) as err:
            await down.fetch(["1"])
        assert err.value.retryable is True

        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(1)
            return web.json_response({"ok": True, "result": {}})

        app = web.Application()
        app.router.add_route("*", "/api/{method}", slow)
        server = TestServer(app)
        await server.start_server()
        try:
            hung = CryptoPayProvider(TOKEN, str(server.make_url("")), ASSETS, client=client, timeout=0.05)
            with pytest.raises(ProviderError, match="timed out") as err:
                await hung.get_me()
            assert err.value.retryable is True
            await hung.close()
        finally:
            await server.close()
        assert not client.is_closed  # a client we passed in stays ours


async def test_get_me_and_close(cp, caplog):
    p = CryptoPayProvider(TOKEN, cp.base_url, ASSETS, webhook_url_hint="https://bot.example/webhooks/cryptopay")
    with caplog.at_level("INFO"):
        me = await p.get_me()
    assert me["name"] == cp.app_name
    assert "https://bot.example/webhooks/cryptopay" in caplog.text and TOKEN not in caplog.text
    assert TOKEN not in repr(p)
    await p.close()
    assert p._http.client.is_closed
