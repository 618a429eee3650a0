"""The developer API's OpenAPI 3.1 document, generated from the endpoints and their pydantic models (the same
classes that validate parameters and serialise answers), and the docs page: Swagger UI served from the pinned
`swagger-ui-bundle-v2` package, so it works with no network."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from swagger_ui_bundle import swagger_ui_path

from services.api_schema import Problem

if TYPE_CHECKING:
    from routes.api_v1 import Endpoint

PREFIX = "/api/v1"
VERSION = "1.0.0"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
#: What each problem `type` (`/api/v1/docs#problem-<slug>`) means.
PROBLEMS = {
    "unauthorized": "401: the key is missing, malformed, unknown, revoked or past its grace period.",
    "forbidden": "403: the plan does not include this; `feature` names what is missing.",
    "not-found": "404: no such item or endpoint.",
    "invalid-parameter": "422: a parameter is out of range or unknown; `invalid_params` names it.",
    "too-large": "413: the body is larger than the endpoint takes.",
    "credit-too-low": "402: the API credit does not cover a dataset's price (`price_usd`).",
    "empty": "409: the dataset has no rows at that cut yet.",
    "key-reused": "409: the idempotency key was used for another dataset or cut.",
    "storage-unavailable": "503: the dataset is bought but the object store could not take its files yet; "
                           "send the same request again after `Retry-After` (nothing is charged twice).",
    "rate-limited": "429: over the plan's calls per minute; retry after `Retry-After` seconds.",
    "quota-exhausted": "429: today's quota is used and the API credit does not cover the call's price; "
                       "`Retry-After` is the seconds to the next UTC day.",
}
DESCRIPTION = """Signals, their verified track record, whale rankings and wallet cards, for your own tools.

**Keys.** Create one in the bot with /api and send it as `Authorization: Bearer <key>` (or `X-API-Key: <key>`).
A key acts with its owner's plan at the moment of each request.

**Limits.** Your plan's calls per minute and per UTC day count for all your keys together. Every answer carries
`RateLimit-Policy` and `RateLimit` (IETF draft-ietf-httpapi-ratelimit-headers). Once the day's quota is used,
calls are charged to your prepaid API credit at the group's price (`X-Charged-USD` on the answer); `whoami`,
`usage` and these docs are not counted.

**Errors** are RFC 9457 problem details (`application/problem+json`):

""" + "\n".join(f"- <a id='problem-{slug}'></a>`{slug}` — {text}" for slug, text in PROBLEMS.items())

_RATE_HEADERS = {
    "RateLimit-Policy": {"$ref": "#/components/headers/RateLimit-Policy"},
    "RateLimit": {"$ref": "#/components/headers/RateLimit"},
}
_PATH_PARAM = re.compile(r"{(\w+)}")


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param = {"name": name, "in": where, "required": where == "path" or name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "headers": _RATE_HEADERS,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


ERRORS = {
    401: "The key is missing or not valid",
    402: "The API credit does not cover the price",
    403: "Not included in the plan",
    404: "No such item",
    409: "Nothing to sell yet, or the idempotency key was used for another purchase",
    413: "The body is too large",
    422: "A parameter is not valid",
    429: "Over the limit, or the quota is used and the credit is short",
    503: "Bought, but the download storage could not take the files yet: send the same request again",
}


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `endpoints`."""
    answers = {e.response for e in endpoints} | {Problem}
    bodies = {e.body for e in endpoints if e.body is not None}
    keys = [(model, "serialization") for model in sorted(answers, key=lambda m: m.__name__)]
    keys += [(model, "validation") for model in sorted(bodies, key=lambda m: m.__name__)]
    refs, schemas = models_json_schema(keys, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        operation: dict[str, Any] = {
            "operationId": e.name, "summary": e.summary, "tags": list(e.tags),
            "parameters": _parameters(e.path_params, "path") + _parameters(e.query, "query"),
            "responses": {
                "200": {"description": "OK", "headers": _RATE_HEADERS,
                        "content": {"application/json": {"schema": refs[(e.response, "serialization")]}}},
                **{str(status): _problem(ERRORS[status])
                   for status in sorted({401, 429, *(() if e.query is None and e.path_params is None else (422,)),
                                         *(() if e.body is None else (413, 422)), *e.errors})},
            },
        }
        if e.description:
            operation["description"] = e.description
        if e.body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": refs[(e.body, "validation")]}}}
        if e.group is not None:
            operation["x-metered-group"] = e.group
        assert set(_PATH_PARAM.findall(e.path)) == {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        paths.setdefault(PREFIX + e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Signals & whales API", "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a key from /api in the bot"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "headers": {
                "RateLimit-Policy": {"description": 'the limits: `"minute";q=60;w=60, "day";q=1000;w=86400`',
                                     "schema": {"type": "string"}},
                "RateLimit": {"description": 'what is left and when it resets: `"minute";r=59;t=60, …`',
                              "schema": {"type": "string"}},
            },
        },
    }


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signals &amp; whales API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="docs/assets/favicon-32x32.png"><link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  persistAuthorization: false, tryItOutEnabled: true, validatorUrl: null});</script>
</body></html>"""


def add_docs_routes(app: web.Application, endpoints: list[Endpoint]) -> None:
    """`GET /api/v1/openapi.json` and `GET /api/v1/docs` (no key needed; not counted)."""

    built: list[bytes] = []  # the document, made at the first request (every endpoint is registered by then)

    async def openapi(_request: web.Request) -> web.Response:
        if not built:
            built.append(json.dumps(document(endpoints)).encode())
        return web.Response(body=built[0], content_type="application/json")

    async def docs(_request: web.Request) -> web.Response:
        return web.Response(text=DOCS_PAGE, content_type="text/html")

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.FileResponse(swagger_ui_path / name, headers={"Cache-Control": "public, max-age=86400"})

    app.router.add_get(f"{PREFIX}/openapi.json", openapi)
    app.router.add_get(f"{PREFIX}/docs", docs)
    app.router.add_get(f"{PREFIX}/docs/assets/{{name}}", asset)
