"""The developer API and a marketplace provider's signals (issue 19): a subscriber's `/api/v1/signals` lists the
signals of the providers they are subscribed to, at once and marked with the provider, `/signals/{id}` gives one;
anyone else neither sees them nor gets one by id (404), and a lapsed subscriber no longer does; a provider's own
track record is `/performance?provider=`; API webhooks post a subscribed provider's signals and events exactly
once, to subscribers only."""

import json
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from db.base import utcnow
from db.models_marketplace import ProviderSubscription
from db.models_webhooks import ApiWebhookDelivery
from processing.webhook_delivery import WebhookWorker
from services.signals import SignalIn, validate
from tests.conftest import make_settings
from tests.integration.test_api_webhooks import SECRET, Receiver, paid_user, set_url, verified
from tests.integration.test_marketplace import SIGNAL, approved_provider, paid_order
from tests.support.clock import Clock
from tests.support.harness import Harness

ALPHA, SUBSCRIBER, OUTSIDER = 701, 702, 703


@pytest.fixture
async def api(database_url):
    h = await Harness(make_settings(database_url=database_url, api_webhook_allow_private=True)).start()
    async with TestClient(TestServer(h.app.web)) as client:
        client.h = h
        yield client
    await h.close()


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def call(client, key, method, path, body=None):
    response = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
    return response.status, await response.json()


async def lapse(h, user_id: int) -> None:
    """The user's month with the provider runs out."""
    async with h.db.transaction() as session:
        await session.execute(update(ProviderSubscription).where(ProviderSubscription.user_id == user_id)
                              .values(ends_at=utcnow() - timedelta(seconds=1)))


async def test_subscribers_read_a_providers_signals_others_get_404(api):
    h = api.h
    alpha = await approved_provider(h, ALPHA, "Alpha")
    await h.users.seen(SUBSCRIBER, username=None, first_name="Sub", language_code="en")  # on Free
    await paid_order(h, SUBSCRIBER, alpha)
    await paid_user(h, OUTSIDER)  # Pro, not subscribed to Alpha
    keys = {user: (await h.app.api_keys.create(user, "k"))[1] for user in (ALPHA, SUBSCRIBER, OUTSIDER)}
    house = await h.app.signals.ingest(validate(SignalIn, {**SIGNAL, "id": "house-1"}))
    status, body = await call(api, keys[ALPHA], "POST", "/api/v1/provider/signals", SIGNAL)
    assert status == 202
    theirs = body["id"]
    claimed = (utcnow() - timedelta(seconds=20)).isoformat()
    assert (await call(api, keys[ALPHA], "POST", "/api/v1/provider/signals/s-1/events",
                       {"type": "tp_hit", "level": 1, "price": "110", "at": claimed}))[0] == 202

    status, listed = await call(api, keys[SUBSCRIBER], "GET", "/api/v1/signals")
    assert status == 200 and listed["delayed_by_minutes"] == 30  # Free: the house's signal waits, Alpha's not
    [signal] = listed["signals"]
    assert (signal["id"], signal["external_id"], signal["provider"]) == (theirs, "s-1", {"id": alpha, "name": "Alpha"})
    assert [e["type"] for e in signal["events"]] == ["tp_hit"] and signal["events"][0]["claimed_at"] is not None
    status, one = await call(api, keys[SUBSCRIBER], "GET", f"/api/v1/signals/{theirs}")
    assert status == 200 and one == signal

    status, listed = await call(api, keys[OUTSIDER], "GET", "/api/v1/signals")
    assert [(s["id"], s["provider"]) for s in listed["signals"]] == [(house.signal_id, None)]
    status, problem = await call(api, keys[OUTSIDER], "GET", f"/api/v1/signals/{theirs}")
    assert status == 404 and problem["title"] == "Not Found"

    status, record = await call(api, keys[OUTSIDER], "GET", f"/api/v1/performance?provider={alpha}&period=all")
    assert status == 200 and record["provider"] == {"id": alpha, "name": "Alpha"}
    assert record["chain"]["valid"] is True and (record["chain"]["signals"], record["chain"]["events"]) == (1, 1)
    status, record = await call(api, keys[OUTSIDER], "GET", "/api/v1/performance?period=all")
    assert record["provider"] is None and record["chain"]["signals"] == 1  # the house's: its own signal only
    assert (await call(api, keys[OUTSIDER], "GET", "/api/v1/performance?provider=9999"))[0] == 404

    await lapse(h, SUBSCRIBER)
    assert (await call(api, keys[SUBSCRIBER], "GET", f"/api/v1/signals/{theirs}"))[0] == 404
    status, listed = await call(api, keys[SUBSCRIBER], "GET", "/api/v1/signals")
    assert status == 200 and listed["signals"] == []


async def test_api_webhooks_post_a_providers_signals_once_and_to_subscribers_only(api, receiver):
    h = api.h
    clock = Clock(utcnow() + timedelta(seconds=5))
    h.app.signals.clock = clock
    worker = WebhookWorker(h.db, h.app.webhooks, h.app.notifier, clock=clock)
    alpha = await approved_provider(h, ALPHA, "Alpha")
    secrets = {}
    for user in (SUBSCRIBER, OUTSIDER):
        await paid_user(h, user)
        secrets[user] = SECRET.search(await set_url(h, user, f"{receiver.url}?user={user}")).group(1)
    await paid_order(h, SUBSCRIBER, alpha)
    _key, key = await h.app.api_keys.create(ALPHA, "k")
    try:
        assert (await call(api, key, "POST", "/api/v1/provider/signals", SIGNAL))[0] == 202
        assert (await call(api, key, "POST", "/api/v1/provider/signals", SIGNAL))[0] == 200  # a retry: nothing new
        assert await worker.run_once() == 1 and await worker.run_once() == 0
        [(headers, body)] = receiver.requests
        assert verified(headers, body, secrets[SUBSCRIBER])  # signed with the subscriber's secret: theirs
        created = json.loads(body)
        assert created["type"] == "signal.created" and created["data"]["provider"] == {"id": alpha, "name": "Alpha"}
        assert created["data"]["external_id"] == "s-1"

        claimed = (clock.now - timedelta(seconds=10)).isoformat()
        assert (await call(api, key, "POST", "/api/v1/provider/signals/s-1/events",
                           {"type": "tp_hit", "level": 1, "price": "110", "at": claimed}))[0] == 202
        assert await worker.run_once() == 1
        headers, body = receiver.requests[-1]
        event = json.loads(body)
        assert verified(headers, body, secrets[SUBSCRIBER]) and event["type"] == "signal.event"
        assert event["event"]["claimed_at"] is not None and event["data"]["provider"]["name"] == "Alpha"

        assert (await call(api, key, "POST", "/api/v1/provider/signals", {**SIGNAL, "id": "s-2"}))[0] == 202
        await lapse(h, SUBSCRIBER)  # queued while subscribed, due after the month ran out: not posted
        assert await worker.run_once() == 1 and len(receiver.requests) == 2
        assert (await call(api, key, "POST", "/api/v1/provider/signals/s-1/events",
                           {"type": "closed", "price": "112"}))[0] == 202
        assert await worker.run_once() == 0  # nothing queued for a lapsed subscriber
        async with h.db.session() as session:
            log = [(d.user_id, d.kind, d.status, d.last_error) for d in await session.scalars(
                select(ApiWebhookDelivery).order_by(ApiWebhookDelivery.id))]
        assert log == [(SUBSCRIBER, "signal.created", "delivered", None),
                       (SUBSCRIBER, "signal.event", "delivered", None),
                       (SUBSCRIBER, "signal.created", "skipped", "no longer subscribed to the provider")]
    finally:
        await worker.close()
