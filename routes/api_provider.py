"""Publishing for marketplace providers: `POST /api/v1/provider/signals` and `.../signals/{id}/events` (the
contract's "Provider marketplace"). Bodies are the ingest API's Signal and Event, validated by the same models
(services.signals), and the answers are `POST /api/signals`'s: 202 `{"stored": true, "id"}` for a new signal or
event, 200 `{"stored": false, "duplicate": true}` for a repeat, 404 for a signal not on the caller's own chain
(another provider's id included), 409 for an event on a closed signal. Only an approved provider's keys carry
the `provider` permission: anyone else, a suspended provider included, gets 403. Publishing is not counted
against the plan's limits."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field, PrivateAttr

from routes.api_v1 import Call, Endpoint, Params, Problem
from services.api_schema import Wire
from services.marketplace import PERMISSION, MarketplaceService, State
from services.signals import EventIn, EventOutcome, InvalidInput, SignalIn, SignalService


class Stored(Wire):
    stored: bool
    duplicate: bool | None = Field(None, description="true when this id was stored before (nothing is sent twice)")
    id: int | None = Field(None, description="the signal's (or event's) id on the platform")
    _status: int = PrivateAttr(200)

    @classmethod
    def answer(cls, status: int, **fields) -> Stored:
        stored = cls(**fields)
        stored._status = status
        return stored


class ProviderSignalPath(Params):
    id: str = Field(min_length=1, max_length=128, description="the signal's `id` as you sent it (or ours)")


def provider_endpoints(market: MarketplaceService, signals: SignalService,
                       queued: Callable[[], None]) -> list[Endpoint]:
    """`queued()` wakes the delivery worker."""

    async def publisher(call: Call) -> int:
        provider = await market.mine(call.caller.user_id)
        if provider is None or provider.status != State.APPROVED.value:
            suspended = provider is not None and provider.status == State.SUSPENDED.value
            raise Problem(403, "forbidden", "Provider suspended" if suspended else "Not a provider",
                          "this provider is suspended: publishing is closed" if suspended else
                          "only an approved signal provider's keys may publish: apply with /provider in the bot",
                          feature=PERMISSION)
        return provider.id

    async def publish(call: Call) -> Stored:
        result = await signals.ingest(call.body, provider_id=await publisher(call))
        if not result.created:
            return Stored.answer(200, stored=False, duplicate=True, id=result.signal_id)
        queued()
        return Stored.answer(202, stored=True, id=result.signal_id)

    async def event(call: Call) -> Stored:
        provider_id = await publisher(call)
        ref = call.path.id
        if not ref.isprintable():
            raise Problem(404, "not-found", "Not Found", "unknown signal id")
        try:
            result = await signals.add_event(ref, call.body, provider_id=provider_id)
        except InvalidInput as exc:
            raise Problem(422, "invalid-parameter", "Invalid parameter", f"{exc.field}: {exc.message}",
                          invalid_params=[{"name": exc.field, "in": "body", "reason": exc.message}]) from None
        if result.status is EventOutcome.NOT_FOUND:
            raise Problem(404, "not-found", "Not Found", "no signal with this id on your chain")
        if result.status is EventOutcome.CLOSED:
            raise Problem(409, "closed", "Conflict", "the signal is already closed")
        if result.status is EventOutcome.DUPLICATE:
            return Stored.answer(200, stored=False, duplicate=True)
        queued()
        return Stored.answer(202, stored=True, id=result.event_id)

    tags = ("provider",)
    return [
        Endpoint("POST", "/provider/signals", "publishSignal", "Publish a signal to your subscribers", publish,
                 Stored, body=SignalIn, errors=(403,), tags=tags,
                 description="Approved providers only. The body is the ingest API's Signal; it is stored on your "
                             "own hash chain and sent to your subscribers (their filters apply). Not counted."),
        Endpoint("POST", "/provider/signals/{id}/events", "publishSignalEvent", "Publish a signal's event",
                 event, Stored, body=EventIn, path_params=ProviderSignalPath, errors=(403, 404, 409), tags=tags,
                 description="tp_hit (with level), sl_hit or closed, on one of your own signals, with an optional "
                             "`at`: when the price was reached (events arriving over 5 min after it are flagged "
                             "for review). Not counted."),
    ]
