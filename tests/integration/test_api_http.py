"""The developer API over HTTP (issue 17): keys refused alike, every endpoint for each plan with the bot's own
visibility rules, 422 naming the parameter, the rate-limit headers, the minute's limit, the day's quota charged
to API credit exactly once (also under concurrent calls), usage, and an OpenAPI document a validator accepts."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from sqlalchemy import func, select, update

from db.models_api import ApiCharge
from db.models_signals import Signal
from services.ledger import Cause
from services.signals import EventIn, SignalIn
from tests.conftest import make_settings
from tests.support import redis_server as _redis
from tests.support.harness import Harness

redis_server, redis_url = _redis.redis_server, _redis.redis_url

FREE, PRO = 301, 302


@pytest.fixture
async def api(database_url):
    """The app with small limits (Free: 5/min, 3/day; Pro: 1000/min, 4/day) and its HTTP client."""
    settings = make_settings(database_url=database_url, api_limits={
        "free": {"per_minute": 5, "per_day": 3}, "pro": {"per_minute": 1000, "per_day": 4}})
    h = await Harness(settings).start()
    for user_id in (FREE, PRO):
        await h.users.seen(user_id, username=None, first_name="Dev", language_code="en")
    await h.app.subscriptions.add_time(PRO, "pro", 30, source="grant")
    async with TestClient(TestServer(h.app.web)) as client:
        client.h = h
        client.keys = {FREE: (await h.app.api_keys.create(FREE, "free"))[1],
                       PRO: (await h.app.api_keys.create(PRO, "pro"))[1]}
        yield client
    await h.close()


def mistyped(key: str) -> str:
    """The key with its last character changed (so its checksum fails)."""
    return key[:-1] + ("x" if key[-1] != "x" else "y")


async def call(client, user_id, path, **headers):
    response = await client.get(path, headers={"Authorization": f"Bearer {client.keys[user_id]}", **headers})
    return response, await response.json()


async def add_signal(h, external_id: str, *, minutes_ago: float = 0, ecosystem="crypto", symbol="BTC/USDT") -> int:
    result = await h.app.signals.ingest(SignalIn(id=external_id, ecosystem=ecosystem, symbol=symbol, side="long",
                                                 entry="100", take_profits=["110"], stop_loss="95"))
    async with h.db.transaction() as session:
        await session.execute(update(Signal).where(Signal.id == result.signal_id).values(
            received_at=datetime.now(UTC) - timedelta(minutes=minutes_ago)))
    return result.signal_id


async def test_missing_malformed_unknown_and_revoked_keys_get_one_401(api):
    h = api.h
    key, raw = await h.app.api_keys.create(FREE, "soon revoked")
    await h.app.api_keys.revoke(FREE, key.id)
    answers = []
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"X-API-Key": mistyped(api.keys[FREE])},
                    {"Authorization": "Bearer sck_" + "A" * 38}, {"Authorization": f"Bearer {raw}"}):
        response = await api.get("/api/v1/signals", headers=headers)
        assert response.status == 401 and response.content_type == "application/problem+json"
        assert "RateLimit" not in response.headers
        answers.append(await response.json())
    assert all(answer == answers[0] for answer in answers)  # no hint of which
    assert answers[0]["status"] == 401 and answers[0]["type"].endswith("#problem-unauthorized")
    response = await api.get("/api/v1/whoami", headers={"X-API-Key": api.keys[PRO]})  # the other header works
    assert response.status == 200
    pro_key = (await h.app.api_keys.keys(PRO))[0]
    await h.app.api_keys.revoke(PRO, pro_key.id)  # refused at once, though the key was just checked
    response = await api.get("/api/v1/whoami", headers={"X-API-Key": api.keys[PRO]})
    assert response.status == 401


async def test_a_banned_owner_is_refused_at_once(api):
    h = api.h
    response, _me = await call(api, FREE, "/api/v1/whoami")
    assert response.status == 200
    await h.users.set_banned(FREE, True)
    response, problem = await call(api, FREE, "/api/v1/signals")
    assert response.status == 403 and problem["feature"] == "account"
    await h.users.set_banned(FREE, False)
    response, _signals = await call(api, FREE, "/api/v1/signals")
    assert response.status == 200


async def test_whoami_lists_the_plan_features_limits_and_credit_and_is_not_counted(api):
    h = api.h
    await h.app.ledger.top_up(PRO, Decimal("2.50"), Cause("order", "w1"))
    for _ in range(3):
        response, me = await call(api, PRO, "/api/v1/whoami")
    assert response.status == 200
    assert me["plan"] == "pro" and me["user_id"] == PRO and me["plan_expires_at"]
    assert {"signals.realtime", "webhooks", "whales.full_board"} <= set(me["features"])
    assert me["limits"] == {"per_minute": 1000, "per_day": 4} and me["usage"] == {"today": 0}
    assert me["credit_usd"] == "2.50"
    assert response.headers["RateLimit-Policy"] == '"minute";q=1000;w=60, "day";q=4;w=86400'
    _response, free = await call(api, FREE, "/api/v1/whoami")
    assert free["plan"] == "free" and free["plan_expires_at"] is None and "signals.realtime" not in free["features"]
    await h.app.subscriptions.add_time(FREE, "basic", 30, source="grant")  # a plan change applies at once
    _response, now_basic = await call(api, FREE, "/api/v1/whoami")
    assert now_basic["plan"] == "basic" and now_basic["limits"]["per_day"] == 1000


async def test_free_sees_signals_after_the_delay_and_within_its_window_paid_sees_them_at_once(api):
    h = api.h
    fresh = await add_signal(h, "fresh", minutes_ago=1)
    delayed = await add_signal(h, "delayed", minutes_ago=45)
    old = await add_signal(h, "old", minutes_ago=60 * 24 * 10)  # 10 days: outside Free's 7, inside Pro's 90
    await h.app.signals.add_event("delayed", EventIn(type="closed", price="104"))
    _r, free = await call(api, FREE, "/api/v1/signals")
    assert [s["id"] for s in free["signals"]] == [delayed] and free["delayed_by_minutes"] == 30
    assert free["signals"][0]["status"] == "closed" and free["signals"][0]["events"][0]["price"] == "104"
    assert free["signals"][0]["entry"] == "100" and free["history_days"] == 7
    _r, pro = await call(api, PRO, "/api/v1/signals")
    assert [s["id"] for s in pro["signals"]] == [old, delayed, fresh] and pro["delayed_by_minutes"] == 0

    response, refused = await call(api, FREE, f"/api/v1/signals/{fresh}")
    assert response.status == 403 and refused["feature"] == "signals.realtime" and "30 minutes" in refused["detail"]
    response, refused = await call(api, FREE, f"/api/v1/signals/{old}")
    assert response.status == 403 and refused["feature"] == "signals.history"
    response, one = await call(api, PRO, f"/api/v1/signals/{fresh}")
    assert response.status == 200 and one["external_id"] == "fresh" and one["status"] == "open"
    response, missing = await call(api, PRO, "/api/v1/signals/999999")
    assert response.status == 404 and missing["type"].endswith("#problem-not-found")


async def test_filters_and_bad_parameters_get_a_422_that_names_the_parameter_and_is_not_counted(api):
    h = api.h
    await add_signal(h, "b1", symbol="BTC/USDT")
    await add_signal(h, "e1", symbol="ETH/USDT", ecosystem="defi")
    _r, only_eth = await call(api, PRO, "/api/v1/signals?symbol=eth/usdt")
    assert [s["external_id"] for s in only_eth["signals"]] == ["e1"]
    _r, defi = await call(api, PRO, "/api/v1/signals?ecosystem=DEFI&limit=1")
    assert [s["external_id"] for s in defi["signals"]] == ["e1"]
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    _r, none = await call(api, PRO, f"/api/v1/signals?since={future}")
    assert none["signals"] == []
    for query, name in (("limit=0", "limit"), ("limit=101", "limit"), ("since=yesterday", "since"),
                        ("colour=red", "colour"), ("ecosystem=a%20b", "ecosystem"), ("limit=1&limit=2", "limit")):
        response, problem = await call(api, PRO, f"/api/v1/signals?{query}")
        assert response.status == 422, query
        assert problem["invalid_params"][0]["name"] == name and problem["detail"].startswith(name)
    response, problem = await call(api, PRO, "/api/v1/whales/rankings?metric=luck")
    assert response.status == 422 and problem["invalid_params"][0]["name"] == "metric"
    _r, me = await call(api, PRO, "/api/v1/whoami")
    assert me["usage"]["today"] == 3  # the three good calls above, none of the refused ones


async def test_over_the_minute_limit_a_429_with_retry_after_and_headers_counting_down(api):
    seen = []
    for _ in range(5):
        response, _body = await call(api, FREE, "/api/v1/whales/rankings")
        assert response.status == 200 or (response.status == 429 and _body["type"].endswith("quota-exhausted"))
        seen.append(response.headers["RateLimit"])
    assert seen[0].startswith('"minute";r=4;') and seen[1].startswith('"minute";r=3;')
    assert '"day";r=2;' in seen[0] and '"day";r=0;' in seen[2]
    response, problem = await call(api, FREE, "/api/v1/whales/rankings")
    assert response.status == 429 and problem["type"].endswith("#problem-rate-limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60 and "RateLimit-Policy" in response.headers


async def test_over_the_day_quota_calls_are_charged_to_credit_once_and_refused_without_it(api):
    h = api.h
    for _ in range(4):
        response, _body = await call(api, PRO, "/api/v1/signals")
        assert response.status == 200 and "X-Charged-USD" not in response.headers
    response, problem = await call(api, PRO, "/api/v1/signals")
    assert response.status == 429 and problem["type"].endswith("#problem-quota-exhausted")
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
    assert abs(int(response.headers["Retry-After"]) - (midnight - datetime.now(UTC)).total_seconds()) < 5
    assert await h.app.ledger.credit(PRO) == 0

    await h.app.ledger.top_up(PRO, Decimal("0.05"), Cause("order", "t1"))
    response, _body = await call(api, PRO, "/api/v1/whales/rankings")
    assert response.status == 200 and response.headers["X-Charged-USD"] == "0.02"
    response, _body = await call(api, PRO, "/api/v1/performance")
    assert response.status == 200 and response.headers["X-Charged-USD"] == "0.03"
    assert await h.app.ledger.credit(PRO) == 0
    response, _problem = await call(api, PRO, "/api/v1/signals")
    assert response.status == 429

    _r, usage = await call(api, PRO, "/api/v1/usage?days=7")
    today = usage["days"][0]
    assert today["day"] == datetime.now(UTC).date().isoformat()
    assert today["calls"] == 8 and today["charged_calls"] == 2 and today["credit_spent_usd"] == "0.05"
    assert usage["credit_usd"] == "0.00"


async def test_concurrent_calls_over_the_quota_charge_exactly_what_the_credit_covers(api):
    h = api.h
    for _ in range(4):
        await call(api, PRO, "/api/v1/signals")
    await h.app.ledger.top_up(PRO, Decimal("0.07"), Cause("order", "c1"))
    answers = await asyncio.gather(*(call(api, PRO, "/api/v1/signals") for _ in range(20)))
    statuses = sorted(response.status for response, _body in answers)
    assert statuses == [200] * 7 + [429] * 13
    assert await h.app.ledger.credit(PRO) == 0
    async with h.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ApiCharge)) == 7


async def test_whale_board_free_sees_the_top_five_and_no_card_beyond_them(api):
    h = api.h
    now = datetime.now(UTC)
    trades = [{"id": f"t{w}-{i}", "wallet": f"Wallet{w:04d}", "chain": "solana", "symbol": "SOL", "side": "sell",
               "usd_value": "1000", "pnl_usd": str(10 * (w + 1)), "ts": (now - timedelta(hours=i)).isoformat()}
              for w in range(7) for i in range(5)]
    await h.app.whales.ingest(trades)
    h.app.whales.forget_rankings()
    await h.app.ledger.top_up(FREE, Decimal("1"), Cause("order", "f1"))  # Free's 3 calls a day are not enough here
    _r, free = await call(api, FREE, "/api/v1/whales/rankings?metric=pnl&limit=50")
    assert [w["address"] for w in free["wallets"]] == [f"Wallet{w:04d}" for w in (6, 5, 4, 3, 2)]
    assert free["total"] == 5 and free["wallets"][0]["pnl_usd"] == "350.00"
    _r, beyond = await call(api, FREE, "/api/v1/whales/rankings?offset=5")
    assert beyond["wallets"] == []
    _r, pro = await call(api, PRO, "/api/v1/whales/rankings?metric=pnl&limit=50")
    assert pro["total"] == 7 and len(pro["wallets"]) == 7
    response, refused = await call(api, FREE, "/api/v1/whales/wallets/solana/Wallet0000")
    assert response.status == 403 and refused["feature"] == "whales.full_board"
    response, card = await call(api, PRO, "/api/v1/whales/wallets/solana/Wallet0000")
    assert response.status == 200 and card["figures"]["7d"]["trades"] == 5 and len(card["recent_trades"]) == 5
    response, _card = await call(api, FREE, "/api/v1/whales/wallets/solana/Wallet0006")
    assert response.status == 200
    response, _missing = await call(api, PRO, "/api/v1/whales/wallets/solana/Nobody")
    assert response.status == 404


async def test_performance_carries_the_hash_chain_head(api):
    h = api.h
    await h.app.signals.ingest(SignalIn(id="p1", ecosystem="crypto", symbol="BTC/USDT", side="long", entry="100",
                                        take_profits=["110"], stop_loss="95"))
    await h.app.signals.add_event("p1", EventIn(type="closed", price="110"))
    await h.app.signals.ingest(SignalIn(id="p2", ecosystem="crypto", symbol="ETH/USDT", side="long", entry="10",
                                        take_profits=["11"], stop_loss="9"))
    _r, perf = await call(api, PRO, "/api/v1/performance?period=all")
    async with h.db.session() as session:
        head = await session.scalar(select(Signal.hash).order_by(Signal.id.desc()).limit(1))
    assert perf["chain"]["head"] == head and perf["chain"]["valid"] and perf["chain"]["signals"] == 2
    assert perf["figures"]["trades"] == 1 and perf["figures"]["cumulative_return"] == "0.1"
    assert perf["figures"]["win_rate"] == "1"


async def test_the_openapi_document_is_valid_and_lists_every_route(api):
    response = await api.get("/api/v1/openapi.json")  # no key needed
    assert response.status == 200
    document = await response.json()
    validate(document)  # raises on an invalid OpenAPI 3.1 document
    assert document["openapi"] == "3.1.0"
    served = {(route.method.lower(), route.resource.canonical) for route in api.h.app.web.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/api/v1/")
              and route.method != "HEAD" and "{tail" not in route.resource.canonical
              and not route.resource.canonical.startswith(("/api/v1/docs", "/api/v1/openapi"))}
    documented = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert served == documented and len(served) >= 7
    limit = document["paths"]["/api/v1/signals"]["get"]["parameters"]
    assert {"name": "limit", "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}} in limit
    docs = await api.get("/api/v1/docs")
    assert docs.status == 200 and "swagger-ui-bundle.js" in await docs.text()
    asset = await api.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert asset.status == 200 and len(await asset.read()) > 100_000
    unknown = await api.get("/api/v1/nothing-here")
    assert unknown.status == 404 and unknown.content_type == "application/problem+json"


async def test_two_replicas_with_redis_count_one_users_calls_together(database_url, redis_url):
    """With REDIS_URL set, the minute's limit and the day's count hold across processes: two apps (replicas)
    on one database and one Redis."""
    settings = make_settings(database_url=database_url, redis_url=redis_url,
                             api_limits={"free": {"per_minute": 4, "per_day": 1000}})
    first, second = await Harness(settings).start(), Harness(settings)
    try:
        await first.users.seen(FREE, username=None, first_name="Dev", language_code="en")
        _key, raw = await first.app.api_keys.create(FREE, "shared")
        headers = {"Authorization": f"Bearer {raw}"}
        async with TestClient(TestServer(first.app.web)) as a, TestClient(TestServer(second.app.web)) as b:
            statuses = [(await client.get("/api/v1/whales/rankings", headers=headers)).status
                        for client in (a, b, a, b, a, b)]
            assert statuses == [200, 200, 200, 200, 429, 429]
            me = await (await b.get("/api/v1/whoami", headers=headers)).json()
            assert me["usage"]["today"] == 4
    finally:
        await first.close()
        await second.close()


async def test_the_webhook_over_http_paid_only_public_https_and_its_secret_shown_once(api):
    response = await api.put("/api/v1/webhook", json={"url": "https://example.com/hook"},
                             headers={"Authorization": f"Bearer {api.keys[FREE]}"})
    problem = await response.json()
    assert response.status == 403 and problem["feature"] == "webhooks"
    pro = {"Authorization": f"Bearer {api.keys[PRO]}"}
    for url, reason in (("http://example.com/hook", "https"), ("https://127.0.0.1/hook", "public address"),
                        ("https://user:pw@example.com/", "user name")):
        response = await api.put("/api/v1/webhook", json={"url": url}, headers=pro)
        problem = await response.json()
        assert response.status == 422 and problem["invalid_params"][0]["name"] == "url" and reason in problem["detail"]
    response = await api.put("/api/v1/webhook", json={"url": "https://example.com/x", "events": ["all"]}, headers=pro)
    assert response.status == 422 and (await response.json())["invalid_params"][0]["name"] == "events"
    response = await api.get("/api/v1/webhook", headers=pro)
    assert response.status == 404


async def test_a_webhook_is_set_listed_and_removed_over_http(database_url):
    settings = make_settings(database_url=database_url, api_webhook_allow_private=True)
    h = await Harness(settings).start()
    try:
        await h.users.seen(PRO, username=None, first_name="Dev", language_code="en")
        await h.app.subscriptions.add_time(PRO, "pro", 30, source="grant")
        _key, raw = await h.app.api_keys.create(PRO, "hooks")
        headers = {"Authorization": f"Bearer {raw}"}
        async with TestClient(TestServer(h.app.web)) as client:
            response = await client.put("/api/v1/webhook", json={"url": "http://127.0.0.1:9/hook"}, headers=headers)
            created = await response.json()
            assert response.status == 200 and len(created["secret"]) >= 32
            state = await (await client.get("/api/v1/webhook", headers=headers)).json()
            assert state["url"] == "http://127.0.0.1:9/hook" and state["enabled"] and "secret" not in state
            rotated = await (await client.post("/api/v1/webhook/secret", headers=headers)).json()
            assert rotated["secret"] != created["secret"]
            assert (await (await client.get("/api/v1/webhook/deliveries", headers=headers)).json()) == {
                "deliveries": []}
            assert (await client.delete("/api/v1/webhook", headers=headers)).status == 200
            assert (await client.get("/api/v1/webhook", headers=headers)).status == 404
    finally:
        await h.close()


async def test_a_dataset_bought_with_credit_once_per_key_and_downloaded(api):
    h = api.h
    await add_signal(h, "d1")
    pro = {"Authorization": f"Bearer {api.keys[PRO]}"}
    listing = await (await api.get("/api/v1/datasets", headers=pro)).json()
    offer = next(d for d in listing["datasets"] if d["cut"] == "live" and d["rows"] > 0)
    body = {"cut": "live", "idempotency_key": "order-1"}
    response = await api.post(f"/api/v1/datasets/{offer['id']}/purchases", json=body, headers=pro)
    problem = await response.json()
    assert response.status == 402 and problem["price_usd"] == offer["price_usd"]
    await h.app.ledger.top_up(PRO, Decimal("5"), Cause("order", "d"))
    first, again = [await (await api.post(f"/api/v1/datasets/{offer['id']}/purchases", json=body, headers=pro)).json()
                    for _ in range(2)]
    assert first["purchase_id"] == again["purchase_id"] and first["price_usd"] == offer["price_usd"]
    assert await h.app.ledger.credit(PRO) == Decimal("5") - Decimal(offer["price_usd"])
    link = first["links"]["csv"]
    download = await api.get(link[link.index("/data/"):])
    assert download.status == 200 and "d1" in await download.text()
    usage = await (await api.get("/api/v1/usage", headers=pro)).json()
    assert usage["days"][0]["datasets_usd"] == offer["price_usd"] and usage["days"][0]["credit_spent_usd"] == "0.00"
    mine = await (await api.get("/api/v1/datasets/purchases", headers=pro)).json()
    assert [p["purchase_id"] for p in mine["purchases"]] == [first["purchase_id"]]
    response = await api.post("/api/v1/datasets/nothing/purchases", json={"idempotency_key": "order-2"},
                              headers=pro)
    assert response.status == 404
    other = next(d for d in listing["datasets"] if d["id"] != offer["id"])
    response = await api.post(f"/api/v1/datasets/{other['id']}/purchases", json=body, headers=pro)
    assert response.status == 409 and (await response.json())["type"].endswith("#problem-key-reused")


async def test_keys_and_webhook_secrets_reach_neither_logs_nor_metrics(database_url, caplog):
    caplog.set_level("DEBUG")
    settings = make_settings(database_url=database_url, api_webhook_allow_private=True)
    h = await Harness(settings).start()
    try:
        await h.users.seen(PRO, username=None, first_name="Dev", language_code="en")
        await h.app.subscriptions.add_time(PRO, "pro", 30, source="grant")
        _key, raw = await h.app.api_keys.create(PRO, "logged?")
        headers = {"Authorization": f"Bearer {raw}"}
        async with TestClient(TestServer(h.app.web)) as client:
            secret = (await (await client.put("/api/v1/webhook", json={"url": "http://127.0.0.1:9/h"},
                                              headers=headers)).json())["secret"]
            for path in ("/api/v1/whoami", "/api/v1/signals?limit=0", "/api/v1/nothing"):
                await client.get(path, headers=headers)
            await client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {mistyped(raw)}"})
            metrics = await (await client.get("/metrics")).text()
        assert 'api_requests_total{operation="whoami",status="200"}' in metrics
        for text in (caplog.text, metrics):
            assert raw not in text and raw[:-1] not in text and secret not in text
    finally:
        await h.close()


async def test_enterprise_has_no_day_quota_and_basic_its_own_limits(database_url):
    settings = make_settings(database_url=database_url)  # the tier table's defaults
    h = await Harness(settings).start()
    try:
        keys = {}
        for user_id, plan in ((311, "enterprise"), (312, "basic")):
            await h.users.seen(user_id, username=None, first_name="Dev", language_code="en")
            await h.app.subscriptions.add_time(user_id, plan, 30, source="grant")
            keys[plan] = (await h.app.api_keys.create(user_id, plan))[1]
        async with TestClient(TestServer(h.app.web)) as client:
            response = await client.get("/api/v1/signals", headers={"Authorization": f"Bearer {keys['enterprise']}"})
            assert response.headers["RateLimit-Policy"] == '"minute";q=1200;w=60'  # no day window
            me = await (await client.get("/api/v1/whoami", headers={"X-API-Key": keys["enterprise"]})).json()
            assert me["limits"] == {"per_minute": 1200, "per_day": None} and me["usage"]["today"] == 1
            response = await client.get("/api/v1/signals", headers={"X-API-Key": keys["basic"]})
            assert response.headers["RateLimit-Policy"] == '"minute";q=60;w=60, "day";q=1000;w=86400'
            assert response.headers["RateLimit"].startswith('"minute";r=59;') and '"day";r=999;' in response.headers[
                "RateLimit"]
    finally:
        await h.close()
