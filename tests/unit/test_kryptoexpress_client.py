"""KryptoExpressProvider against the KryptoExpress stand-in, over real HTTP on localhost."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from aiohttp import web

from db.models import User
from sandbox.kryptoexpress import KryptoExpressStandIn
from services.orders import OrderService, Status
from services.payments.base import InvoiceRequest, ProviderError, RemoteInvoice, WebhookRejected
from services.payments.kryptoexpress import CONCURRENCY, KryptoExpressProvider
from tests.support import webhooks

KEY = "test-ke-key"
SECRET = "our-callback-secret"

clock, receiver = webhooks.clock, webhooks.receiver  # shared fixtures


class InFlight:
    """aiohttp middleware on the stand-in: counts concurrent API requests (each held for a moment)."""

    def __init__(self) -> None:
        self.now = self.peak = 0

        @web.middleware
        async def middleware(request: web.Request, handler):
            self.now += 1
            self.peak = max(self.peak, self.now)
            try:
                await asyncio.sleep(0.005)
                return await handler(request)
            finally:
                self.now -= 1

        self.middleware = middleware


@pytest.fixture
def inflight():
    return InFlight()


@pytest.fixture
async def ke(clock, inflight):
    standin = KryptoExpressStandIn(KEY, clock=clock, callback_retry_delays=(0.01,))
    standin.app.middlewares.append(inflight.middleware)
    async with standin:
        yield standin


@pytest.fixture
async def provider(ke, receiver, clock):
    p = KryptoExpressProvider(KEY, ke.api_url, SECRET, callback_url=receiver.url, clock=clock)
    yield p
    await p.close()


def request(cents: int = 2500, asset: str | None = None, order_id: int = 42) -> InvoiceRequest:
    return InvoiceRequest(order_id=order_id, user_id=7, amount_cents=cents, title="Pro plan",
                          description="30 days", expires_in_seconds=1800, asset=asset)


async def fetch_one(provider: KryptoExpressProvider, pay_hash: str) -> RemoteInvoice:
    [remote] = await provider.fetch([pay_hash])
    return remote


async def test_create_sends_exact_amount_and_our_secret(ke, provider, clock, receiver):
    draft = await provider.create_invoice(request(cents=999))
    stored = ke.payments[draft.external_id]
    assert draft.asset == "USDT_TRC20" and draft.amount == Decimal("9.99") == stored.crypto_amount
    assert isinstance(draft.amount, Decimal) and draft.address == stored.address
    assert draft.expires_at == clock.now + timedelta(hours=2) and draft.pay_url is None
    assert stored.fiat_amount == Decimal("9.99") and stored.callback_secret == SECRET
    assert stored.callback_url == receiver.url
    sent = ke.calls_of("POST /payment")[0].params
    assert sent["fiatAmount"] == Decimal("9.99") and sent["paymentType"] == "PAYMENT"
    json.dumps(draft.raw)  # storable in a JSON column

    btc = await provider.create_invoice(request(cents=100_00, asset="BTC"))
    assert btc.asset == "BTC" and btc.amount == Decimal("0.00153847")  # 100 / 65000, rounded up
    assert btc.amount == ke.payments[btc.external_id].crypto_amount and btc.address.startswith("bc1q")


async def test_partial_then_top_ups_then_paid_report_the_running_total(ke, provider, clock):
    draft = await provider.create_invoice(request(cents=2500))  # 25 USDT_TRC20
    h = draft.external_id
    remote = await fetch_one(provider, h)
    assert remote.state == "active" and remote.payments == ()

    for paid, total, state in (("10", "10", "partial"), ("5.5", "15.5", "partial"), (None, "25", "paid")):
        clock.now += timedelta(minutes=5)
        ke.pay(h, paid)
        for _ in range(2):  # a repeat observation reports the same total
            remote = await fetch_one(provider, h)
            [report] = remote.payments
            assert remote.state == state and report.cumulative
            assert report.payment_id == f"kryptoexpress:{h}" and report.amount == Decimal(total)
    assert report.usd_cents == 2500 and report.paid_at == clock.now
    json.dumps(report.raw)


async def test_paid_at_once_and_over_payment(ke, provider):
    exact = await provider.create_invoice(request(cents=1000))
    ke.pay(exact.external_id)
    [report] = (await fetch_one(provider, exact.external_id)).payments
    assert report.amount == Decimal("10") and report.usd_cents == 1000

    over = await provider.create_invoice(request(cents=1000))
    ke.pay(over.external_id, ke.amounts(over.external_id)["more"])  # 11
    [report] = (await fetch_one(provider, over.external_id)).payments
    assert report.amount == Decimal("11")
    ke.pay(over.external_id, "0.25")  # still more money after it was paid
    [report] = (await fetch_one(provider, over.external_id)).payments
    assert report.amount == Decimal("11.25")


async def test_expired_unknown_and_late(ke, provider, clock):
    draft = await provider.create_invoice(request())
    clock.now += timedelta(hours=2)
    got = await provider.fetch([draft.external_id, "0" * 64])
    assert [(r.external_id, r.state) for r in got] == [(draft.external_id, "expired")]
    ke.pay(draft.external_id)  # on-chain money cannot be refused: it arrives late
    remote = await fetch_one(provider, draft.external_id)
    assert remote.state == "paid" and remote.payments[0].paid_at == clock.now
    assert await provider.fetch([]) == []


async def test_fetch_runs_at_most_ten_requests_at_once(ke, provider, inflight):
    drafts = await asyncio.gather(*(provider.create_invoice(request(order_id=i)) for i in range(25)))
    inflight.peak = 0
    got = await provider.fetch([d.external_id for d in drafts])
    assert len(got) == 25 and {r.state for r in got} == {"active"}
    assert len(ke.calls_of("GET /payment")) == 25
    assert 1 < inflight.peak <= CONCURRENCY


async def test_callback_signatures(ke, provider, receiver):
    draft = await provider.create_invoice(request())
    ke.pay(draft.external_id, "1")
    await ke.drain()
    [(headers, body)] = receiver.requests
    assert provider.webhook_invoice_ids(headers, body) == [draft.external_id]
    # the same record re-serialised (pretty-printed) still verifies: the signature is over compact JSON
    pretty = json.dumps(json.loads(body), indent=2).encode()  # as the docs' example re-reads it
    assert pretty != body
    assert provider.webhook_invoice_ids({"x-signature": headers["X-Signature"]}, pretty) == [draft.external_id]

    record = json.loads(body)
    forged = json.dumps({**record, "isPaid": True}, separators=(",", ":")).encode()
    cases = [
        ({"X-Signature": "0" * 128}, body),
        ({"Content-Type": "application/json"}, body),
        ({"X-Signature": headers["X-Signature"]}, forged),  # replayed signature on another body
        ({"X-Signature": ke.sign("someone-else", record)}, body),
        ({"X-Signature": "é" * 128}, body),
        ({"X-Signature": ke.sign(SECRET, {"isPaid": True})}, b'{"isPaid":true}'),  # signed but no hash
        ({"X-Signature": headers["X-Signature"]}, b"not json"),
    ]
    for h, b in cases:
        with pytest.raises(WebhookRejected):
            provider.webhook_invoice_ids(h, b)

    no_secret = KryptoExpressProvider(KEY, ke.api_url, None)
    try:
        with pytest.raises(WebhookRejected, match="no KryptoExpress callback secret"):
            no_secret.webhook_invoice_ids(headers, body)
        # polling still works without a secret
        assert (await fetch_one(no_secret, draft.external_id)).state == "partial"
    finally:
        await no_secret.close()


async def test_errors_map_to_retryable_or_not(ke, provider, receiver):
    draft = await provider.create_invoice(request())
    ke.down = True
    for call in (provider.create_invoice(request()), provider.fetch([draft.external_id])):
        with pytest.raises(ProviderError) as err:
            await call
        assert err.value.retryable is True
    ke.down = False

    ke.fail_next("GET /payment", 429)
    with pytest.raises(ProviderError) as err:
        await provider.fetch([draft.external_id])
    assert err.value.retryable is True

    with pytest.raises(ProviderError, match="VALIDATION_ERROR") as err:
        await provider.create_invoice(request(cents=50))  # below the 1 USD minimum
    assert err.value.retryable is False
    with pytest.raises(ProviderError) as err:
        await provider.create_invoice(request(asset="XRP"))
    assert err.value.retryable is False

    bad = KryptoExpressProvider("wrong-key", ke.api_url, SECRET, callback_url=receiver.url)
    try:
        with pytest.raises(ProviderError, match="UNAUTHORIZED") as err:
            await bad.create_invoice(request())
        assert err.value.retryable is False and "wrong-key" not in str(err.value)
    finally:
        await bad.close()

    unreachable = KryptoExpressProvider(KEY, "http://127.0.0.1:9/api", SECRET)
    try:
        with pytest.raises(ProviderError) as err:
            await unreachable.fetch(["a" * 64])
        assert err.value.retryable is True
    finally:
        await unreachable.close()
    assert KEY not in repr(provider) and SECRET not in repr(provider)


async def test_reports_through_the_order_service_end_paid_not_over(ke, provider, database, clock):
    """Running totals through the real services.orders: partial, top-up, a restart, paid — each coin once."""
    async with database.transaction() as session:
        session.add(User(id=77, first_name="Payer"))
    orders = OrderService(database, clock=clock)
    order = await orders.create(user_id=77, product="plan", product_ref="pro", title="Pro plan",
                                amount_cents=2500, ttl=timedelta(minutes=30))
    draft = await provider.create_invoice(request(cents=2500, order_id=order.id))
    await orders.add_invoice(order.id, provider=provider.name, external_id=draft.external_id, amount=draft.amount,
                             asset=draft.asset, expires_at=draft.expires_at, address=draft.address, raw=draft.raw)

    async def poll(client=provider) -> list[str]:
        kinds = []
        for remote in await client.fetch([draft.external_id]):
            for report in remote.payments:
                kinds.append((await orders.apply_payment(report)).kind)
        return kinds

    ke.pay(draft.external_id, "10")
    assert await poll() == ["applied"]
    assert (await orders.get(order.id)).status == Status.PAID_PARTIAL
    assert await poll() == ["duplicate"]
    ke.pay(draft.external_id, "5")
    restarted = KryptoExpressProvider(KEY, ke.api_url, SECRET)  # a new process remembers nothing
    try:
        assert await poll(restarted) == ["applied"]  # still short: the top-up is recorded
        assert (await orders.get(order.id)).status == Status.PAID_PARTIAL
    finally:
        await restarted.close()
    ke.pay(draft.external_id)
    assert await poll() == ["applied"]
    assert await poll() == ["duplicate"]
    assert (await orders.get(order.id)).status == Status.PAID
    payments = await orders.payments(order.id)
    assert sorted(p.amount for p in payments) == [Decimal("5"), Decimal("10"), Decimal("10")]
    assert sum(p.amount for p in payments) == draft.amount


def _sig(body: bytes) -> dict[str, str]:
    import hashlib
    import hmac

    return {"X-Signature": hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest()}


async def test_non_ascii_records_verify_in_either_compact_form(provider):
    record = {"hash": "h-1", "address": "TАдрес😀", "isPaid": True, "cryptoAmount": 12.500}
    for ascii_only in (True, False):
        compact = json.dumps(record, separators=(",", ":"), ensure_ascii=ascii_only).encode()
        pretty = json.dumps(record, indent=1, ensure_ascii=not ascii_only).encode()
        assert provider.webhook_invoice_ids(_sig(compact), pretty) == ["h-1"]


async def test_forged_bodies_that_fail_the_cheap_gate_are_refused_without_parsing(provider):
    import time

    cases = [b"[" * (1024 * 1024),  # the bomb: once 0.7 s of parsing and re-serialising
             json.dumps([{"hash": "x"}] * 60_000).encode(),  # a big array of records
             json.dumps({"hash": "x", "pad": "a" * 9000}).encode(),  # over 8 KiB
             json.dumps({"nohash": 1}).encode(), b'{"hash": 1}', b'{"hash": "x", "a": [[[[[[1]]]]]]}']
    for body in cases:
        started = time.perf_counter()
        with pytest.raises(WebhookRejected, match="bad X-Signature"):
            provider.webhook_invoice_ids({"X-Signature": "0" * 128}, body)
        assert time.perf_counter() - started < 0.05, len(body)
