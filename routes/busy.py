"""A busy database is a 503 with `Retry-After`, never a 500.

Registered on the HTTP app (routes/app.py). Every endpoint's write is idempotent for its sender (ingest ids,
provider invoice ids), so "retry in a moment" is the right answer to `database is locked` / a full pool:
nothing was stored, and a retry stores it once.
"""

from __future__ import annotations

import logging

from aiohttp import web

from db.engine import is_busy

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2


def busy_response() -> web.Response:
    """RFC 9457 problem details for a request the database could not take now."""
    body = {"type": "about:blank", "title": "Service Unavailable", "status": 503,
            "detail": "the database is busy; nothing was stored, retry shortly"}
    return web.json_response(body, status=503, content_type="application/problem+json",
                             headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@web.middleware
async def busy_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:
        if not is_busy(exc):
            raise
        log.warning("%s %s: database busy (%s); answered 503", request.method, request.path, type(exc).__name__)
        return busy_response()
