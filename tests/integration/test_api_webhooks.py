"""Outbound webhooks of the developer API (issue 17): a paid user sets a URL in /api, every signal and event they
would get is POSTed there signed with their secret (shown once), failures are retried with backoff and a day of
them switches the hook off with a message in the bot; Free users and unsafe URLs (SSRF) are refused."""

import asyncio
import hashlib
import hmac
import json
import logging
import re
from datetime import timedelta

import pytest
from aiohttp import web
from sqlalchemy import select, text

from db.base import utcnow
from db.models_webhooks import ApiWebhookDelivery
from handlers.user.api import ApiDo, ApiHook
from processing.webhook_delivery import WebhookWorker
from services.api_webhooks import Refusal, WebhookRefused, WebhookService, address_refused, check_url, retry_delay
from services.signals import EventIn, SignalIn, validate
from tests.conftest import make_settings
from tests.support.clock import Clock
from tests.support.harness import Harness

SECRET = re.compile(r"<code>(whsec_[A-Za-z0-9_-]+)</code>")
PAID, FREE_USER, OTHER = 31, 32, 33


class Receiver:
    """A local webhook receiver: records every request and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status, text="nope" if self.status >= 300 else "ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        await self._runner.cleanup()

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


def verified(headers: dict[str, str], body: bytes, secret: str) -> bool:
    expected = hmac.new(secret.encode(), f"{headers['X-Timestamp']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Signature"])


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def h(database_url):
    harness = await Harness(make_settings(database_url=database_url, api_webhook_allow_private=True)).start()
    yield harness
    await harness.close()


@pytest.fixture
def clock():
    return Clock(utcnow() + timedelta(seconds=5))  # what the tests queue is due


@pytest.fixture
async def worker(h, clock):
    h.app.signals.clock = clock  # signals are queued on the worker's clock
    w = WebhookWorker(h.db, h.app.webhooks, h.app.notifier, clock=clock)
    yield w
    await w.close()


async def paid_user(h, user_id: int = PAID) -> None:
    await h.users.seen(user_id, username=None, first_name="Dev", language_code="en")
    await h.app.subscriptions.add_time(user_id, "pro", 30, source="test")


async def set_url(h, user_id: int, url: str) -> str:
    """Through the bot: /api → 🔔 Webhook → Set URL → the URL; the answer."""
    await h.send(user_id, "/api")
    await h.press(user_id, ApiHook(do="open").pack())
    await h.press(user_id, ApiHook(do="set").pack())
    await h.send(user_id, url)
    return h.session.texts_to(user_id)[-1]


def signal(n: int = 1) -> SignalIn:
    return validate(SignalIn, {"id": f"wh-{n}", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long",
                               "entry": "142.5", "take_profits": ["150", "158"], "stop_loss": "136"})


async def rows(h) -> list[ApiWebhookDelivery]:
    async with h.db.session() as s:
        return list(await s.scalars(select(ApiWebhookDelivery).order_by(ApiWebhookDelivery.id)))


async def test_signals_and_events_arrive_signed_with_the_secret_shown_once(h, receiver, worker):
    await paid_user(h)
    answer = await set_url(h, PAID, receiver.url)
    assert "Webhook set" in answer and "shown only once" in answer
    secret = SECRET.search(answer).group(1)
    async with h.db.session() as s:  # kept encrypted: not readable in the database
        assert secret not in repr((await s.execute(text("SELECT * FROM api_webhooks"))).all())

    stored = await h.app.signals.ingest(signal())
    assert await worker.run_once() == 1
    [(headers, body)] = receiver.requests
    assert verified(headers, body, secret)
    created = json.loads(body)
    assert headers["X-Webhook-Id"] == created["id"] and headers["User-Agent"].startswith("SignalBot-Webhooks")
    assert created["type"] == "signal.created"
    assert created["data"]["id"] == stored.signal_id and created["data"]["symbol"] == "SOL/USDT"
    assert created["data"]["take_profits"] == ["150", "158"] and created["data"]["events"] == []

    await h.app.signals.add_event("wh-1", validate(EventIn, {"type": "tp_hit", "level": 1, "price": "150"}))
    assert await worker.run_once() == 1
    headers, body = receiver.requests[-1]
    event = json.loads(body)
    assert verified(headers, body, secret) and event["type"] == "signal.event" and event["id"] != created["id"]
    assert event["event"]["type"] == "tp_hit" and event["event"]["price"] == "150"
    assert [e["type"] for e in event["data"]["events"]] == ["tp_hit"]

    await h.press(PAID, ApiHook(do="open").pack())
    screen = h.session.texts_to(PAID)[-1]
    assert receiver.url in screen and "✅ On" in screen and screen.count("✅ received · HTTP 200") == 2
    assert secret not in screen


async def test_free_users_are_refused_and_get_no_deliveries(h, receiver, worker):
    await h.users.seen(FREE_USER, username=None, first_name="Free", language_code="en")
    await h.send(FREE_USER, "/api")
    await h.press(FREE_USER, ApiHook(do="open").pack())
    assert "included in paid plans" in h.session.texts_to(FREE_USER)[-1]
    await h.press(FREE_USER, ApiHook(do="set").pack())
    assert "paid plans only" in h.session.of("AnswerCallbackQuery")[-1].text
    with pytest.raises(WebhookRefused) as refused:
        await h.app.webhooks.register(FREE_USER, receiver.url)
    assert refused.value.refusal == Refusal.PAID_ONLY and "paid plans" in str(refused.value)

    await paid_user(h, OTHER)  # paid when registering, Free when the signal comes
    await h.app.webhooks.register(OTHER, receiver.url)
    async with h.db.transaction() as s:
        await s.execute(text("DELETE FROM subscriptions WHERE user_id = :u"), {"u": OTHER})
    await h.app.signals.ingest(signal())
    assert await worker.run_once() == 0 and receiver.requests == []  # not queued: Free's audience rule


async def test_a_plan_that_lapses_after_queueing_is_skipped(h, receiver, worker):
    await paid_user(h)
    await h.app.webhooks.register(PAID, receiver.url)
    await h.app.signals.ingest(signal())
    async with h.db.transaction() as s:
        await s.execute(text("DELETE FROM subscriptions WHERE user_id = :u"), {"u": PAID})
    assert await worker.run_once() == 1
    assert receiver.requests == [] and [r.status for r in await rows(h)] == ["skipped"]


@pytest.mark.parametrize(("url", "refusal"), [
    ("http://example.com/hook", Refusal.NOT_HTTPS),
    ("ftp://example.com/hook", Refusal.NOT_HTTPS),
    ("https://user:pw@example.com/hook", Refusal.CREDENTIALS),
    ("https://10.1.2.3/hook", Refusal.PRIVATE),
    ("https://127.0.0.1:8443/hook", Refusal.PRIVATE),
    ("https://[::1]/hook", Refusal.PRIVATE),
    ("https://169.254.169.254/latest/meta-data", Refusal.PRIVATE),
    ("https://0.0.0.0/hook", Refusal.PRIVATE),
    ("https://224.0.0.1/hook", Refusal.PRIVATE),
    ("https://[::ffff:192.168.1.1]/hook", Refusal.PRIVATE),
    ("https://localhost/hook", Refusal.PRIVATE),
    ("https://internal.example/hook", Refusal.PRIVATE),  # one of its addresses is private
    ("https://nowhere.example/hook", Refusal.UNRESOLVABLE),
    ("not a url", Refusal.BAD_URL),
    ("https://", Refusal.BAD_URL),
])
async def test_unsafe_urls_are_refused(url, refusal):
    async def resolver(host, port):
        table = {"internal.example": ["93.184.216.34", "10.0.0.7"], "public.example": ["93.184.216.34"],
                 "localhost": ["127.0.0.1", "::1"]}
        if host not in table:
            raise OSError("no such host")
        return table[host]

    with pytest.raises(WebhookRefused) as refused:
        await check_url(url, resolver=resolver)
    assert refused.value.refusal == refusal
    assert await check_url("https://public.example/hook", resolver=resolver) == "https://public.example/hook"
    assert not address_refused("93.184.216.34") and address_refused("100.64.0.1")
    assert address_refused("2002:7f00:1::1") and address_refused("2002:c0a8:101::1")  # 6to4 of 127.0.0.1, 192.168.1.1
    assert not address_refused("2002:5db8:d822::1")  # 6to4 of the public 93.184.216.34


async def test_unsafe_urls_are_refused_in_the_bot_and_the_flow_goes_on(h, receiver):
    await paid_user(h)
    strict = WebhookService(h.db, h.app.subscriptions, material="k")  # as in production
    with pytest.raises(WebhookRefused):
        await strict.register(PAID, receiver.url)  # http, and loopback
    h.app.webhooks.allow_private = False
    try:
        answer = await set_url(h, PAID, "https://192.168.0.10/hook")
        assert "must point to a public address" in answer and "Send another URL" in answer
        await h.send(PAID, "http://example.com/hook")
        assert "must start with https://" in h.session.texts_to(PAID)[-1]
    finally:
        h.app.webhooks.allow_private = True
    await h.send(PAID, receiver.url)  # still in the flow
    assert "Webhook set" in h.session.texts_to(PAID)[-1]


async def test_a_host_repointed_to_a_private_address_after_registering_is_not_posted_to(h):
    await paid_user(h)
    addresses = {"hooks.example": ["93.184.216.34"]}

    async def resolver(host, port):
        return addresses[host]

    hooks = WebhookService(h.db, h.app.subscriptions, material="k", resolver=resolver)
    await hooks.register(PAID, "https://hooks.example/in")
    addresses["hooks.example"] = ["127.0.0.1"]  # DNS rebinding
    await h.app.signals.ingest(signal())
    clock = Clock(utcnow() + timedelta(seconds=5))
    w = WebhookWorker(h.db, hooks, h.app.notifier, clock=clock)
    try:
        assert await w.run_once() == 1
    finally:
        await w.close()
    [row] = await rows(h)
    assert row.status == "queued" and "public address" in row.last_error and row.status_code is None


async def test_failures_back_off_and_a_day_of_them_switches_the_hook_off_with_a_message(h, receiver, worker, clock):
    await paid_user(h)
    await h.app.webhooks.register(PAID, receiver.url)
    receiver.status = 500
    await h.app.signals.ingest(signal())
    waits = []
    while True:
        assert await worker.run_once() == 1
        [row] = await rows(h)
        if row.status != "queued":
            break
        assert row.status_code == 500 and row.last_error == "HTTP 500"
        waits.append(row.next_attempt_at - clock.now)
        clock.now = row.next_attempt_at
    minutes = [int(w.total_seconds() // 60) for w in waits]
    assert minutes[:7] == [1, 2, 4, 8, 16, 32, 60] and set(minutes[6:]) == {60}
    assert row.status == "failed" and clock.now - row.created_at >= timedelta(hours=24)
    assert len(receiver.requests) == len(waits) + 1
    ids = {headers["X-Webhook-Id"] for headers, _ in receiver.requests}
    assert len(ids) == 1 and len({body for _, body in receiver.requests}) == 1  # the same delivery each time

    hook = await h.app.webhooks.get(PAID)
    assert not hook.enabled and hook.disabled_at is not None
    notice = h.session.texts_to(PAID)[-1]
    assert "was switched off" in notice and receiver.url in notice
    await h.app.signals.ingest(signal(2))
    assert len(await rows(h)) == 1  # a switched-off hook gets nothing queued
    await h.press(PAID, ApiHook(do="open").pack())
    assert "Switched off" in h.session.texts_to(PAID)[-1]

    receiver.status = 204
    assert "Webhook set" in await set_url(h, PAID, receiver.url)  # setting it again switches it back on
    await h.app.signals.ingest(signal(3))
    assert await worker.run_once() == 1 and receiver.requests[-1][0]["X-Webhook-Id"] not in ids
    assert (await h.app.webhooks.get(PAID)).failing_since is None


async def test_a_success_resets_the_day_of_failures(h, receiver, worker, clock):
    await paid_user(h)
    await h.app.webhooks.register(PAID, receiver.url)
    receiver.status = 503
    await h.app.signals.ingest(signal(1))
    await worker.run_once()
    assert (await h.app.webhooks.get(PAID)).failing_since is not None
    receiver.status = 200
    clock.advance(hours=20)
    await h.app.signals.ingest(signal(2))
    await worker.run_once()  # both the retry and the new one succeed
    receiver.status = 503
    clock.advance(hours=5)
    await h.app.signals.ingest(signal(3))
    await worker.run_once()
    hook = await h.app.webhooks.get(PAID)
    assert hook.enabled and hook.failing_since is not None  # failing, but not for a day since the success
    assert not any("switched off" in t for t in h.session.texts_to(PAID))


async def test_two_workers_never_post_the_same_delivery_and_a_dead_ones_lease_expires(h, receiver, clock):
    await paid_user(h)
    await h.app.webhooks.register(PAID, receiver.url)
    for n in range(6):
        await h.app.signals.ingest(signal(n))
    first, second = (WebhookWorker(h.db, h.app.webhooks, h.app.notifier, clock=clock, batch=4) for _ in range(2))
    try:
        handled = 0
        while done := sum(await asyncio.gather(first.run_once(), second.run_once())):
            handled += done
        assert handled == 6
        ids = [headers["X-Webhook-Id"] for headers, _ in receiver.requests]
        assert len(ids) == 6 and len(set(ids)) == 6

        await h.app.signals.ingest(signal(9))
        assert len(await first._claim()) == 1  # claimed, then the process dies before posting
        assert await second.run_once() == 0  # leased: not taken
        clock.advance(minutes=3)
        assert await second.run_once() == 1
        assert len(receiver.requests) == 7 and [r.status for r in await rows(h)] == ["delivered"] * 7
    finally:
        await first.close()
        await second.close()


async def test_rotate_and_remove_in_the_bot(h, receiver, worker, caplog):
    caplog.set_level(logging.DEBUG)
    await paid_user(h)
    old = SECRET.search(await set_url(h, PAID, receiver.url)).group(1)
    await h.press(PAID, ApiHook(do="rotate").pack())
    assert "stops signing at once" in h.session.texts_to(PAID)[-1]
    await h.press(PAID, ApiHook(do="rotate_yes").pack())
    new = SECRET.search(h.session.texts_to(PAID)[-1]).group(1)
    assert new != old
    await h.app.signals.ingest(signal())
    await worker.run_once()
    headers, body = receiver.requests[-1]
    assert verified(headers, body, new) and not verified(headers, body, old)
    assert old not in caplog.text and new not in caplog.text

    await h.press(PAID, ApiHook(do="remove").pack())
    await h.press(PAID, ApiHook(do="remove_yes").pack())
    assert "Webhook removed" in h.session.texts_to(PAID)[-1]
    assert await h.app.webhooks.get(PAID) is None and await rows(h) == []
    await h.press(PAID, ApiHook(do="rotate_yes").pack())  # a stale button
    assert "no webhook" in h.session.of("AnswerCallbackQuery")[-1].text
    await h.app.signals.ingest(signal(2))
    assert await worker.run_once() == 0


async def test_the_api_screen_has_a_webhook_button(h):
    await paid_user(h)
    await h.send(PAID, "/api")
    markup = h.session.of("SendMessage")[-1].reply_markup
    labels = [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]
    assert ("🔔 Webhook", ApiHook(do="open").pack()) in labels and ("➕ New key", ApiDo(do="new").pack()) in labels


async def test_the_log_keeps_a_month(h, receiver, worker, clock):
    await paid_user(h)
    await h.app.webhooks.register(PAID, receiver.url)
    await h.app.signals.ingest(signal(1))
    await worker.run_once()
    clock.advance(days=29)
    await h.app.signals.ingest(signal(2))
    assert await worker.prune() == 0
    clock.advance(days=2)
    assert await worker.prune() == 1  # the month-old delivery; the queued one stays
    assert [r.status for r in await h.app.webhooks.deliveries(PAID)] == ["queued"]


def test_retry_delays_double_from_a_minute_up_to_an_hour():
    assert [retry_delay(n) for n in (1, 2, 3, 7, 8, 30)] == [
        timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4), timedelta(hours=1), timedelta(hours=1),
        timedelta(hours=1)]
