"""The developer API, `/api/v1` (README "Developer API"; the contract's "Developer API" section).

Every endpoint is one `Endpoint`: its path, its models (query, path, body, answer), and its metered group.
`answer()` runs the same steps for all of them, in this order:

1. the key (`Authorization: Bearer <key>` or `X-API-Key`): missing, malformed, unknown, revoked or rolled past
   its grace period is one 401 that does not say which;
2. the caller's plan at this moment, read with the key in one query (a plan change applies to the next
   request); a banned owner gets 403;
3. the parameters, validated by the endpoint's models: 422 naming the parameter, not counted;
4. the limits (services.api_metering): over the minute's limit 429 + `Retry-After`; over the day's quota the
   call is charged to API credit at the group's price — after the answer is computed and before it is sent,
   so a call is charged only for an answer, and 429 (seconds to the next UTC day) when the credit is short;
5. the answer, with the IETF `RateLimit-Policy` / `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers)
   and `X-Request-Id`. Errors are RFC 9457 problem details.

The OpenAPI document (routes/openapi.py) is generated from the same `Endpoint` list and models.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from routes.openapi import add_docs_routes
from services import safe_json
from services.api_data import ApiData, NotEntitled, features
from services.api_keys import ApiCaller, ApiKeyService
from services.api_metering import ApiMeter, Window, seconds_to_utc_midnight
from services.api_schema import (
    Limits,
    Performance,
    SignalList,
    SignalOut,
    TodayUsage,
    Usage,
    UsageDay,
    WalletCard,
    WhaleBoard,
    WhoAmI,
    Wire,
)
from services.ledger import LedgerService
from services.signals import InvalidInput
from services.subscriptions import Current
from transport.metrics import API_CALLS

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
DOCS_PATH = f"{PREFIX}/docs"
PROBLEM = "application/problem+json"


# --- parameters ---------------------------------------------------------------------------------

class Params(BaseModel):
    """Query or path parameters: unknown names are refused, so a typo is a 422, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Ecosystem = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$",
                  description="e.g. crypto, forex (case-insensitive)")


class SignalsQuery(Params):
    ecosystem: str | None = Ecosystem
    symbol: str | None = Field(None, min_length=1, max_length=41, pattern=r"^[A-Za-z0-9]+(/[A-Za-z0-9]+)?$",
                               description="e.g. BTC/USDT (case-insensitive)")
    since: datetime | None = Field(None, description="only signals received at or after this time (ISO 8601; "
                                                     "UTC when no offset is given)")
    limit: int = Field(20, ge=1, le=100)

    @field_validator("since")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range") from None


class SignalPath(Params):
    id: int = Field(ge=1, le=2**31 - 1, description="the signal's `id` from the list")


class PerformanceQuery(Params):
    ecosystem: str | None = Ecosystem
    period: Literal["7d", "30d", "all"] = "30d"
    provider: int | None = Field(None, ge=1, le=2**31 - 1,
                                 description="a marketplace provider's id (`provider.id` of its signals): its own "
                                             "track record and hash chain; omitted: the house's")


class RankingsQuery(Params):
    period: Literal["7d", "30d", "all"] = "7d"
    metric: Literal["score", "pnl", "roi", "win_rate", "volume"] = "score"
    limit: int = Field(10, ge=1, le=100)
    offset: int = Field(0, ge=0, le=100_000)


class WalletPath(Params):
    chain: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", description="e.g. solana, ethereum")
    address: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class UsageQuery(Params):
    days: int = Field(30, ge=1, le=366)


# --- endpoints ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated request, its parameters validated."""

    caller: ApiCaller
    current: Current
    query: Any
    path: Any
    body: Any
    request_id: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str  # under PREFIX
    name: str  # the OpenAPI operationId
    summary: str
    answer: Callable[[Call], Awaitable[BaseModel | None]]  # None: 404
    response: type[BaseModel]
    group: str | None = None  # metered group (API_PRICES); None: not counted
    query: type[Params] | None = None
    path_params: type[Params] | None = None
    body: type[BaseModel] | None = None
    body_limit: int = 4096
    errors: tuple[int, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = field(default=())


class Problem(Exception):
    """An RFC 9457 answer: `slug` names its type (documented on the docs page)."""

    def __init__(self, status: int, slug: str, title: str, detail: str, *, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers, self.extra = dict(headers or {}), extra


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"type": f"{DOCS_PATH}#problem-{problem.slug}", "title": problem.title, "status": problem.status,
            "detail": problem.detail, **problem.extra}
    return web.json_response(body, status=problem.status, content_type=PROBLEM,
                             headers={**(headers or {}), **problem.headers})


UNAUTHORIZED = Problem(401, "unauthorized", "Unauthorized",
                       "a valid API key is required: Authorization: Bearer <key> (create one with /api in the bot)",
                       headers={"WWW-Authenticate": 'Bearer realm="api"'})


def presented_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip() or None


def rate_limit_headers(windows: tuple[Window, ...]) -> dict[str, str]:
    """`RateLimit-Policy: "minute";q=60;w=60, "day";q=1000;w=86400` and `RateLimit: "minute";r=59;t=60, …`."""
    if not windows:
        return {}
    return {"RateLimit-Policy": ", ".join(f'"{w.name}";q={w.quota};w={w.seconds}' for w in windows),
            "RateLimit": ", ".join(f'"{w.name}";r={w.remaining};t={w.reset}' for w in windows)}


def _invalid(exc: ValidationError, where: str) -> Problem:
    error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"]) or where
    reason = "unknown parameter" if error["type"] == "extra_forbidden" else error["msg"]
    if isinstance(original := (error.get("ctx") or {}).get("error"), InvalidInput):  # a check across fields
        name, reason = original.field, original.message
    return Problem(422, "invalid-parameter", "Invalid parameter", f"{name}: {reason}",
                   invalid_params=[{"name": name, "in": where, "reason": reason}])


def _params(model: type[Params] | None, values: Mapping[str, str], where: str) -> Any:
    if model is None:
        return None
    repeated = [name for name in values if where == "query" and len(values.getall(name)) > 1]  # type: ignore[attr-defined]
    if repeated:
        name = repeated[0]
        raise Problem(422, "invalid-parameter", "Invalid parameter", f"{name}: given more than once",
                      invalid_params=[{"name": name, "in": where, "reason": "given more than once"}])
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise _invalid(exc, where) from None


async def _body(request: web.Request, endpoint: Endpoint) -> Any:
    try:  # the whole body, at most the route's cap (routes.app.body_limit set client_max_size)
        raw = await request.read() if request.can_read_body else b""
    except web.HTTPRequestEntityTooLarge:
        raw = b"x" * (endpoint.body_limit + 1)
    if len(raw) > endpoint.body_limit:
        raise Problem(413, "too-large", "Payload Too Large", f"the body may be at most {endpoint.body_limit} bytes")
    if endpoint.body is None:
        if raw:
            raise Problem(422, "invalid-parameter", "Invalid body", "this endpoint takes no body",
                          invalid_params=[{"name": "body", "in": "body", "reason": "not expected"}])
        return None
    try:
        return endpoint.body.model_validate(safe_json.loads(raw))
    except ValidationError as exc:
        raise _invalid(exc, "body") from None
    except ValueError:
        raise Problem(422, "invalid-parameter", "Invalid body", "the body is not a JSON object",
                      invalid_params=[{"name": "body", "in": "body", "reason": "not JSON"}]) from None


class ApiV1:
    """The `/api/v1` endpoints and the steps every request goes through."""

    def __init__(self, keys: ApiKeyService, meter: ApiMeter, data: ApiData, ledger: LedgerService) -> None:
        self.keys, self.meter, self.data, self.ledger = keys, meter, data, ledger
        self.endpoints: list[Endpoint] = [
            Endpoint("GET", "/whoami", "whoami", "Who the key belongs to, its plan, features, limits and credit",
                     self.whoami, WhoAmI, tags=("account",),
                     description="Also the entitlement check for licensed add-ons: a feature is listed when the "
                                 "plan includes it. Not counted."),
            Endpoint("GET", "/signals", "listSignals", "The latest signals the plan may see", self.signals, SignalList,
                     group="signals", query=SignalsQuery, tags=("signals",),
                     description="Within the plan's history window; on Free, signals appear after the Free delay. "
                                 "Also the signals of the marketplace providers you are subscribed to, while "
                                 "subscribed (within the same window, at once), marked with their `provider`."),
            Endpoint("GET", "/signals/{id}", "getSignal", "One signal with its events", self.signal, SignalOut,
                     group="signals", path_params=SignalPath, errors=(403, 404), tags=("signals",),
                     description="A marketplace provider's signal is 404 unless you are subscribed to it now."),
            Endpoint("GET", "/performance", "getPerformance", "The verified track record", self.performance,
                     Performance, group="analytics", query=PerformanceQuery, errors=(404,), tags=("signals",),
                     description="Win rate, average R, return, drawdown and Sharpe of closed signals, and the "
                                 "hash chain's head (anyone can recompute it). `?provider=` gives an approved "
                                 "marketplace provider's (public, as its /market card); 404 for any other id."),
            Endpoint("GET", "/whales/rankings", "getWhaleRankings", "The whale leaderboard", self.rankings, WhaleBoard,
                     group="whales", query=RankingsQuery, tags=("whales",),
                     description="Free sees the board's top 5, as in the bot."),
            Endpoint("GET", "/whales/wallets/{chain}/{address}", "getWhaleWallet", "One wallet's card", self.wallet,
                     WalletCard, group="whales", path_params=WalletPath, errors=(403, 404), tags=("whales",)),
            Endpoint("GET", "/usage", "getUsage", "Calls per day and credit spent", self.usage, Usage,
                     query=UsageQuery, tags=("account",), description="Not counted."),
        ]

    def add(self, endpoint: Endpoint) -> None:
        """An endpoint another part of the product contributes (webhooks, datasets)."""
        self.endpoints.append(endpoint)

    # the steps -----------------------------------------------------------------------------------

    def route(self, endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            status, response = 500, None
            try:
                response = await self.answer(endpoint, request)
                status = response.status
                return response
            finally:
                API_CALLS.labels(endpoint.name, str(status)).inc()
        return handle

    async def answer(self, endpoint: Endpoint, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        raw = presented_key(request)
        caller = await self.keys.authenticate(raw) if raw else None
        if caller is None:
            return problem_response(UNAUTHORIZED)
        current = caller.current
        plan = current.plan.code
        headers = {"X-Request-Id": request_id}
        if caller.banned:
            headers |= rate_limit_headers(await self.meter.windows(caller.user_id, plan))
            return problem_response(Problem(403, "forbidden", "Access closed",
                                            "this account's access was closed by an administrator",
                                            feature="account"), headers)
        try:
            call = Call(caller, current, _params(endpoint.query, request.query, "query"),
                        _params(endpoint.path_params, request.match_info, "path"), await _body(request, endpoint),
                        request_id)
        except Problem as problem:
            headers |= rate_limit_headers(await self.meter.windows(caller.user_id, plan))
            return problem_response(problem, headers)
        if endpoint.group is None:
            decision = None
            headers |= rate_limit_headers(await self.meter.windows(caller.user_id, plan))
        else:
            decision = await self.meter.count(caller.user_id, plan, endpoint.group)
            headers |= rate_limit_headers(decision.windows)
            if not decision.allowed:
                return problem_response(Problem(
                    429, "rate-limited", "Too Many Requests",
                    f"over the {current.plan.name} plan's {decision.windows[0].quota} calls per minute",
                    headers={"Retry-After": str(decision.retry_after)}), headers)
        try:
            result = await endpoint.answer(call)
        except NotEntitled as refusal:
            return problem_response(Problem(403, "forbidden", "Not included in your plan", refusal.detail,
                                            feature=refusal.feature), headers)
        except Problem as problem:
            return problem_response(problem, headers)
        if result is None:
            return problem_response(Problem(404, "not-found", "Not Found", "no such item"), headers)
        if decision is not None and decision.charge is not None and not await self.meter.charge(
                caller.user_id, caller.key_id, endpoint.group or "", request.path, request_id, decision.charge):
            retry = seconds_to_utc_midnight(self.meter.clock())
            return problem_response(Problem(
                429, "quota-exhausted", "Daily quota used",
                f"today's {decision.windows[-1].quota} calls are used and your API credit does not cover "
                f"{decision.charge} USD: add credit with /api in the bot, or wait for the next UTC day",
                headers={"Retry-After": str(retry)}, price_usd=str(decision.charge)), headers)
        if decision is not None and decision.charge is not None:
            headers["X-Charged-USD"] = str(decision.charge)
        self.meter.maybe_flush()
        body = result.json_bytes() if isinstance(result, Wire) else result.model_dump_json().encode()
        return web.Response(body=body, content_type="application/json", headers=headers,
                            status=getattr(result, "_status", 200))  # 202: e.g. a provider's signal stored

    # the answers ---------------------------------------------------------------------------------

    async def whoami(self, call: Call) -> WhoAmI:
        plan = call.current.plan
        limits = self.meter.plan_limits(plan.code)
        return WhoAmI(user_id=call.caller.user_id, plan=plan.code, plan_expires_at=call.current.ends_at,
                      features=features(plan), limits=Limits(per_minute=limits.per_minute, per_day=limits.per_day),
                      usage=TodayUsage(today=await self.meter.today(call.caller.user_id)),
                      credit_usd=await self.ledger.credit(call.caller.user_id))

    async def signals(self, call: Call) -> SignalList:
        q: SignalsQuery = call.query
        return await self.data.signal_list(call.current.plan, ecosystem=q.ecosystem, symbol=q.symbol, since=q.since,
                                           limit=q.limit, providers=await self.data.subscribed(call.caller.user_id))

    async def signal(self, call: Call) -> SignalOut | None:
        return await self.data.signal(call.current.plan, call.path.id, await self.data.subscribed(call.caller.user_id))

    async def performance(self, call: Call) -> Performance | None:
        return await self.data.performance(call.query.period, call.query.ecosystem, call.query.provider)

    async def rankings(self, call: Call) -> WhaleBoard:
        q: RankingsQuery = call.query
        return await self.data.board(call.current.plan, q.period, q.metric, offset=q.offset, limit=q.limit)

    async def wallet(self, call: Call) -> WalletCard | None:
        return await self.data.wallet(call.current.plan, call.path.chain, call.path.address)

    async def usage(self, call: Call) -> Usage:
        days = await self.meter.usage(call.caller.user_id, call.query.days)
        return Usage(days=[UsageDay(day=d.day.isoformat(), calls=d.calls, charged_calls=d.charged_calls,
                                    credit_spent_usd=d.calls_usd, datasets_usd=d.datasets_usd) for d in days],
                     credit_usd=await self.ledger.credit(call.caller.user_id))


def add_api_routes(app: web.Application, api: ApiV1) -> None:
    """Register every endpoint, the OpenAPI document and the docs page, and a problem 404 for the rest."""
    for endpoint in api.endpoints:
        app.router.add_route(endpoint.method, PREFIX + endpoint.path, api.route(endpoint))
    add_docs_routes(app, api.endpoints)

    async def unknown(request: web.Request) -> web.Response:
        raw = presented_key(request)
        caller = await api.keys.authenticate(raw) if raw else None
        headers = None  # a valid key's answers all carry the rate-limit headers, this one too (not counted)
        if caller is not None:
            headers = rate_limit_headers(await api.meter.windows(caller.user_id, caller.current.plan.code))
        return problem_response(Problem(404, "not-found", "Not Found", f"no endpoint {request.method} {request.path}"),
                                headers)

    app.router.add_route("*", PREFIX + "/{tail:.*}", unknown)
