"""The HTTP app served beside the bot: health, metrics, and (later) webhooks and ingest."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from db.engine import Database

DATABASE = web.AppKey("database", Database)
STARTED = web.AppKey("started", float)


def build_web_app(database: Database) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[DATABASE] = database
    app[STARTED] = time.monotonic()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


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
