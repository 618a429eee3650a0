"""The Crypto Pay stand-in, driven over real HTTP the way a Crypto Pay client would."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from sandbox.cryptopay import DEFAULT_TOKEN, CryptoPayStandIn, PayError
from tests.support import webhooks

TOKEN = DEFAULT_TOKEN
AUTH = {"Crypto-Pay-API-Token": TOKEN}

clock, receiver = webhooks.clock, webhooks.receiver  # shared fixtures


@pytest.fixture
async def cp(receiver, clock):
    async with CryptoPayStandIn(webhook_url=receiver.url, clock=clock,
                                webhook_retry_delays=(0.01, 0.01)) as standin:
        yield standin


@pytest.fixture
async def http(cp):
    async with httpx.AsyncClient(base_url=cp.base_url) as client:
        yield client


async def api(http, method, *, headers=AUTH, **params):
    return await http.post(f"/api/{method}", json=params, headers=headers)


async def create(http, **params):
    params = {"currency_type": "fiat", "fiat": "USD", "amount": "10", "accepted_assets": "USDT,TON",
              "description": "10 AI tokens", "payload": "order:7", **params}
    r = await api(http, "createInvoice", **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True
    return body["result"]


def verify(token: str, headers: dict[str, str], body: bytes) -> bool:
    """The documented check: HMAC-SHA-256 over the raw body, keyed with SHA-256(token)."""
    secret = hashlib.sha256(token.encode()).digest()
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["crypto-pay-api-signature"])


async def test_get_me_over_get_query_and_post_form(cp, http):
    r = await http.get("/api/getMe", headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"ok": True, "result": {"app_id": 12345, "name": "Sandbox Shop",
                                               "payment_processing_bot_username": "CryptoSandboxBot"}}
    r = await http.post("/api/getInvoices", data={"count": "5"}, headers=AUTH)
    assert r.json() == {"ok": True, "result": {"items": []}}
    assert [c.method for c in cp.calls] == ["getMe", "getInvoices"]
    assert cp.calls[1].params == {"count": "5"}


@pytest.mark.parametrize("headers", [{}, {"Crypto-Pay-API-Token": "12345:wrong"}])
async def test_bad_or_missing_token_is_401(http, headers):
    r = await api(http, "getMe", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"ok": False, "error": {"code": 401, "name": "UNAUTHORIZED"}}


async def test_create_invoice_returns_full_invoice_found_by_id(cp, http, clock):
    inv = await create(http, expires_in=600)
    assert inv["status"] == "active"
    assert inv["currency_type"] == "fiat" and inv["fiat"] == "USD" and inv["amount"] == "10"
    assert inv["accepted_assets"] == ["USDT", "TON"]
    assert inv["hash"].startswith("IV") and inv["payload"] == "order:7"
    assert inv["bot_invoice_url"] == f"{cp.public_url}/pay/{inv['hash']}"
    assert inv["mini_app_invoice_url"].startswith(inv["bot_invoice_url"])
    assert inv["created_at"] == "2026-03-01T12:00:00.000Z"
    assert inv["expiration_date"] == "2026-03-01T12:10:00.000Z"
    assert inv["allow_comments"] is True and inv["allow_anonymous"] is True

    other = await create(http, currency_type="crypto", asset="TON", amount="1.50")
    assert other["asset"] == "TON" and other["amount"] == "1.5" and "fiat" not in other
    r = await api(http, "getInvoices", invoice_ids=f"{inv['invoice_id']}")
    assert r.json()["result"]["items"] == [inv]
    r = await http.get("/api/getInvoices", params={"status": "active"}, headers=AUTH)
    assert [i["invoice_id"] for i in r.json()["result"]["items"]] == [other["invoice_id"], inv["invoice_id"]]


@pytest.mark.parametrize(("params", "status", "name"), [
    ({"amount": "0"}, 400, "AMOUNT_INVALID"),
    ({"amount": "abc"}, 400, "AMOUNT_INVALID"),
    ({"amount": "0.001"}, 400, "AMOUNT_TOO_SMALL"),
    ({"fiat": "XYZ"}, 400, "FIAT_INVALID"),
    ({"currency_type": "crypto", "asset": "DOGE"}, 400, "ASSET_INVALID"),
    ({"accepted_assets": "USDT,NOPE"}, 400, "ACCEPTED_ASSETS_INVALID"),
    ({"accepted_assets": ["USDT", "TON"]}, 500, "APP_ERROR"),  # must be a comma-separated string
    ({"expires_in": 2_678_401}, 400, "EXPIRES_IN_INVALID"),
    ({"description": "x" * 1025}, 400, "DESCRIPTION_TOO_LONG"),
    ({"paid_btn_name": "viewItem"}, 400, "PAID_BTN_URL_REQUIRED"),
])
async def test_create_invoice_validation(cp, http, params, status, name):
    body = {"currency_type": "fiat", "fiat": "USD", "amount": "10", **params}
    r = await api(http, "createInvoice", **body)
    assert r.status_code == status
    assert r.json() == {"ok": False, "error": {"code": status, "name": name}}
    assert cp.invoices == {}


async def test_unknown_method_and_bad_query_values(http):
    r = await api(http, "createPayment")
    assert (r.status_code, r.json()["error"]["name"]) == (405, "METHOD_NOT_FOUND")
    r = await api(http, "getInvoices", count=1001)
    assert r.json()["error"] == {"code": 400, "name": "COUNT_INVALID"}
    r = await http.post("/api/getMe", content=b"{nope", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400


async def test_paying_through_the_page_delivers_a_signed_webhook(cp, http, receiver):
    inv = await create(http)
    page = await http.get(f"/pay/{inv['hash']}")
    assert page.status_code == 200 and "10 USD" in page.text and "2 TON" in page.text

    r = await http.post(f"/pay/{inv['hash']}", data={"asset": "TON"})
    assert r.status_code == 303 and r.headers["location"] == f"/pay/{inv['hash']}"
    await cp.drain()

    paid = (await api(http, "getInvoices", invoice_ids=str(inv["invoice_id"]))).json()["result"]["items"][0]
    assert paid["status"] == "paid"
    assert (paid["paid_asset"], paid["paid_amount"], paid["paid_usd_rate"], paid["paid_fiat_rate"]) == (
        "TON", "2", "5", "5")
    assert paid["fee_asset"] == "TON" and Decimal(paid["fee_amount"]) == Decimal("0.06")
    assert paid["paid_at"] == "2026-03-01T12:00:00.000Z"

    [(headers, body)] = receiver.requests
    assert verify(TOKEN, headers, body)
    assert not verify("12345:other", headers, body)
    assert CryptoPayStandIn.sign(TOKEN, body) == headers["crypto-pay-api-signature"]
    update = json.loads(body)
    assert update["update_type"] == "invoice_paid" and update["update_id"] == 1
    assert update["request_date"] == "2026-03-01T12:00:00.000Z"
    assert update["payload"] == paid
    assert [d.ok for d in cp.webhook_deliveries] == [True]
    assert "Paid 2 TON" in (await http.get(f"/pay/{inv['hash']}")).text

    again = await http.post(f"/pay/{inv['hash']}", data={"asset": "TON"})
    assert again.status_code == 409 and "is paid" in again.text


async def test_pay_driving_api_and_crypto_invoice(cp, http, receiver):
    inv = await create(http, currency_type="crypto", asset="BTC", amount="0.001")
    with pytest.raises(PayError):
        cp.pay(inv["invoice_id"], "USDT")
    paid = cp.pay(inv["invoice_id"])
    assert (paid["paid_asset"], paid["paid_amount"], paid["paid_usd_rate"]) == ("BTC", "0.001", "65000")
    assert "paid_fiat_rate" not in paid
    await cp.drain()
    assert json.loads(receiver.requests[0][1])["payload"]["invoice_id"] == inv["invoice_id"]
    with pytest.raises(PayError) as err:
        cp.pay("IVnothere")
    assert err.value.status == 404


async def test_webhook_is_retried_after_receiver_errors(cp, http, receiver):
    receiver.fail = 2
    inv = await create(http)
    cp.pay(inv["hash"], "USDT")
    await cp.drain()
    assert [d.status for d in cp.webhook_deliveries] == [500, 500, 200]
    assert [d.attempt for d in cp.webhook_deliveries] == [1, 2, 3]
    bodies = {body for _, body in receiver.requests}
    assert len(bodies) == 1  # the same update each time
    assert cp.pending_webhooks == []


async def test_undelivered_webhooks_wait_in_pending(cp, http, receiver):
    receiver.fail = 3
    cp.pay((await create(http))["invoice_id"])
    await cp.drain()
    assert len(cp.pending_webhooks) == 1 and not any(d.ok for d in cp.webhook_deliveries)
    assert await cp.deliver_pending() == 1
    assert cp.pending_webhooks == [] and cp.webhook_deliveries[-1].ok

    cp.webhook_url = None  # no URL configured: kept until one is
    cp.pay((await create(http))["invoice_id"])
    await cp.drain()
    assert len(cp.pending_webhooks) == 1
    cp.webhook_url = receiver.url
    assert await cp.deliver_pending() == 1
    assert len(receiver.requests) == 5


async def test_invoices_expire_by_the_clock(cp, http, clock):
    inv = await create(http, expires_in=60)
    clock.now += timedelta(seconds=61)
    r = await api(http, "getInvoices", invoice_ids=str(inv["invoice_id"]))
    assert r.json()["result"]["items"][0]["status"] == "expired"
    r = await http.post(f"/pay/{inv['hash']}", data={"asset": "USDT"})
    assert r.status_code == 409 and "expired" in r.text
    assert cp.webhook_deliveries == []

    other = await create(http)
    assert cp.expire(other["invoice_id"])["status"] == "expired"
    r = await api(http, "getInvoices", status="expired")
    assert {i["invoice_id"] for i in r.json()["result"]["items"]} == {inv["invoice_id"], other["invoice_id"]}


async def test_fault_injection(cp, http):
    cp.fail_next("createInvoice", 500, times=2)
    for _ in range(2):
        r = await api(http, "createInvoice", asset="USDT", amount="1")
        assert r.status_code == 500 and r.json()["error"] == {"code": 500, "name": "APP_ERROR"}
    assert (await api(http, "createInvoice", asset="USDT", amount="1")).status_code == 200
    cp.fail_next("getMe", 429, error="FLOOD")
    assert (await api(http, "getMe")).json()["error"] == {"code": 429, "name": "FLOOD"}

    cp.down = True
    assert (await api(http, "getMe")).status_code == 503
    assert (await http.get("/api/getInvoices", headers=AUTH)).status_code == 503
    cp.down = False
    assert (await api(http, "getMe")).status_code == 200
    assert [c.status for c in cp.calls_of("createInvoice")] == [500, 500, 200]


async def test_pay_page_escapes_html(cp, http):
    inv = await create(http, description="<script>alert('x')</script> & co")
    r = await http.get(f"/pay/{inv['hash']}")
    assert "<script>" not in r.text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert (await http.get("/pay/IVunknown")).status_code == 404


async def test_delete_invoice_rates_and_balance(cp, http):
    inv = await create(http)
    cp.pay(inv["invoice_id"], "USDT")
    r = await api(http, "getBalance")
    usdt = next(b for b in r.json()["result"] if b["currency_code"] == "USDT")
    assert Decimal(usdt["available"]) == Decimal("1009.7")  # the starting 1,000 + 10 USDT less the 3 % fee
    assert (await api(http, "deleteInvoice", invoice_id=inv["invoice_id"])).json() == {"ok": True, "result": True}
    r = await api(http, "deleteInvoice", invoice_id=inv["invoice_id"])
    assert r.json()["error"] == {"code": 400, "name": "INVOICE_NOT_FOUND"}
    rates = (await api(http, "getExchangeRates")).json()["result"]
    by_pair = {(x["source"], x["target"]): x["rate"] for x in rates}
    assert by_pair[("USDT", "USD")] == "1" and by_pair[("BTC", "USD")] == "65000"
    assert by_pair[("TON", "USD")] == "5" and all(x["is_valid"] for x in rates)
    await cp.drain()


async def test_transfer_pays_a_user_once_per_spend_id(cp, http):
    seen = []
    cp.on_transfer.append(seen.append)
    r = await api(http, "transfer", user_id=701, asset="USDT", amount="2.5", spend_id="refund:1:full",
                  comment="Refund of order #1")
    transfer = r.json()["result"]
    assert transfer | {"user_id": 701, "asset": "USDT", "amount": "2.5", "status": "completed",
                       "spend_id": "refund:1:full"} == transfer and seen == [transfer]
    again = await api(http, "transfer", user_id=701, asset="USDT", amount="2.5", spend_id="refund:1:full")
    assert again.json()["error"] == {"code": 400, "name": "SPEND_ID_ALREADY_USED"}
    listed = (await api(http, "getTransfers", spend_id="refund:1:full")).json()["result"]["items"]
    assert listed == [transfer]
    too_much = await api(http, "transfer", user_id=701, asset="BTC", amount="1", spend_id="x2")
    assert too_much.json()["error"] == {"code": 400, "name": "INSUFFICIENT_FUNDS"}
    usdt = next(b for b in (await api(http, "getBalance")).json()["result"] if b["currency_code"] == "USDT")
    assert Decimal(usdt["available"]) == Decimal("997.5")
