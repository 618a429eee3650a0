"""An event's claimed time (`at`, issue 19's late-events flag): a provider publishing events long after the
prices they claim is flagged with its reason in the admins' /providers, a punctual one is not; a claimed time
in the future, before the signal, or malformed is refused naming `at` and changes nothing; the operator's own
ingest takes `at` too; figures use arrival times only; the claimed time is on the hash chain when given, and
events without it hash as before."""

import json
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from db.base import utcnow
from db.models_signals import SignalEvent
from processing.ingest_auth import signed_headers
from tests.conftest import ADMIN_ID, make_settings
from tests.integration.test_market_board import last_markup, last_text
from tests.integration.test_marketplace import SIGNAL, approved_provider
from tests.support.clock import Clock
from tests.support.harness import Harness

LATE, PUNCTUAL = 611, 612
INGEST_SECRET = "claimed-ingest-secret"


@pytest.fixture
async def api(database_url):
    h = await Harness(make_settings(database_url=database_url, signal_webhook_secret=INGEST_SECRET)).start()
    h.app.signals.clock = Clock(utcnow() - timedelta(hours=3))  # signals arrive 3 h ago, their events later
    async with TestClient(TestServer(h.app.web)) as client:
        client.h = h
        yield client
    await h.close()


async def post(client, key, path, body):
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    return response.status, await response.json()


def iso(at) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def events_stored(h) -> int:
    async with h.db.session() as session:
        return await session.scalar(select(func.count()).select_from(SignalEvent))


async def test_late_claims_are_flagged_in_providers_and_punctual_ones_are_not(api):
    h, clock = api.h, api.h.app.signals.clock
    late = await approved_provider(h, LATE, "Laggard")
    punctual = await approved_provider(h, PUNCTUAL, "Prompt")
    keys = {late: (await h.app.api_keys.create(LATE, "bot"))[1],
            punctual: (await h.app.api_keys.create(PUNCTUAL, "bot"))[1]}
    for key in keys.values():
        for n in (1, 2, 3):
            status, _body = await post(api, key, "/api/v1/provider/signals", {**SIGNAL, "id": f"s{n}"})
            assert status == 202
    published = clock.now
    clock.advance(hours=2)  # the events arrive two hours later
    for n in (1, 2, 3):  # Laggard claims the targets were hit 10 minutes after publishing: 1 h 50 min late
        status, body = await post(api, keys[late], f"/api/v1/provider/signals/s{n}/events",
                                  {"type": "tp_hit", "level": 2, "price": "120",
                                   "at": iso(published + timedelta(minutes=10))})
        assert status == 202 and body["stored"] is True
        status, body = await post(api, keys[punctual], f"/api/v1/provider/signals/s{n}/events",  # 30 s ago
                                  {"type": "tp_hit", "level": 2, "price": "120",
                                   "at": iso(clock.now - timedelta(seconds=30))})
        assert status == 202 and body["stored"] is True

    admin = h.user(ADMIN_ID)
    await h.send(admin, "/providers")
    labels = [text for text, _data in last_markup(h)]
    assert "✅ Laggard · $25.00 ⚠️" in labels and "✅ Prompt · $25.00" in labels
    await h.press(admin, f"apv:{late}")
    card = last_text(h, ADMIN_ID)
    assert "⚠️ Late events: 3 of 3 events with a claimed time arrived more than 5 min after it (first: signal s" \
        in card
    await h.press(admin, f"apv:{punctual}")
    assert "⚠️" not in last_text(h, ADMIN_ID)

    trades, chain = await h.app.signals.track_record(late)  # figures from arrival times; the chain holds `at`
    assert chain.ok and [t.closed_at for t in trades] == [clock.now] * 3
    async with h.db.transaction() as session:  # a claimed time edited afterwards breaks the chain
        await session.execute(update(SignalEvent).where(SignalEvent.provider_id == late)
                              .values(claimed_at=published))
    _trades, chain = await h.app.signals.track_record(late)
    assert not chain.ok and chain.broken_at.startswith("event ")


async def test_a_future_early_or_malformed_claimed_time_is_refused_and_changes_nothing(api):
    h, clock = api.h, api.h.app.signals.clock
    provider = await approved_provider(h, LATE, "Laggard")
    _key, key = await h.app.api_keys.create(LATE, "bot")
    assert (await post(api, key, "/api/v1/provider/signals", SIGNAL))[0] == 202
    received = clock.now
    clock.advance(minutes=20)
    path = "/api/v1/provider/signals/s-1/events"
    for at, reason in ((iso(clock.now + timedelta(minutes=5)), "is in the future"),
                       (iso(received - timedelta(minutes=5)), "is before the signal was received"),
                       ("2026-12-04T10:00:00", "must carry a UTC offset"),
                       ("yesterday at noon", "must be an ISO 8601 time"),
                       (1764842400, "must be an ISO 8601 time")):
        status, problem = await post(api, key, path, {"type": "closed", "price": "104", "at": at})
        assert status == 422, at
        assert problem["invalid_params"][0]["name"] == "at" and reason in problem["detail"], (at, problem)
    assert await events_stored(h) == 0
    within_skew = iso(clock.now + timedelta(seconds=50))  # a sender's clock slightly ahead is fine
    assert (await post(api, key, path, {"type": "closed", "price": "104", "at": within_skew}))[0] == 202
    assert (await h.app.signals.track_record(provider))[1].ok


async def test_the_operators_ingest_takes_at_and_old_events_without_it_still_verify(api):
    h, clock = api.h, api.h.app.signals.clock

    async def ingest(path: str, payload: dict):
        body = json.dumps(payload).encode()
        response = await api.post(path, data=body, headers=signed_headers(INGEST_SECRET, body))
        return response.status, await response.json()

    for n in (1, 2):
        assert (await ingest("/api/signals", {**SIGNAL, "id": f"h-{n}"}))[0] == 202
    clock.advance(minutes=30)
    assert (await ingest("/api/signals/h-1/events", {"type": "tp_hit", "level": 1, "price": "110"}))[0] == 202
    status, body = await ingest("/api/signals/h-2/events", {"type": "closed", "price": "104",
                                                            "at": iso(clock.now + timedelta(hours=1))})
    assert status == 422 and body["field"] == "at"
    claimed = clock.now - timedelta(minutes=2)
    assert (await ingest("/api/signals/h-2/events", {"type": "closed", "price": "104", "at": iso(claimed)}))[0] == 202
    async with h.db.session() as session:
        stored = {e.type: e.claimed_at for e in await session.scalars(select(SignalEvent))}
    assert stored == {"tp_hit": None, "closed": claimed}
    trades, chain = await h.app.signals.track_record()
    assert chain.ok and chain.length == 2 and [t.closed_at for t in trades] == [clock.now]
