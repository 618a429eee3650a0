"""The HTTP app served beside the bot: health, metrics, and (later) webhooks and ingest."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from bot.web_busy import busy_middleware
from db.engine import Database

DATABASE = web.AppKey("database", Database)
STARTED = web.AppKey("started", float)


WebhookHandler = Callable[[str, Mapping[str, str], bytes], Awaitable[int]]
PAYMENT_WEBHOOKS = ("cryptopay", "kryptoexpress")


def build_web_app(database: Database, *, payment_webhook: WebhookHandler | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[DATABASE] = database
    app[STARTED] = time.monotonic()
    app.middlewares.append(busy_middleware)  # a busy database: 503 + Retry-After, never 500
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if payment_webhook is not None:
        for provider in PAYMENT_WEBHOOKS:
            app.router.add_post(f"/webhooks/{provider}", _payment_webhook(provider, payment_webhook))
    return app


def _payment_webhook(provider: str, handle: WebhookHandler):
    async def receive(request: web.Request) -> web.Response:
        status = await handle(provider, request.headers, await request.read())
        messages = {200: "ok", 401: "invalid signature", 404: "provider not configured",
                    503: "could not confirm with the provider, retry later"}
        return web.json_response({"ok": status == 200, "result": messages.get(status, "error")}, status=status)

    return receive


async def healthz(request: web.Request) -> web.Response:
    ok = await request.app[DATABASE].ping()
    body = {
        "status": "ok" if ok else "unavailable",
        "database": "ok" if ok else "unreachable",
        "uptime_seconds": round(time.monotonic() - request.app[STARTED], 1),
    }
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
