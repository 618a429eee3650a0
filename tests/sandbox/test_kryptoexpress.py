"""The KryptoExpress stand-in, driven over real HTTP the way a KryptoExpress client would."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from sandbox.kryptoexpress import KryptoExpressStandIn, PayError, sandbox_address
from tests.support import webhooks

KEY = "test-api-key"
SECRET = "callback-secret"
AUTH = {"X-Api-Key": KEY}

clock, receiver = webhooks.clock, webhooks.receiver  # shared fixtures


@pytest.fixture
async def ke(clock):
    async with KryptoExpressStandIn(KEY, SECRET, clock=clock, callback_retry_delays=(0.01, 0.01)) as standin:
        yield standin


@pytest.fixture
async def http(ke):
    async with httpx.AsyncClient(base_url=ke.api_url) as client:
        yield client


def parse(response: httpx.Response):
    return json.loads(response.content, parse_float=Decimal)


async def create_raw(http, receiver, **fields):
    """POST /payment with defaults overridden by ``fields`` (``None`` drops a field)."""
    body = {"paymentType": "PAYMENT", "fiatCurrency": "USD", "fiatAmount": 100, "cryptoCurrency": "BTC",
            "callbackUrl": receiver.url, **fields}
    return await http.post("/payment", json={k: v for k, v in body.items() if v is not None}, headers=AUTH)


async def create(http, receiver, **fields):
    r = await create_raw(http, receiver, **fields)
    assert r.status_code == 200, r.text
    return parse(r)


def verify_docs_way(secret: str, raw: bytes, signature: str) -> bool:
    """The check from the KryptoExpress docs: re-compact the parsed body, HMAC-SHA-512 it."""
    compact_json = json.dumps(json.loads(raw), separators=(",", ":"))
    expected = hmac.new(secret.encode(), compact_json.encode(), hashlib.sha512).hexdigest()
    return hmac.compare_digest(expected, signature)


async def test_create_and_get_payment(ke, http, receiver, clock):
    p = await create(http, receiver)
    assert re.fullmatch(r"[0-9a-f]{64}", p["hash"])
    assert p["paymentType"] == "PAYMENT" and p["fiatCurrency"] == "USD" and p["cryptoCurrency"] == "BTC"
    assert p["fiatAmount"] == Decimal("100.0")
    assert p["cryptoAmount"] == Decimal("0.00153847")  # 100 / 65000, rounded up to 8 places
    assert p["address"].startswith("bc1q") and p["address"] == sandbox_address("BTC", p["hash"])
    assert p["isPaid"] is False and p["isWithdrawn"] is False and p["paidAt"] is None
    assert p["createDatetime"] == int(clock.now.timestamp() * 1000)
    assert p["expireDatetime"] - p["createDatetime"] == 2 * 3600 * 1000
    assert p["callbackUrl"] == receiver.url and "callbackSecret" not in p

    r = await http.get("/payment", params={"hash": p["hash"]})  # no key needed
    assert r.status_code == 200 and parse(r) == p
    r = await http.get("/payment", params={"hash": "0" * 64})
    assert r.status_code == 404 and r.json()["error"] == "NOT_FOUND"

    usdt = await create(http, receiver, cryptoCurrency="USDT_TRC20", fiatCurrency="EUR", fiatAmount=10)
    assert usdt["cryptoAmount"] == Decimal("10.8") and re.fullmatch(r"T\w{33}", usdt["address"])
    assert [c.method for c in ke.calls] == ["POST /payment", "GET /payment", "GET /payment", "POST /payment"]


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "wrong"}])
async def test_missing_or_bad_key_is_401(ke, http, receiver, headers):
    r = await http.post("/payment", json={"paymentType": "PAYMENT"}, headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "UNAUTHORIZED"
    assert (await http.get("/wallet", headers=headers)).status_code == 401
    assert ke.payments == {}


@pytest.mark.parametrize("fields", [
    {"fiatAmount": 0.5},
    {"fiatAmount": None},
    {"fiatAmount": "ten"},
    {"cryptoCurrency": "XRP"},
    {"fiatCurrency": "ABC"},
    {"paymentType": "GIFT"},
    {"callbackUrl": None},
    {"paymentType": "DEPOSIT"},  # a DEPOSIT takes no fiatAmount
    {"paymentType": "DEPOSIT", "fiatAmount": None, "cryptoCurrency": "USDT_TRC20"},  # stablecoins: PAYMENT only
])
async def test_create_validation(ke, http, receiver, fields):
    r = await create_raw(http, receiver, **fields)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "VALIDATION_ERROR" and r.json()["message"]
    assert ke.payments == {}


async def test_exact_payment_through_the_page_sends_signed_callback(ke, http, receiver):
    p = await create(http, receiver)
    async with httpx.AsyncClient(base_url=ke.public_url) as browser:
        page = await browser.get(f"/pay/{p['hash']}")
        assert page.status_code == 200 and "0.00153847 BTC" in page.text and p["address"] in page.text
        r = await browser.post(f"/pay/{p['hash']}", data={"kind": "exact"})
        assert r.status_code == 303
        assert "Paid." in (await browser.get(f"/pay/{p['hash']}")).text
    await ke.drain()

    got = parse(await http.get("/payment", params={"hash": p["hash"]}))
    assert got["isPaid"] is True and got["paidAt"] is not None
    assert got["receivedCryptoAmount"] == got["cryptoAmount"] == Decimal("0.00153847")

    [(headers, raw)] = receiver.requests
    assert verify_docs_way(SECRET, raw, headers["X-Signature"])
    assert hmac.compare_digest(hmac.new(SECRET.encode(), raw, hashlib.sha512).hexdigest(), headers["X-Signature"])
    assert KryptoExpressStandIn.sign(SECRET, json.loads(raw)) == headers["X-Signature"]
    assert not verify_docs_way("other-secret", raw, headers["X-Signature"])
    assert raw == json.dumps(json.loads(raw), separators=(",", ":")).encode()  # compact on the wire
    assert json.loads(raw, parse_float=Decimal) == got


async def test_partial_then_complete_payment(ke, http, receiver):
    p = await create(http, receiver, fiatAmount=50, cryptoCurrency="USDT_TRC20")
    assert ke.amounts(p["hash"]) == {"exact": Decimal("50"), "less": Decimal("25.000000"),
                                     "more": Decimal("55.000000")}
    async with httpx.AsyncClient(base_url=ke.public_url) as browser:
        assert (await browser.post(f"/pay/{p['hash']}", data={"kind": "less"})).status_code == 303
        assert "Partially paid: 25 USDT_TRC20 still due" in (await browser.get(f"/pay/{p['hash']}")).text
    await ke.drain()
    mid = parse(await http.get("/payment", params={"hash": p["hash"]}))
    assert mid["isPaid"] is False and mid["receivedCryptoAmount"] == Decimal("25")

    ke.pay(p["hash"])  # the rest
    await ke.drain()
    done = parse(await http.get("/payment", params={"hash": p["hash"]}))
    assert done["isPaid"] is True and done["receivedCryptoAmount"] == Decimal("50")
    assert [(b["isPaid"], b["receivedCryptoAmount"]) for b in receiver.bodies()] == [
        (False, Decimal("25")), (True, Decimal("50"))]
    assert all(verify_docs_way(SECRET, raw, h["X-Signature"]) for h, raw in receiver.requests)
    with pytest.raises(PayError):
        ke.pay(p["hash"])  # nothing due any more


async def test_over_payment(ke, http, receiver):
    p = await create(http, receiver, fiatAmount=20, cryptoCurrency="USDT_TRC20")
    async with httpx.AsyncClient(base_url=ke.public_url) as browser:
        await browser.post(f"/pay/{p['hash']}", data={"kind": "more"})
        assert "overpaid by 2 USDT_TRC20" in (await browser.get(f"/pay/{p['hash']}")).text
    await ke.drain()
    [body] = receiver.bodies()
    assert body["isPaid"] is True and body["receivedCryptoAmount"] == Decimal("22")
    assert body["cryptoAmount"] == Decimal("20")


async def test_custom_amount_and_bad_amount_on_page(ke, http, receiver):
    p = await create(http, receiver)
    async with httpx.AsyncClient(base_url=ke.public_url) as browser:
        r = await browser.post(f"/pay/{p['hash']}", data={"amount": "0.001"})
        assert r.status_code == 303
        r = await browser.post(f"/pay/{p['hash']}", data={"amount": "-1"})
        assert r.status_code == 400 and "positive" in r.text
        assert (await browser.get("/pay/nothere")).status_code == 404
    assert ke.payments[p["hash"]].received == Decimal("0.001")
    await ke.drain()


async def test_callback_retried_then_pending(ke, http, receiver):
    receiver.fail = 2
    p = await create(http, receiver)
    ke.pay(p["hash"])
    await ke.drain()
    assert [d.status for d in ke.callback_deliveries] == [500, 500, 200]
    assert len({raw for _, raw in receiver.requests}) == 1

    receiver.fail = 3
    q = await create(http, receiver)
    ke.pay(q["hash"], "0.0001")
    await ke.drain()
    assert len(ke.pending_callbacks) == 1
    assert await ke.deliver_pending() == 1 and ke.pending_callbacks == []


async def test_callback_secret_per_payment_or_none(receiver, clock):
    async with KryptoExpressStandIn(KEY, clock=clock, callback_url=receiver.url) as ke, \
            httpx.AsyncClient(base_url=ke.api_url) as http:
        base = {"paymentType": "PAYMENT", "fiatCurrency": "USD", "fiatAmount": 5, "cryptoCurrency": "LTC"}
        signed = parse(await http.post("/payment", json={**base, "callbackSecret": "per-payment"}, headers=AUTH))
        unsigned = parse(await http.post("/payment", json=base, headers=AUTH))  # default callbackUrl
        assert unsigned["callbackUrl"] == receiver.url
        ke.pay(signed["hash"])
        ke.pay(unsigned["hash"])
        await ke.drain()
    (h1, raw1), (h2, _) = receiver.requests
    assert verify_docs_way("per-payment", raw1, h1["X-Signature"])
    assert "X-Signature" not in h2


async def test_expiry_and_late_payment(ke, http, receiver, clock):
    p = await create(http, receiver)
    clock.now += timedelta(hours=2, seconds=1)
    got = parse(await http.get("/payment", params={"hash": p["hash"]}))
    assert got["isPaid"] is False and got["expireDatetime"] < int(clock.now.timestamp() * 1000)
    async with httpx.AsyncClient(base_url=ke.public_url) as browser:
        assert "Expired" in (await browser.get(f"/pay/{p['hash']}")).text
    late = ke.pay(p["hash"])  # on-chain money still arrives
    assert late["isPaid"] is True and late["paidAt"] > late["expireDatetime"]
    q = await create(http, receiver)
    assert ke.expire(q["hash"])["expireDatetime"] == int(clock.now.timestamp() * 1000)
    await ke.drain()


async def test_deposit_counts_first_transaction(ke, http, receiver):
    d = await create_raw(http, receiver, paymentType="DEPOSIT", fiatAmount=None, cryptoCurrency="ETH")
    d = parse(d)
    assert d["cryptoAmount"] is None and d["fiatAmount"] is None and d["address"].startswith("0x")
    paid = ke.pay(d["hash"], "0.01")
    assert paid["isPaid"] is True and paid["cryptoAmount"] == 0.01 and paid["fiatAmount"] == 30.0
    with pytest.raises(PayError):
        ke.pay(d["hash"], "0.01")
    await ke.drain()


async def test_fault_injection_down_and_public_endpoints(ke, http, receiver):
    ke.fail_next("POST /payment", 500)
    r = await create_raw(http, receiver)
    assert r.status_code == 500 and r.json()["error"] == "INTERNAL_ERROR"
    assert (await create_raw(http, receiver)).status_code == 200
    ke.down = True
    assert (await http.get("/payment", params={"hash": "x"})).status_code == 503
    ke.down = False
    prices = (await http.get("/cryptocurrency/price", params={"cryptoCurrency": "BTC,ETH",
                                                               "fiatCurrency": "USD"})).json()
    assert prices == [{"cryptoCurrency": "BTC", "fiatCurrency": "USD", "price": 65000.0},
                      {"cryptoCurrency": "ETH", "fiatCurrency": "USD", "price": 3000.0}]
    assert "USDT_TRC20" in (await http.get("/cryptocurrency/stable")).json()
    assert (await http.get("/wallet", headers=AUTH)).json()["BTC"] == 0.0
    assert [c.status for c in ke.calls_of("POST /payment")] == [500, 200]


async def test_pay_page_in_russian_reads_a_decimal_comma(ke, http, receiver):
    """The web chat opens the page with ?lang=ru for a Russian reader (a browser asking for Russian gets
    it too): Russian wording and decimal commas, an amount typed as "12,5", and Russian after the post."""
    p = await create(http, receiver, fiatAmount=50, cryptoCurrency="USDT_TRC20")
    async with httpx.AsyncClient(base_url=ke.public_url) as browser:
        page = (await browser.get(f"/pay/{p['hash']}", params={"lang": "ru"})).text
        assert "Платёж KryptoExpress: USDT_TRC20" in page and "Оплатить меньше (25 USDT_TRC20)" in page
        assert "Pay exact" not in page and "Other amount" not in page
        posted = await browser.post(f"/pay/{p['hash']}", params={"lang": "ru"}, data={"amount": "12,5"})
        assert posted.status_code == 303 and posted.headers["Location"].endswith("?lang=ru")
        after = (await browser.get(posted.headers["Location"])).text
        assert "Оплачено частично: осталось 37,5 USDT_TRC20." in after
        asked = (await browser.get(f"/pay/{p['hash']}", headers={"Accept-Language": "ru-RU,ru;q=0.9"})).text
        assert "Получено" in asked
        assert "Partially paid: 37.5 USDT_TRC20 still due" in (await browser.get(f"/pay/{p['hash']}")).text
    assert ke.payments[p["hash"]].received == Decimal("12.5")
