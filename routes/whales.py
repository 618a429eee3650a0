"""`POST /api/whales/trades`: signed batches of whale trades (README, "Whale leaderboards").

Authentication is the shared `processing.ingest_auth` (503 when SIGNAL_WEBHOOK_SECRET is unset,
403 for an IP outside SIGNAL_WEBHOOK_ALLOWED_IPS, 401 for a stale timestamp or bad signature).

Answers:

* body not a JSON object, ``trades`` missing, not a list, empty or longer than 1,000 -> 422 naming
  the field, nothing stored;
* otherwise every item is validated on its own and the valid new ones are stored in ONE
  transaction; re-sent ids are duplicates (stored once): 200
  ``{"ok": true, "stored": 2, "duplicates": 1, "duplicate_ids": [...], "rejected": [...]}``, each
  rejection ``{"index": 3, "id": "tx-4", "field": "trades[3].usd_value", "reason": "..."}``;
* every item rejected -> 422 with the same body, ``field`` naming the first bad one.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from processing.ingest_auth import IngestAuth, error_response
from services.whale_input import MAX_BATCH
from services.whales import WhaleService

log = logging.getLogger(__name__)
PATH = "/api/whales/trades"


def trades_handler(whales: WhaleService, auth: IngestAuth):
    async def receive(request: web.Request) -> web.Response:
        payload = await auth.json_object(request)
        if isinstance(payload, web.Response):
            return payload
        items = payload.get("trades")
        if not isinstance(items, list):
            return error_response(422, "trades must be a list of trade objects", field="trades")
        if not items:
            return error_response(422, "trades is empty", field="trades")
        if len(items) > MAX_BATCH:
            return error_response(422, f"at most {MAX_BATCH} trades per request", field="trades")
        try:
            report = await whales.ingest(items)
        except SQLAlchemyError:
            log.exception("whale trade batch could not be stored")
            return error_response(503, "could not store the batch, retry later")
        rejected = [r.as_dict() for r in report.rejected]
        body = {"ok": bool(report.stored or report.duplicates), "stored": len(report.stored),
                "duplicates": len(report.duplicates), "duplicate_ids": report.duplicates, "rejected": rejected}
        if not report.stored and not report.duplicates:
            body.update(error="no valid trades in the batch", field=rejected[0]["field"])
            return web.json_response(body, status=422)
        if report.stored:
            log.info("whale trades: %s stored, %s duplicates, %s rejected, %s alerts queued", len(report.stored),
                     len(report.duplicates), len(rejected), report.alerts_queued)
        return web.json_response(body, status=200)

    return receive


def add_routes(app: web.Application, whales: WhaleService, auth: IngestAuth) -> None:
    auth.attach(app)
    app.router.add_post(PATH, trades_handler(whales, auth))
