"""The HTTP app served beside the bot: health, metrics, payment webhooks, ingest and the Telegram webhook.

Every POST route reads at most its own body cap (`BODY_LIMITS`, `DEFAULT_BODY_LIMIT` for the rest): a
declared ``Content-Length`` above it is answered 413 before anything is read, and a streamed body is
cut off at the cap (413 too). Each route then authenticates the raw bytes before parsing them (README,
"Security").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from aiogram import Bot
from aiogram.types import Update
from aiogram.types.update import UpdateTypeLookupError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from db.engine import Database
from routes.busy import busy_middleware
from services import safe_json
from services.payments import registry as payment_registry

log = logging.getLogger(__name__)

DATABASE = web.AppKey("database", Database)
STARTED = web.AppKey("started", float)
ROUTE_LIMITS = web.AppKey("route_limits", dict)
LEADER = web.AppKey("leader", Callable[[], bool])


WebhookHandler = Callable[[str, Mapping[str, str], bytes], Awaitable[int]]
KIB = 1024
#: Largest body each POST route reads (by its route pattern); keep README's security table in step.
BODY_LIMITS: dict[str, int] = {
    **payment_registry.webhook_routes(),  # each payment provider's webhook, capped by its module
    "/api/signals": 16 * KIB,  # one signal, a 500-character note
    "/api/signals/{id}/events": 4 * KIB,  # {"type", "level", "price"}
    "/api/whales/trades": 1024 * KIB,  # up to 1,000 trades (~250 bytes each, 1 KB at every field's maximum)
    "/telegram/webhook": 256 * KIB,  # one Telegram update
    "/api/v1/webhook/secret": 4 * KIB,  # no body (the developer API reads at most its endpoint's own cap)
    "/api/v1/datasets/{id}/purchases": 4 * KIB,  # {"cut", "idempotency_key"}
    "/api/v1/provider/signals": 16 * KIB,  # a marketplace provider's signal: as /api/signals
    "/api/v1/provider/signals/{id}/events": 4 * KIB,  # as /api/signals/{id}/events
}
#: Any other POST route.
DEFAULT_BODY_LIMIT = 64 * KIB


@web.middleware
async def body_limit(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    """413 for a declared body over the route's cap; otherwise the request reads at most the cap."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return await handler(request)
    resource = request.match_info.route.resource
    limit = request.app.get(ROUTE_LIMITS, BODY_LIMITS).get(resource.canonical if resource is not None else "",
                                                          DEFAULT_BODY_LIMIT)
    if request.content_length is not None and request.content_length > limit:
        response = web.json_response({"ok": False, "error": f"body larger than {limit} bytes"}, status=413)
        response.force_close()
        return response
    return await handler(request.clone(client_max_size=limit))


class TelegramWebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler, with the body checked before the dispatcher sees it: the secret token
    first (401, nothing read), then at most `safe_json.MAX_DEPTH` levels of JSON forming a valid Update
    (400 otherwise: a malformed update never reaches a handler or a background task). An update of a kind
    this aiogram does not know is acknowledged (200) and dropped, so Telegram does not retry it."""

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot):
            return web.Response(body="Unauthorized", status=401)
        update = _update(await request.read(), bot)
        if update is None:
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        try:
            update.event_type  # noqa: B018  (raises for an update of no known kind)
        except UpdateTypeLookupError:
            log.info("dropped Telegram update %s of a kind this bot does not know", update.update_id)
            return web.json_response({})
        return await super().handle(request)


def _update(body: bytes, bot: Bot) -> Update | None:
    try:
        return Update.model_validate(safe_json.loads(body), context={"bot": bot})
    except ValueError:  # bad JSON, too deep, or pydantic's ValidationError
        return None


def build_web_app(database: Database, *, payment_webhook: WebhookHandler | None = None,
                  leader: Callable[[], bool] | None = None) -> web.Application:
    """`leader` says whether this process runs the scheduled jobs now (/healthz); None: a single process,
    always the leader."""
    app = web.Application(client_max_size=DEFAULT_BODY_LIMIT, middlewares=[body_limit])
    app[DATABASE] = database
    app[LEADER] = leader or (lambda: True)
    app[STARTED] = time.monotonic()
    app.middlewares.append(busy_middleware)  # a busy database: 503 + Retry-After, never 500
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app[ROUTE_LIMITS] = {**BODY_LIMITS, **payment_registry.webhook_routes()}  # the providers registered now
    if payment_webhook is not None:
        for path in payment_registry.webhook_routes():
            provider = path.removeprefix("/webhooks/")
            app.router.add_post(path, _payment_webhook(provider, payment_webhook))
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
        "leader": request.app[LEADER](),
    }
    return web.json_response(body, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
