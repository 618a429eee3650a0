"""Local stand-in for the OpenRouter API (``https://openrouter.ai/api/v1``).

Serves the models list, the management-key API (``/keys``, ``/credits``), ``/key`` and an
OpenAI-compatible ``/chat/completions`` that bills each issued key like the real service:
cost = prompt tokens × prompt price + completion tokens × completion price (+ request price),
added to the key's ``usage`` and the account's ``total_usage``. Money is ``Decimal`` inside,
JSON numbers on the wire; per-token prices are decimal strings, as in the real models API.

Errors use OpenRouter's shape ``{"error": {"code": <status>, "message": ...}}``. Faults for tests:
``down`` (every endpoint 503), :meth:`OpenRouterStandIn.fail_next`, :meth:`set_price`, ``credits``.
Every request is recorded in ``calls``.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from sandbox.openai_compat import (
    MAX_TOKENS_INVALID,
    STREAM_UNSUPPORTED,
    ProviderError,
    answer,
    bearer_token,
    count_tokens,
    message_text,
    prompt_tokens,
    read_body,
    truncate_to_tokens,
    valid_max_tokens,
)
from sandbox.pages import LocalServer, iso, plain_decimal

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_PREFIX = "/api/v1"
KEYS_PAGE_SIZE = 100
KEY_LIMIT_MESSAGE = "Key limit exceeded (total limit). Manage it using https://openrouter.ai/settings/keys"
CREDITS_MESSAGE = (
    "Insufficient credits. This account never purchased credits or its balance is exhausted. "
    "Add more using https://openrouter.ai/settings/credits"
)
_TEXT_PARAMS = ["max_tokens", "temperature", "top_p", "stop", "frequency_penalty", "presence_penalty",
                "seed", "response_format", "tools", "tool_choice"]


def _model(mid: str, name: str, created: int, ctx: int, max_out: int, prompt: str, completion: str,
           description: str, *, image: str = "0", vision: bool = False, tokenizer: str = "Other",
           moderated: bool = False) -> JSON:
    inputs = ["text", "image"] if vision else ["text"]
    return {
        "id": mid,
        "canonical_slug": mid,
        "hugging_face_id": "",
        "name": name,
        "created": created,
        "description": description,
        "context_length": ctx,
        "architecture": {
            "modality": "text+image->text" if vision else "text->text",
            "input_modalities": inputs,
            "output_modalities": ["text"],
            "tokenizer": tokenizer,
            "instruct_type": None,
        },
        "pricing": {"prompt": prompt, "completion": completion, "request": "0", "image": image,
                    "web_search": "0", "internal_reasoning": "0"},
        "top_provider": {"context_length": ctx, "max_completion_tokens": max_out, "is_moderated": moderated},
        "per_request_limits": None,
        "supported_parameters": list(_TEXT_PARAMS),
        "default_parameters": {},
    }


DEFAULT_MODELS: list[JSON] = [
    _model("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", 1721260800, 128000, 16384,
           "0.00000015", "0.0000006", "GPT-4o mini is OpenAI's small, affordable multimodal model.",
           image="0.000217", vision=True, tokenizer="GPT", moderated=True),
    _model("anthropic/claude-3.5-haiku", "Anthropic: Claude 3.5 Haiku", 1730678400, 200000, 8192,
           "0.0000008", "0.000004", "Claude 3.5 Haiku: fast, low-latency model for everyday tasks.",
           tokenizer="Claude", moderated=True),
    _model("google/gemini-2.0-flash-001", "Google: Gemini 2.0 Flash", 1738769413, 1048576, 8192,
           "0.0000001", "0.0000004", "Gemini 2.0 Flash: fast multimodal model with a 1M context.",
           image="0.0000258", vision=True, tokenizer="Gemini"),
    _model("deepseek/deepseek-chat", "DeepSeek: DeepSeek V3", 1735241320, 163840, 163840,
           "0.0000003", "0.00000085", "DeepSeek-V3: open mixture-of-experts chat model.",
           tokenizer="DeepSeek"),
    _model("meta-llama/llama-3.3-70b-instruct", "Meta: Llama 3.3 70B Instruct", 1733506137, 131072, 16384,
           "0.00000012", "0.0000003", "Llama 3.3 70B: multilingual instruction-tuned model.",
           tokenizer="Llama3"),
    _model("meta-llama/llama-3.3-70b-instruct:free", "Meta: Llama 3.3 70B Instruct (free)", 1733506137,
           131072, 2048, "0", "0", "Free, rate-limited variant of Llama 3.3 70B Instruct.",
           tokenizer="Llama3"),
    _model("anthropic/claude-3-opus", "Anthropic: Claude 3 Opus", 1709596800, 200000, 4096,
           "0.000015", "0.000075", "Claude 3 Opus: Anthropic's most capable model of the Claude 3 family.",
           image="0.024", vision=True, tokenizer="Claude", moderated=True),
]


class OpenRouterError(ProviderError):
    """An error reply in OpenRouter's shape."""

    def __init__(self, status: int, message: str, metadata: JSON | None = None) -> None:
        super().__init__(status, message)
        self.metadata = metadata

    def response(self) -> web.Response:
        error: JSON = {"code": self.status, "message": self.message}
        if self.metadata:
            error["metadata"] = self.metadata
        return web.json_response({"error": error}, status=self.status)


@dataclass
class Call:
    """One recorded request; ``path`` is relative to ``/api/v1``."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    time: float
    status: int = 0
    key_hash: str | None = None


CALL = web.RequestKey("call", Call)


@dataclass
class ApiKey:
    """An issued (non-management) key. ``secret`` is kept in memory only because this is a sandbox."""

    hash: str
    secret: str
    name: str
    label: str
    limit: Decimal | None = None
    usage: Decimal = Decimal(0)
    disabled: bool = False
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    expires_at: str | None = None
    created_at: str = ""
    updated_at: str | None = None

    @property
    def limit_remaining(self) -> Decimal | None:
        return None if self.limit is None else max(self.limit - self.usage, Decimal(0))

    @property
    def expired(self) -> bool:
        if not self.expires_at:
            return False
        return datetime.fromisoformat(self.expires_at.replace("Z", "+00:00")) <= datetime.now(UTC)

    def _usage_fields(self) -> JSON:
        usage = _num(self.usage)
        return {
            "limit": _num(self.limit), "limit_remaining": _num(self.limit_remaining),
            "limit_reset": self.limit_reset, "include_byok_in_limit": self.include_byok_in_limit,
            "usage": usage, "usage_daily": usage, "usage_weekly": usage, "usage_monthly": usage,
            "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
            "expires_at": self.expires_at,
        }

    def to_json(self) -> JSON:
        """The management API's view (no secret)."""
        return {"hash": self.hash, "name": self.name, "label": self.label, "disabled": self.disabled,
                **self._usage_fields(), "created_at": self.created_at, "updated_at": self.updated_at,
                "creator_user_id": None}

    def current_json(self) -> JSON:
        """The ``GET /key`` view for this key."""
        return {"label": self.label, **self._usage_fields(), "is_free_tier": False,
                "is_management_key": False, "is_provisioning_key": False, "creator_user_id": None,
                "rate_limit": {"requests": -1, "interval": "10s",
                               "note": "This field is deprecated and safe to ignore."}}


@dataclass
class _Fault:
    prefix: str
    status: int
    times: int


@dataclass
class OpenRouterStandIn(LocalServer):
    """In-memory OpenRouter served by aiohttp at ``http://host:port/api/v1``."""

    management_key: str = "sk-or-v1-mgmt-sandbox"
    credits: Decimal = Decimal("100")
    models: list[JSON] | None = None

    total_usage: Decimal = Decimal(0)
    down: bool = False
    keys: dict[str, ApiKey] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    base_url: str | None = None

    def __post_init__(self) -> None:
        self.models = copy.deepcopy(DEFAULT_MODELS if self.models is None else self.models)
        self.credits = Decimal(str(self.credits))
        self._faults: list[_Fault] = []
        self.app = web.Application()
        api = web.Application(middlewares=[self._middleware])
        api.add_routes([
            web.get("/models", self._models),
            web.get("/key", self._current_key),
            web.get("/auth/key", self._current_key),
            web.get("/credits", self._credits),
            web.get("/keys", self._list_keys),
            web.post("/keys", self._create_key),
            web.get("/keys/{hash}", self._get_key),
            web.patch("/keys/{hash}", self._patch_key),
            web.delete("/keys/{hash}", self._delete_key),
            web.post("/chat/completions", self._chat),
        ])
        self.app.add_subapp(API_PREFIX, api)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port); return the base URL ending in ``/api/v1``."""
        self.base_url = await super().start(host, port) + API_PREFIX
        return self.base_url

    # ------------------------------------------------------------------ driving / faults

    def fail_next(self, path_prefix: str, status: int = 500, times: int = 1) -> None:
        """Make the next ``times`` requests whose path starts with ``path_prefix`` fail with ``status``."""
        prefix = path_prefix.removeprefix(API_PREFIX) or "/"
        self._faults.append(_Fault("/" + prefix.lstrip("/"), status, times))

    def set_price(self, model_id: str, *, completion: Decimal | str | float | None = None,
                  prompt: Decimal | str | float | None = None) -> None:
        """Change a model's per-token prices (kept as decimal strings, like the real API)."""
        pricing = self._model(model_id)["pricing"]
        if completion is not None:
            pricing["completion"] = _price_str(completion)
        if prompt is not None:
            pricing["prompt"] = _price_str(prompt)

    def issue_key(self, name: str = "sandbox", limit: Decimal | float | None = None) -> ApiKey:
        """Create a key directly (no HTTP); ``.secret`` is the bearer token."""
        secret = "sk-or-v1-" + secrets.token_hex(32)
        now = _now()
        key = ApiKey(hash=hashlib.sha256(secret.encode()).hexdigest(), secret=secret, name=name,
                     label=f"{secret[:11]}...{secret[-4:]}",
                     limit=None if limit is None else Decimal(str(limit)), created_at=now)
        self.keys[key.hash] = key
        return key

    def key_for_secret(self, secret: str) -> ApiKey | None:
        return self.keys.get(hashlib.sha256(secret.encode()).hexdigest())

    def price(self, model_id: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """What a request with these token counts costs."""
        p = self._model(model_id)["pricing"]
        return (prompt_tokens * Decimal(p["prompt"]) + completion_tokens * Decimal(p["completion"])
                + Decimal(p.get("request") or 0))

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path.removeprefix(API_PREFIX) or "/"
        body = await read_body(request)
        call = Call(request.method, path, dict(request.query), body, time.time())
        self.calls.append(call)
        request[CALL] = call

        async def run() -> web.StreamResponse:
            if self.down:
                raise OpenRouterError(503, "Service Unavailable")
            for fault in self._faults:
                if path.startswith(fault.prefix):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    raise OpenRouterError(fault.status, f"Sandbox injected failure ({fault.status})")
            if request.can_read_body and isinstance(body, str):
                raise OpenRouterError(400, "Invalid JSON body")
            return await handler(request)

        response = await answer(run, OpenRouterError)
        call.status = response.status
        return response

    def _model(self, model_id: str) -> JSON:
        for model in self.models or []:
            if model["id"] == model_id:
                return model
        raise KeyError(model_id)

    @staticmethod
    def _bearer(request: web.Request) -> str:
        token = bearer_token(request)
        if not token:
            raise OpenRouterError(401, "No auth credentials found")
        return token

    def _require_management(self, request: web.Request) -> None:
        if not secrets.compare_digest(self._bearer(request), self.management_key):
            raise OpenRouterError(401, "Invalid management key: this operation requires a management key")

    def _require_key(self, request: web.Request) -> ApiKey:
        token = self._bearer(request)
        if token == self.management_key:
            raise OpenRouterError(401, "Management keys cannot be used for completions")
        key = self.key_for_secret(token)
        if key is None:
            raise OpenRouterError(401, "User not found.")
        if key.disabled or key.expired:
            raise OpenRouterError(401, "API key is disabled or expired")
        request[CALL].key_hash = key.hash
        return key

    def _key_by_hash(self, request: web.Request) -> ApiKey:
        self._require_management(request)
        key = self.keys.get(request.match_info["hash"])
        if key is None:
            raise OpenRouterError(404, "API key not found")
        return key

    # ------------------------------------------------------------------ endpoints

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": self.models})

    async def _credits(self, request: web.Request) -> web.Response:
        self._require_management(request)
        return web.json_response({"data": {"total_credits": _num(self.credits),
                                           "total_usage": _num(self.total_usage)}})

    async def _current_key(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        if token == self.management_key:
            return web.json_response({"data": {
                "label": f"{token[:11]}...{token[-4:]}", "usage": _num(self.total_usage), "limit": None,
                "limit_remaining": None, "limit_reset": None, "is_free_tier": False,
                "is_management_key": True, "is_provisioning_key": True,
                "rate_limit": {"requests": -1, "interval": "10s"}}})
        return web.json_response({"data": self._require_key(request).current_json()})

    async def _list_keys(self, request: web.Request) -> web.Response:
        self._require_management(request)
        try:
            offset = max(int(request.query.get("offset", "0")), 0)
        except ValueError:
            raise OpenRouterError(400, "offset must be an integer") from None
        include_disabled = request.query.get("include_disabled", "false").lower() == "true"
        newest_first = sorted(self.keys.values(), key=lambda k: k.created_at, reverse=True)
        rows = [k.to_json() for k in newest_first if include_disabled or not k.disabled]
        return web.json_response({"data": rows[offset:offset + KEYS_PAGE_SIZE]})

    async def _create_key(self, request: web.Request) -> web.Response:
        self._require_management(request)
        body = _object_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise OpenRouterError(400, "name is required")
        key = self.issue_key(name, _limit(body.get("limit")))
        if isinstance(body.get("label"), str):
            key.label = body["label"]
        _apply_options(key, body)
        return web.json_response({"data": key.to_json(), "key": key.secret}, status=201)

    async def _get_key(self, request: web.Request) -> web.Response:
        return web.json_response({"data": self._key_by_hash(request).to_json()})

    async def _patch_key(self, request: web.Request) -> web.Response:
        key = self._key_by_hash(request)
        body = _object_body(request)
        if "name" in body:
            if not isinstance(body["name"], str) or not body["name"].strip():
                raise OpenRouterError(400, "name must be a non-empty string")
            key.name = body["name"]
        if "disabled" in body:
            if not isinstance(body["disabled"], bool):
                raise OpenRouterError(400, "disabled must be a boolean")
            key.disabled = body["disabled"]
        if "limit" in body:
            key.limit = _limit(body["limit"])
        _apply_options(key, body)
        key.updated_at = _now()
        return web.json_response({"data": key.to_json()})

    async def _delete_key(self, request: web.Request) -> web.Response:
        key = self._key_by_hash(request)
        del self.keys[key.hash]
        return web.json_response({"deleted": True})

    async def _chat(self, request: web.Request) -> web.Response:
        key = self._require_key(request)
        body = _object_body(request)
        model_id, messages = body.get("model"), body.get("messages")
        if not isinstance(model_id, str):
            raise OpenRouterError(400, "model is required")
        try:
            model = self._model(model_id)
        except KeyError:
            raise OpenRouterError(400, f"{model_id} is not a valid model ID") from None
        if not isinstance(messages, list) or not messages:
            raise OpenRouterError(400, "messages must be a non-empty array")
        if body.get("stream"):
            raise OpenRouterError(400, STREAM_UNSUPPORTED)
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if not valid_max_tokens(max_tokens):
            raise OpenRouterError(400, MAX_TOKENS_INVALID)

        prompt = prompt_tokens(messages)
        self._check_budget(key, model_id, prompt, max_tokens)

        text, cut = truncate_to_tokens(_default_answer(messages, model_id), max_tokens)
        completion_tokens, finish = count_tokens(text), "length" if cut else "stop"
        cost = self.price(model_id, prompt, completion_tokens)
        key.usage += cost
        self.total_usage += cost
        return web.json_response({
            "id": f"gen-{int(time.time())}-{secrets.token_hex(10)}",
            "provider": model["name"].split(":")[0],
            "model": model_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "choices": [{"logprobs": None, "finish_reason": finish, "native_finish_reason": finish,
                         "index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                                 "reasoning": None}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                      "total_tokens": prompt + completion_tokens, "cost": _num(cost), "is_byok": False,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}},
        })

    def _check_budget(self, key: ApiKey, model_id: str, prompt_tokens: int, max_tokens: int | None) -> None:
        key_left = key.limit_remaining
        account_left = self.credits - self.total_usage
        if key_left is not None and key_left <= 0:
            raise OpenRouterError(402, KEY_LIMIT_MESSAGE, {"limit_source": "openrouter_key_limit"})
        if account_left <= 0 and self.price(model_id, 1, 1) > 0:
            raise OpenRouterError(402, CREDITS_MESSAGE, {"limit_source": "openrouter_credits"})
        completion_price = Decimal(self._model(model_id)["pricing"]["completion"])
        # As the real service: refuse a request whose max_tokens the key/account budget can't cover.
        if max_tokens is None or completion_price <= 0:
            return
        left = account_left if key_left is None else min(key_left, account_left)
        affordable = max(int((left - self.price(model_id, prompt_tokens, 0)) / completion_price), 0)
        if max_tokens > affordable:
            raise OpenRouterError(402, (
                f"This request requires more credits, or fewer max_tokens. You requested up to {max_tokens} "
                f"tokens, but can only afford {affordable}. To increase, visit "
                "https://openrouter.ai/settings/keys and create a key with a higher total limit"))


# ---------------------------------------------------------------------- helpers


def _now() -> str:
    return iso(datetime.now(UTC))


def _num(value: Decimal | None) -> float | int | None:
    """Decimal -> JSON number (int when whole)."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _price_str(value: Decimal | str | float) -> str:
    return plain_decimal(Decimal(str(value)))


def _limit(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OpenRouterError(400, "limit must be a number or null")
    try:
        limit = Decimal(str(value))
    except InvalidOperation:
        raise OpenRouterError(400, "limit must be a number or null") from None
    if limit < 0 or not limit.is_finite():
        raise OpenRouterError(400, "limit must be a non-negative number")
    return limit


def _apply_options(key: ApiKey, body: JSON) -> None:
    if "limit_reset" in body:
        if body["limit_reset"] not in (None, "daily", "weekly", "monthly"):
            raise OpenRouterError(400, "limit_reset must be daily, weekly, monthly or null")
        key.limit_reset = body["limit_reset"]
    if "include_byok_in_limit" in body:
        key.include_byok_in_limit = bool(body["include_byok_in_limit"])
    if "expires_at" in body:
        expires = body["expires_at"]
        if expires is not None:
            try:
                datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
            except ValueError:
                raise OpenRouterError(400, "expires_at must be an ISO 8601 UTC timestamp") from None
        key.expires_at = expires


def _object_body(request: web.Request) -> JSON:
    body = request[CALL].body
    if not isinstance(body, dict):
        raise OpenRouterError(400, "Request body must be a JSON object")
    return body




_OPENERS = ["Short answer:", "In brief:", "Here's the gist:", "Quick take:"]
_BODIES = [
    "it depends on your goals, but a sensible default is to start small, measure the result and "
    "adjust step by step.",
    "the usual approach is to split the problem into parts, handle the simplest one first and "
    "check each step before moving on.",
    "there is no single right answer; compare the trade-offs of cost, speed and reliability, then "
    "pick the option that fits your constraints.",
]


def _default_answer(messages: list[JSON], model_id: str) -> str:
    question = next((message_text(m.get("content")) for m in reversed(messages)
                     if isinstance(m, dict) and m.get("role") == "user"), "")
    digest = int(hashlib.sha256(f"{model_id}|{question}".encode()).hexdigest(), 16)
    topic = " ".join(question.split()[:8]).rstrip("?.!,") or "your question"
    return (f"{_OPENERS[digest % len(_OPENERS)]} regarding “{topic}”, "
            f"{_BODIES[(digest >> 8) % len(_BODIES)]}")
