"""Every /api/v1 endpoint for each plan (issue 17): one world (signals of several ages, a whale board of seven
wallets, API credit for everyone) and one user per plan (Free, Basic, Pro, Enterprise) calling every route the
app serves under /api/v1, with the status and what each plan sees: the history window and the Free delay as in
the bot, the Free whale board's top 5 and closed wallet cards, paid-only webhooks, datasets for every plan,
provider publishing for approved providers only, the docs without a key, and the rate-limit headers on every
answer to a valid key. A route added without a row here fails the test."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import update

from db.models_signals import Signal
from services.ledger import Cause
from services.signals import SignalIn
from tests.conftest import make_settings
from tests.support.harness import Harness

USERS = {"free": 401, "basic": 402, "pro": 403, "enterprise": 404}
PAID = ("basic", "pro", "enterprise")
# signal -> its age; Free sees 7 days after a 30-minute delay, Basic 30 days, Pro 90, Enterprise 365
AGES = {"fresh": timedelta(minutes=1), "delayed": timedelta(minutes=45), "d10": timedelta(days=10),
        "d60": timedelta(days=60), "d200": timedelta(days=200)}
VISIBLE = {"free": {"delayed"}, "basic": {"fresh", "delayed", "d10"}, "pro": {"fresh", "delayed", "d10", "d60"},
           "enterprise": set(AGES)}
# the minute's limit raised (it is tested on its own) so that each plan's walk through the API fits one minute
LIMITS = {"free": {"per_minute": 1000, "per_day": 100}, "basic": {"per_minute": 1001, "per_day": 1000},
          "pro": {"per_minute": 1002, "per_day": 10000}, "enterprise": {"per_minute": 1200, "per_day": None}}


@pytest.fixture
async def world(database_url):
    h = await Harness(make_settings(database_url=database_url, api_webhook_allow_private=True,
                                     api_limits=LIMITS)).start()
    ids: dict[str, int] = {}
    for name, age in reversed(AGES.items()):  # oldest first, as they would have arrived
        result = await h.app.signals.ingest(SignalIn(id=name, ecosystem="crypto", symbol="BTC/USDT", side="long",
                                                     entry="100", take_profits=["110"], stop_loss="95"))
        async with h.db.transaction() as session:
            await session.execute(update(Signal).where(Signal.id == result.signal_id).values(
                received_at=datetime.now(UTC) - age))
        ids[name] = result.signal_id
    now = datetime.now(UTC)
    await h.app.whales.ingest([
        {"id": f"t{w}-{i}", "wallet": f"Wallet{w:04d}", "chain": "solana", "symbol": "SOL", "side": "sell",
         "usd_value": "1000", "pnl_usd": str(50 * w + 50), "ts": (now - timedelta(hours=i + 1)).isoformat()}
        for w in range(7) for i in range(5)])
    h.app.whales.forget_rankings()
    keys = {}
    for plan, user_id in USERS.items():
        await h.users.seen(user_id, username=None, first_name=plan, language_code="en")
        if plan != "free":
            await h.app.subscriptions.add_time(user_id, plan, 30, source="grant")
        await h.app.ledger.top_up(user_id, Decimal("5"), Cause("order", f"matrix-{plan}"))
        keys[plan] = (await h.app.api_keys.create(user_id, plan))[1]
    async with TestClient(TestServer(h.app.web)) as client:
        yield h, client, keys, ids
    await h.close()


async def test_every_endpoint_for_each_plan(world):
    h, client, keys, ids = world
    called: set[tuple[str, str]] = set()

    async def call(plan: str | None, method: str, route: str, path: str | None = None, **kwargs):
        called.add((method, route))
        headers = {"Authorization": f"Bearer {keys[plan]}"} if plan else {}
        response = await client.request(method, path or route, headers=headers, **kwargs)
        body = await response.read()
        if plan:  # every answer to a valid key carries the rate-limit headers
            assert "RateLimit" in response.headers and "RateLimit-Policy" in response.headers, (plan, method, path)
        if response.content_type in ("application/json", "application/problem+json"):
            return response.status, await response.json()
        return response.status, body

    whoami = "/api/v1/whoami"
    for plan in USERS:
        where = f"plan {plan}"
        status, me = await call(plan, "GET", whoami)
        assert status == 200 and me["plan"] == plan and me["limits"] == LIMITS[plan], where
        assert ("webhooks" in me["features"]) == (plan in PAID), where
        assert ("signals.realtime" in me["features"]) == (plan in PAID), where
        assert me["credit_usd"] == "5.00", where

        status, listing = await call(plan, "GET", "/api/v1/signals")
        assert status == 200 and {s["external_id"] for s in listing["signals"]} == VISIBLE[plan], where
        assert listing["delayed_by_minutes"] == (30 if plan == "free" else 0), where
        route = "/api/v1/signals/{id}"
        for name in AGES:
            status, one = await call(plan, "GET", route, f"/api/v1/signals/{ids[name]}")
            if name in VISIBLE[plan]:
                assert status == 200 and one["external_id"] == name, (where, name)
            else:
                assert status == 403, (where, name)
                assert one["feature"] == ("signals.realtime" if name == "fresh" else "signals.history"), (where, name)
        assert (await call(plan, "GET", route, "/api/v1/signals/999999"))[0] == 404, where

        status, perf = await call(plan, "GET", "/api/v1/performance", "/api/v1/performance?period=all")
        assert status == 200 and perf["chain"]["head"] and perf["chain"]["signals"] == len(AGES), where

        status, board = await call(plan, "GET", "/api/v1/whales/rankings",
                                   "/api/v1/whales/rankings?metric=pnl&limit=50")
        assert status == 200, where
        expected = [f"Wallet{w:04d}" for w in (6, 5, 4, 3, 2, 1, 0)][: 5 if plan == "free" else 7]
        assert [w["address"] for w in board["wallets"]] == expected and board["total"] == len(expected), where
        route = "/api/v1/whales/wallets/{chain}/{address}"
        status, card = await call(plan, "GET", route, "/api/v1/whales/wallets/solana/Wallet0006")
        assert status == 200 and card["address"] == "Wallet0006", where
        status, card = await call(plan, "GET", route, "/api/v1/whales/wallets/solana/Wallet0000")  # 7th
        assert (status, card.get("feature")) == ((403, "whales.full_board") if plan == "free" else (200, None)), where
        assert (await call(plan, "GET", route, "/api/v1/whales/wallets/solana/Nobody"))[0] == 404, where

        status, usage = await call(plan, "GET", "/api/v1/usage")
        assert status == 200 and usage["credit_usd"] == "5.00" and usage["days"][0]["calls"] >= 1, where

        # webhooks: paid plans only
        status, hook = await call(plan, "PUT", "/api/v1/webhook", json={"url": "http://127.0.0.1:9/hook"})
        if plan == "free":
            assert status == 403 and hook["feature"] == "webhooks", where
        else:
            assert status == 200 and len(hook["secret"]) >= 32, where
        has_hook = plan in PAID
        status, state = await call(plan, "GET", "/api/v1/webhook")
        assert status == (200 if has_hook else 404) and (not has_hook or state["enabled"]), where
        status, rotated = await call(plan, "POST", "/api/v1/webhook/secret")
        assert status == (200 if has_hook else 404) and (not has_hook or rotated["secret"] != hook["secret"]), where
        status, log = await call(plan, "GET", "/api/v1/webhook/deliveries")
        assert status == 200 and log == {"deliveries": []}, where
        status, removed = await call(plan, "DELETE", "/api/v1/webhook")
        assert status == (200 if has_hook else 404) and (not has_hook or removed == {"removed": True}), where

        # datasets: every plan, paid from API credit
        status, offers = await call(plan, "GET", "/api/v1/datasets")
        signals_live = next(o for o in offers["datasets"] if (o["id"], o["cut"]) == ("signals", "live"))
        assert status == 200 and signals_live["rows"] == len(AGES) and signals_live["price_usd"] == "1.00", where
        status, bought = await call(plan, "POST", "/api/v1/datasets/{id}/purchases",
                                    "/api/v1/datasets/signals/purchases",
                                    json={"cut": "live", "idempotency_key": f"matrix-{plan}"})
        assert status == 200 and bought["rows"] == len(AGES) and set(bought["links"]) == {"csv", "parquet"}, where
        status, mine = await call(plan, "GET", "/api/v1/datasets/purchases")
        assert status == 200 and [p["purchase_id"] for p in mine["purchases"]] == [bought["purchase_id"]], where
        assert await h.app.ledger.credit(USERS[plan]) == Decimal("4"), where

        # publishing: approved signal providers only (none of these users is one)
        status, refused = await call(plan, "POST", "/api/v1/provider/signals",
                                     json={"id": "p-1", "ecosystem": "crypto", "symbol": "ETH/USDT", "side": "long",
                                           "entry": "10", "take_profits": ["11"], "stop_loss": "9"})
        assert status == 403 and refused["title"] == "Not a provider", where
        status, refused = await call(plan, "POST", "/api/v1/provider/signals/{id}/events",
                                     "/api/v1/provider/signals/p-1/events", json={"type": "closed", "price": "11"})
        assert status == 403 and refused["title"] == "Not a provider", where

        assert (await call(plan, "GET", "/api/v1/{tail}", "/api/v1/no-such-thing"))[0] == 404, where

    # the documentation needs no key
    status, document = await call(None, "GET", "/api/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.1")
    status, page = await call(None, "GET", "/api/v1/docs")
    assert status == 200 and b"swagger-ui" in page
    status, asset = await call(None, "GET", "/api/v1/docs/assets/{name}", "/api/v1/docs/assets/swagger-ui.css")
    assert status == 200 and asset
    assert (await call(None, "GET", "/api/v1/signals"))[0] == 401

    served = {(route.method, route.resource.canonical) for route in h.app.web.router.routes()
              if route.resource.canonical.startswith("/api/v1") and route.method != "HEAD"}
    served = {("GET", path) if method == "*" else (method, path) for method, path in served}
    assert served <= called, f"endpoints missing from the matrix: {served - called}"
