"""Property: any body, with any headers, signed or not, at every HTTP endpoint of the real app gets a
clear answer below 500, logs no unhandled exception, and a refusal changes nothing in the database."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.endpoints import ENDPOINTS, Endpoints, http_app

WEIRD = ["²", "①", "١٢٣", "1" * 30, "99999999999999999999999", "-1", "0", "1e999999", "NaN", "Infinity", "-0",
         "0x10", " 1", "1_000", "", " ", "\x00", "\u202e", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
         "2026-11-20T10:00:00Z", "invoice_paid", "tp_hit", "closed", "long", "buy", "crypto", "solana"]
HEADER_VALUES = [*(w for w in WEIRD if w.isprintable()), "2", "1", str(int(time.time()))]
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(10 ** 30), 10 ** 30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=24), st.sampled_from(WEIRD))
JSON = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=12)


def near(valid: dict) -> st.SearchStrategy[dict]:
    """``valid`` with some fields replaced by hostile values, some dropped, maybe one extra."""
    return st.fixed_dictionaries({key: st.one_of(st.just(value), JSON) for key, value in valid.items()}).flatmap(
        lambda d: st.sets(st.sampled_from(sorted(d))).map(lambda drop: {k: v for k, v in d.items() if k not in drop}))


NOW_ISO = datetime.now(UTC).isoformat()
SIGNAL = {"id": "p-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h", "note": "n"}
EVENT = {"type": "tp_hit", "level": 1, "price": "150"}
TRADE = {"id": "tx-1", "wallet": "WalletAAAA1111", "chain": "solana", "label": "l", "symbol": "SOL", "side": "buy",
         "usd_value": "1000", "pnl_usd": "10", "ts": "2026-11-20T10:00:00Z"}
CRYPTOPAY = {"update_id": 1, "update_type": "invoice_paid", "request_date": NOW_ISO,
             "payload": {"invoice_id": 1, "status": "paid"}}
KRYPTOEXPRESS = {"id": 1, "hash": "abc", "isPaid": True, "cryptoAmount": 1.5, "paymentType": "PAYMENT"}
UPDATE = {"update_id": 1, "message": {"message_id": 1, "date": int(time.time()), "text": "/start",
                                      "chat": {"id": 5001, "type": "private"},
                                      "from": {"id": 5001, "is_bot": False, "first_name": "A"}}}
SHAPES = {
    "/webhooks/cryptopay": near(CRYPTOPAY), "/webhooks/kryptoexpress": near(KRYPTOEXPRESS),
    "/api/signals": near(SIGNAL), "/api/signals/{id}/events": near(EVENT),
    "/api/whales/trades": st.lists(near(TRADE), max_size=4).map(lambda trades: {"trades": trades}),
    "/telegram/webhook": near(UPDATE),
    "/api/v1/webhook/secret": st.just({}),
    "/api/v1/datasets/{id}/purchases": near({"cut": "live", "idempotency_key": "k-1"}),
    "/api/v1/provider/signals": near(SIGNAL), "/api/v1/provider/signals/{id}/events": near(EVENT),
}


def dumps(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def requests(draw):
    route = draw(st.sampled_from(sorted(ENDPOINTS)))
    body = draw(st.one_of(
        SHAPES[route].map(dumps), JSON.map(dumps), st.binary(max_size=64),
        st.integers(1, 2000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 2000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)))
    path = ENDPOINTS[route]
    if route.endswith("/signals/{id}/events"):
        ref = draw(st.one_of(st.sampled_from([*WEIRD, "p-1"]), st.text(min_size=1, max_size=40)))
        path = route.replace("{id}", quote(ref, safe=""))
    headers = draw(st.dictionaries(st.sampled_from(["X-Timestamp", "X-Signature", "X-Signature-Version",
                                                    "crypto-pay-api-signature", "Content-Type"]),
                                   st.one_of(st.sampled_from(HEADER_VALUES),
                                             st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                                     max_size=20)),
                                   max_size=2))
    return route, path, body, draw(st.booleans()), headers


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def send(app: Endpoints, errors: Errors, route: str, path: str, body: bytes, signed: bool,
               headers: dict[str, str]) -> None:
    before = await app.row_counts()
    status, answer = await app.post(route, body, signed=signed, path=path, headers=headers)
    await asyncio.sleep(0)  # let a background webhook task (Telegram) start
    assert status < 500, (route, path, body[:200], status, answer[:300])
    assert errors.records == [], [r.getMessage() for r in errors.records]
    if status >= 400:
        assert await app.row_counts() == before, (route, status, answer[:300])


def test_any_request_to_any_endpoint_is_answered_cleanly(tmp_path):
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    app = loop.run_until_complete(stack.enter_async_context(http_app(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")))
    errors = Errors()
    logging.getLogger().addHandler(errors)
    try:
        @settings(max_examples=200, deadline=None, derandomize=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
        @given(request=requests())
        @example(request=("/api/whales/trades", "/api/whales/trades", dumps(
            {"trades": [TRADE, {**TRADE, "id": "x", "ts": "0001-01-01T00:00:00+14:00"}]}), True, {}))
        @example(request=("/api/signals/{id}/events", "/api/signals/%C2%B2/events", dumps(EVENT), True, {}))
        @example(request=("/api/signals/{id}/events", "/api/signals/" + "1" * 30 + "/events", dumps(EVENT), True, {}))
        @example(request=("/api/signals", "/api/signals", b"[" * 100_000 + b"]" * 100_000, True, {}))
        @example(request=("/api/v1/provider/signals", "/api/v1/provider/signals", dumps(SIGNAL), True, {}))
        @example(request=("/api/v1/provider/signals/{id}/events", "/api/v1/provider/signals/%C2%B2/events",
                          dumps(EVENT), True, {}))
        @example(request=("/api/signals", "/api/signals", dumps({**SIGNAL, "entry": "١٢٣"}), True, {}))
        @example(request=("/webhooks/kryptoexpress", "/webhooks/kryptoexpress", b"[" * 400, False, {}))
        @example(request=("/webhooks/cryptopay", "/webhooks/cryptopay",
                          dumps({**CRYPTOPAY, "request_date": "0001-01-01T00:00:00+14:00"}), True, {}))
        def check(request):
            errors.records.clear()
            loop.run_until_complete(send(app, errors, *request))

        check()
    finally:
        logging.getLogger().removeHandler(errors)
        loop.run_until_complete(stack.aclose())
        loop.close()


