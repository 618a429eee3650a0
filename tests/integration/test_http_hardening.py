"""Issue 13 through the real app's HTTP surface: size caps before reading, authentication before parsing,
nesting limits, signatures bound to their path, and input that used to answer 500."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from processing.ingest_auth import signed_headers
from routes.app import BODY_LIMITS
from tests.support import redis_server as _redis
from tests.support.endpoints import ENDPOINTS, INGEST_SECRET, Endpoints, http_app

redis_server, redis_url = _redis.redis_server, _redis.redis_url

SIGNAL = {"id": "ext-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136"}


def trade(i: int, **extra) -> dict:
    ts = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    return {"id": f"tx-{i}", "wallet": "WalletAAAA1111", "chain": "solana", "symbol": "SOL", "side": "buy",
            "usd_value": "1000", "pnl_usd": "10", "ts": ts, **extra}


@pytest.fixture
async def app(database_url) -> AsyncIterator[Endpoints]:
    async with http_app(database_url) as endpoints:
        yield endpoints


@pytest.fixture
def errors(caplog):
    """ERROR records logged during the test (an unhandled exception in a handler is one)."""
    caplog.set_level(logging.ERROR)
    return lambda: [r for r in caplog.records if r.levelno >= logging.ERROR]


async def ingest(app: Endpoints, path: str, payload, *, timestamp: int | None = None, v2: bool = False,
                 headers: dict | None = None):
    body = json.dumps(payload).encode()
    sent = headers or signed_headers(INGEST_SECRET, body, timestamp=timestamp, path=path if v2 else None)
    response = await app.client.post(path, data=body, headers=sent)
    return response.status, await response.json()


def test_every_post_route_has_a_body_cap_and_a_row_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    security = readme[readme.index("## Security"):]
    for route in ENDPOINTS:
        assert route in BODY_LIMITS
        assert f"`POST {route}`" in security


async def test_app_registers_no_post_route_without_a_cap(app):
    posts = {route.resource.canonical for route in app.h.app.web.router.routes() if route.method == "POST"}
    assert posts == set(ENDPOINTS) == set(BODY_LIMITS)


async def test_oversized_bodies_get_413_before_anything_is_read(app, errors):
    before = await app.row_counts()
    for route, limit in BODY_LIMITS.items():
        body = b"{" + b" " * limit + b"}"
        status, _ = await app.post(route, body)  # Content-Length over the cap
        assert status == 413, route

        async def chunks(data=body):
            for start in range(0, len(data), 16 * 1024):
                yield data[start:start + 16 * 1024]

        # streamed without Content-Length: cut off at the cap
        status, _ = await app.post(route, body, stream=chunks(), headers={"Content-Type": "application/json"})
        assert status == 413, route
    assert await app.row_counts() == before
    assert errors() == []


async def test_deep_json_is_refused_with_a_4xx_never_a_500(app, errors):
    before = await app.row_counts()
    deep400 = b"[" * 400 + b"]" * 400
    deep100k = b"[" * 100_000 + b"]" * 100_000
    for route in ENDPOINTS:
        assert (await app.post(route, deep400, signed=False))[0] == 401, route
        status, _ = await app.post(route, deep400)  # signed: authentic sender, nonsense body
        assert status in (400, 401, 422), (route, status)
        status, _ = await app.post(route, deep100k)
        assert status in (400, 401, 413, 422), (route, status)
    status, body = await app.post("/api/whales/trades", deep100k)  # under the 1 MiB cap: parsed? no
    assert status == 422 and b"deeper than" in body
    assert await app.row_counts() == before
    assert errors() == []


async def test_a_captured_event_replayed_for_another_signal_is_refused(app):
    assert (await ingest(app, "/api/signals", SIGNAL))[0] == 202
    assert (await ingest(app, "/api/signals", {**SIGNAL, "id": "ext-2"}))[0] == 202
    closed = {"type": "closed", "price": "91"}
    body = json.dumps(closed).encode()
    captured = signed_headers(INGEST_SECRET, body)
    assert (await ingest(app, "/api/signals/ext-1/events", closed, headers=captured))[0] == 202
    status, answer = await ingest(app, "/api/signals/ext-2/events", closed, headers=captured)
    assert status == 401 and answer["field"] == "X-Signature"
    status, answer = await ingest(app, "/api/signals/ext-1/events", closed, headers=captured)  # a retry
    assert (status, answer["duplicate"]) == (200, True)
    # signed with method and path (version 2): only valid for its own path
    tp = {"type": "tp_hit", "level": 1, "price": "150"}
    v2 = signed_headers(INGEST_SECRET, json.dumps(tp).encode(), path="/api/signals/ext-1/events")
    assert (await ingest(app, "/api/signals/ext-2/events", tp, headers=v2))[0] == 401
    assert (await ingest(app, "/api/signals/ext-2/events", tp, v2=True))[0] == 202
    history, events = await app.h.app.signals.history()
    by_id = {s.id: s.external_id for s in history}
    assert sorted((by_id[e.signal_id], e.type) for e in events) == [("ext-1", "closed"), ("ext-2", "tp_hit")]


async def test_replicas_share_the_signature_memory_in_redis(database_url, redis_url):
    async with http_app(database_url, redis_url=redis_url) as app:
        assert (await ingest(app, "/api/signals", SIGNAL))[0] == 202
        closed = {"type": "closed", "price": "91"}
        captured = signed_headers(INGEST_SECRET, json.dumps(closed).encode())
        assert (await ingest(app, "/api/signals/ext-1/events", closed, headers=captured))[0] == 202
        probe = redis.Redis.from_url(redis_url)
        try:
            assert probe.get(f"ingest:sig:{captured['X-Signature']}") == b"/api/signals/ext-1/events"
            probe.set(f"ingest:sig:{captured['X-Signature']}", b"/api/signals/other/events")  # another replica
        finally:
            probe.close()
        assert (await ingest(app, "/api/signals/ext-1/events", closed, headers=captured))[0] == 401


async def test_a_bad_trade_time_is_that_items_error_and_its_siblings_are_stored(app, errors):
    items = [trade(1), trade(2, ts="0001-01-01T00:00:00+14:00"), trade(3), trade(4, ts="9999-12-31T23:59:59-14:00"),
             trade(5)]
    status, body = await ingest(app, "/api/whales/trades", {"trades": items})
    assert status == 200 and body["stored"] == 3
    assert [(r["field"], r["id"]) for r in body["rejected"]] == [("trades[1].ts", "tx-2"), ("trades[3].ts", "tx-4")]
    assert errors() == []


@pytest.mark.parametrize("ref", ["²", "①", "1" * 30, "١٢٣", "%00", "%C2%B2"])
async def test_odd_event_path_ids_are_a_404(app, errors, ref):
    assert (await ingest(app, "/api/signals", SIGNAL))[0] == 202
    before = await app.row_counts()
    status, body = await ingest(app, f"/api/signals/{ref}/events", {"type": "closed", "price": "147"})
    assert status == 404 and body["field"] == "id"
    assert await app.row_counts() == before
    assert errors() == []


@pytest.mark.parametrize(("path", "payload", "field"), [
    ("/api/signals", {**SIGNAL, "entry": "١٤٢"}, "entry"),
    ("/api/signals", {**SIGNAL, "stop_loss": "١٣٦"}, "stop_loss"),
    ("/api/signals", {**SIGNAL, "take_profits": ["150", "²"]}, "take_profits"),
    ("/api/signals", {**SIGNAL, "take_profits": ["١٥٠"]}, "take_profits"),
    ("/api/signals/ext-0/events", {"type": "closed", "price": "١٢٣"}, "price"),
    ("/api/whales/trades", {"trades": [trade(1, usd_value="١٢٣")]}, "trades[0].usd_value"),
    ("/api/whales/trades", {"trades": [trade(1, pnl_usd="-٥")]}, "trades[0].pnl_usd"),
])
async def test_prices_in_other_digits_are_refused_naming_the_field(app, path, payload, field):
    assert (await ingest(app, "/api/signals", {**SIGNAL, "id": "ext-0"}))[0] == 202
    before = await app.row_counts()
    status, body = await ingest(app, path, payload)
    assert (status, body["field"]) == (422, field)
    assert "0-9" in json.dumps(body, ensure_ascii=False)
    assert await app.row_counts() == before


async def test_telegram_webhook_checks_the_secret_then_the_update(app, errors):
    update = {"update_id": 1, "message": {"message_id": 1, "date": int(time.time()), "text": "/start",
                                          "chat": {"id": 5001, "type": "private"},
                                          "from": {"id": 5001, "is_bot": False, "first_name": "A"}}}
    body = json.dumps(update).encode()
    assert (await app.post("/telegram/webhook", body, signed=False))[0] == 401
    for nonsense in (b"not json", b"[]", b'{"update_id": "x"}', b'{"update_id": 1, "message": 5}'):
        assert (await app.post("/telegram/webhook", nonsense))[0] == 400
    assert (await app.post("/telegram/webhook", body))[0] == 200
    for _ in range(200):  # handled in the background: the bot answers /start
        if any(m.chat_id == 5001 for m in app.h.session.of("SendMessage")):
            break
        await asyncio.sleep(0.025)
    assert any(m.chat_id == 5001 for m in app.h.session.of("SendMessage"))
    # a kind of update this aiogram does not know: acknowledged (Telegram would retry anything else), dropped
    assert (await app.post("/telegram/webhook", b'{"update_id": 2, "brand_new_kind": {}}'))[0] == 200
    assert errors() == []
