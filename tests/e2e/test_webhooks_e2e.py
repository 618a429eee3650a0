"""Outbound webhooks in the sandbox (issue 17): a paid user sets a local receiver in /api → 🔔 Webhook, a signal
ingested over signed HTTP arrives there signed with the secret the bot showed once; a failing receiver is retried
and, a day later (injected clock), switched off with a message in the chat; unsafe URLs and Free users are refused."""

import hashlib
import hmac
import json
import re
from datetime import timedelta

import httpx
from aiohttp import web
from sqlalchemy import select

from db.base import utcnow
from db.models_webhooks import ApiWebhookDelivery
from processing.ingest_auth import signed_headers
from processing.webhook_delivery import WebhookWorker
from sandbox.runner import running_sandbox
from tests.support.clock import Clock

INGEST = "e2e-webhook-ingest"
DEV, FREE_USER, OTHER = 761, 762, 763
SIGNAL = {"id": "wh-e2e-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
          "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)

    async def __aenter__(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()


def newest(sb, fragment, chat_id=DEV):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


async def start_user(sb, user_id: int, name: str, *, paid: bool) -> None:
    sb.telegram.add_user(user_id, name)
    sb.telegram.send_text(user_id, "/start")
    await sb.telegram.wait_for(newest(sb, "Choose what you need", user_id))
    if paid:
        await sb.app.subscriptions.add_time(user_id, "pro", 30, source="grant")


async def set_url(sb, user_id: int, url: str) -> None:
    sb.telegram.send_text(user_id, "/api")
    await sb.telegram.wait_for(newest(sb, "Developer API", user_id))
    sb.telegram.press_button(user_id, "🔔 Webhook")
    await sb.telegram.wait_for(newest(sb, "We POST every new signal", user_id))
    sb.telegram.press_button(user_id, "✍️ Set URL")
    await sb.telegram.wait_for(newest(sb, "Send the https URL", user_id))
    sb.telegram.send_text(user_id, url)


async def ingest(sb, payload: dict) -> None:
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"http://127.0.0.1:{sb.app.port}/api/signals", content=body,
                                   headers=signed_headers(INGEST, body))
    assert answer.status_code == 202


async def test_a_signal_arrives_signed_at_the_users_receiver(tmp_path):
    async with Receiver() as receiver, running_sandbox(tmp_path, signal_webhook_secret=INGEST,
                                                       api_webhook_allow_private=True) as sb:
        await start_user(sb, DEV, "Dev", paid=True)
        await set_url(sb, DEV, receiver.url)
        shown = await sb.telegram.wait_for(newest(sb, "Webhook set"))
        secret = re.search(r"whsec_[A-Za-z0-9_-]+", shown["text"]).group(0)
        assert "shown only once" in shown["text"]

        await ingest(sb, SIGNAL)
        await sb.telegram.wait_for(lambda: receiver.requests, timeout=10)
        [(headers, body)] = receiver.requests
        signed = hmac.new(secret.encode(), f"{headers['X-Timestamp']}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signed, headers["X-Signature"])
        posted = json.loads(body)
        assert posted["type"] == "signal.created" and posted["id"] == headers["X-Webhook-Id"]
        assert posted["data"]["external_id"] == "wh-e2e-1" and posted["data"]["entry"] == "142.5"

        sb.telegram.press_button(DEV, "🔔 Webhook")
        screen = await sb.telegram.wait_for(newest(sb, "Latest deliveries"))
        assert "received · HTTP 200" in screen["text"] and secret not in screen["text"]


async def test_a_failing_receiver_is_retried_then_switched_off_with_a_message(tmp_path):
    async with Receiver() as receiver, running_sandbox(tmp_path, signal_webhook_secret=INGEST,
                                                       api_webhook_allow_private=True) as sb:
        receiver.status = 500
        await start_user(sb, DEV, "Dev", paid=True)
        await set_url(sb, DEV, receiver.url)
        await sb.telegram.wait_for(newest(sb, "Webhook set"))
        await ingest(sb, SIGNAL)

        async def failed_once():
            async with sb.app.db.session() as s:
                row = await s.scalar(select(ApiWebhookDelivery))
            return row if row is not None and row.status == "queued" and row.status_code == 500 else None
        row = await sb.telegram.wait_for(failed_once, timeout=10)
        assert row.last_error == "HTTP 500" and row.next_attempt_at - row.created_at >= timedelta(minutes=1)

        later = WebhookWorker(sb.app.db, sb.app.webhooks, sb.app.notifier, clock=Clock(utcnow() + timedelta(hours=25)))
        try:
            assert await later.run_once() == 1  # the retry, a day on: still failing
        finally:
            await later.close()
        notice = await sb.telegram.wait_for(newest(sb, "was switched off"))
        assert receiver.url in notice["text"] and len(receiver.requests) == 2
        assert not (await sb.app.webhooks.get(DEV)).enabled
        sb.telegram.send_text(DEV, "/api")
        await sb.telegram.wait_for(newest(sb, "Developer API"))
        sb.telegram.press_button(DEV, "🔔 Webhook")
        await sb.telegram.wait_for(newest(sb, "Switched off"))


async def refused(sb, user_id: int, url: str, reason: str) -> None:
    before = len(sb.telegram.chat_messages(user_id, bot_only=True))
    sb.telegram.send_text(user_id, url)  # the flow still asks for a URL
    answer = await sb.telegram.wait_for(lambda: sb.telegram.chat_messages(user_id, bot_only=True)[before:])
    assert reason in answer[0]["text"] and "Send another URL" in answer[0]["text"], (url, answer[0]["text"])


async def test_unsafe_urls_and_free_users_are_refused(tmp_path):
    async with running_sandbox(tmp_path) as sb:  # API_WEBHOOK_ALLOW_PRIVATE off, as in production
        await start_user(sb, DEV, "Dev", paid=True)  # each person stays within the bot's 8 taps per 5 s
        await set_url(sb, DEV, "http://example.com/hook")
        await sb.telegram.wait_for(newest(sb, "must start with https://"))
        await refused(sb, DEV, "https://127.0.0.1/hook", "must point to a public address")
        await refused(sb, DEV, "https://localhost/hook", "must point to a public address")
        await start_user(sb, OTHER, "Ops", paid=True)
        await set_url(sb, OTHER, "https://169.254.169.254/latest/meta-data")
        await sb.telegram.wait_for(newest(sb, "must point to a public address", OTHER))
        await refused(sb, OTHER, "https://[::1]:8443/x", "must point to a public address")
        await refused(sb, OTHER, "https://user:pw@example.com/hook", "must not contain a user name or password")
        assert await sb.app.webhooks.get(DEV) is None and await sb.app.webhooks.get(OTHER) is None

        await start_user(sb, FREE_USER, "Free", paid=False)
        sb.telegram.send_text(FREE_USER, "/api")
        await sb.telegram.wait_for(newest(sb, "Developer API", FREE_USER))
        sb.telegram.press_button(FREE_USER, "🔔 Webhook")
        await sb.telegram.wait_for(newest(sb, "Webhooks are included in paid plans", FREE_USER))
        sb.telegram.press_button(FREE_USER, "✍️ Set URL")
        await sb.telegram.wait_for(lambda: any("paid plans only" in c.params.get("text", "")
                                               for c in sb.telegram.calls_of("answerCallbackQuery")))
        assert await sb.app.webhooks.get(FREE_USER) is None
