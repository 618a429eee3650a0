"""HTTP ingest: `POST /api/signals` and `POST /api/signals/{id}/events` (docs/reference.md; README "Signals").

Authentication (timestamp window, HMAC over the raw body, IP allow-list) is processing.ingest_auth's;
a refused or invalid request changes nothing. `{id}` in the events path is the sender's id (our own
numeric id is accepted too when no sender's id matches). An event's optional `at` (ISO 8601 with a UTC offset:
when the price was reached) is the same field as on a provider's events (services.signals.EventIn): stored and
hashed with the event, refused with 422 naming `at` when ahead of our clock by over 60 s or before the signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from processing.ingest_auth import IngestAuth, error_response
from services.signals import EventIn, EventOutcome, InvalidInput, SignalIn, SignalService, validate

log = logging.getLogger(__name__)


def add_signal_routes(app: web.Application, auth: IngestAuth, signals: SignalService,
                      queued: Callable[[], None]) -> None:
    """Register the ingest routes; `queued()` is called when deliveries were queued (wakes the worker)."""

    async def receive_signal(request: web.Request) -> web.Response:
        payload = await auth.json_object(request)
        if isinstance(payload, web.Response):
            return payload
        try:
            data = validate(SignalIn, payload)
        except InvalidInput as exc:
            return error_response(422, f"{exc.field} {exc.message}", field=exc.field)
        result = await signals.ingest(data)
        if not result.created:
            return web.json_response({"stored": False, "duplicate": True, "id": result.signal_id}, status=200)
        log.info("signal %s (%s) stored; %s deliveries queued", result.signal_id, data.id, result.recipients)
        queued()
        return web.json_response({"stored": True, "id": result.signal_id}, status=202)

    async def receive_event(request: web.Request) -> web.Response:
        payload = await auth.json_object(request)
        if isinstance(payload, web.Response):
            return payload
        ref = request.match_info["id"]
        if not (len(ref) <= 128 and ref.isprintable()):  # no sender's id looks like this (see SignalIn.id)
            return error_response(404, "unknown signal id", field="id")
        try:
            data = validate(EventIn, payload)
            result = await signals.add_event(ref, data)
        except InvalidInput as exc:
            return error_response(422, f"{exc.field} {exc.message}", field=exc.field)
        if result.status is EventOutcome.NOT_FOUND:
            return error_response(404, "unknown signal id", field="id")
        if result.status is EventOutcome.CLOSED:
            return error_response(409, "the signal is already closed")
        if result.status is EventOutcome.DUPLICATE:
            return web.json_response({"stored": False, "duplicate": True}, status=200)
        queued()
        return web.json_response({"stored": True, "id": result.event_id}, status=202)

    auth.attach(app)
    app.router.add_post("/api/signals", receive_signal)
    app.router.add_post("/api/signals/{id}/events", receive_event)
