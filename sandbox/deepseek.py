"""Local stand-in for the DeepSeek API (``https://api.deepseek.com``), which is OpenAI-compatible.

Serves ``POST /chat/completions``, ``GET /models`` and ``GET /user/balance`` (each also under
``/v1``), checks the bearer key, and answers with a short Telegram channel post whose kind
(market update / trading tip / promo / community question) and topic are read from the prompt.
Output is deterministic for a given ``seed`` and call sequence.

``fail_mode`` exercises the caller's fallbacks: ``"500"`` (server error), ``"timeout"`` (hangs
for ``hang_seconds``), ``"garbage"`` (invalid JSON), ``"empty"`` (empty content) or ``"hostile"``
(raw HTML/script and a 6,000-character body). ``fail_count`` limits it to the next N requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

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
from sandbox.pages import LocalServer

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FailMode = Literal["500", "timeout", "garbage", "empty", "hostile"]
FAIL_MODES: tuple[str, ...] = ("500", "timeout", "garbage", "empty", "hostile")
MODELS = ("deepseek-chat", "deepseek-reasoner")
HOSTILE_BODY_CHARS = 6000

KIND_PATTERNS: dict[str, re.Pattern[str]] = {
    "market": re.compile(r"\bmarket\b", re.I),
    "tip": re.compile(r"\btips?\b", re.I),
    "promo": re.compile(r"\bpromo(?:tion|tional)?s?\b", re.I),
    "community": re.compile(r"\bcommunity\b", re.I),
}
KNOWN_TOPICS = ("risk management", "liquidity", "momentum", "bitcoin", "ethereum", "solana", "altcoins",
                "memecoins", "stablecoins", "volatility", "defi", "staking", "airdrops", "trading bots")
_TOPIC_RE = re.compile(r"\btopic\s*[:=\-]\s*[\"'«“]?([^\"'»”\n.;]{2,60})", re.I)
_ABOUT_RE = re.compile(r"\babout\s+([^\n.;,!?]{2,60})", re.I)

TEMPLATES: dict[str, list[str]] = {
    "market": [
        "📊 Market update: {topic}\n\n{Topic} is in focus today: volumes picked up in the morning session "
        "and buyers defended the recent range. Watch how price reacts near yesterday's high before "
        "adding exposure.\n\n#market #{tag}",
        "📈 Market update — {topic}\n\nSentiment around {topic} stays cautiously positive. "
        "Funding is neutral, spreads are tight, and the next move will likely follow the broader "
        "market.\n\n#market #{tag}",
    ],
    "tip": [
        "💡 Trading tip: {topic}\n\nBefore you enter, decide where you are wrong. For {topic}, set the "
        "invalidation level first and size the position so a stop costs no more than 1% of your "
        "account.\n\n#tip #{tag}",
        "🎯 Trading tip of the day — {topic}\n\nDon't chase green candles. With {topic}, wait for a "
        "pullback or a clean retest, and write your plan down before clicking buy.\n\n#tip #{tag}",
    ],
    "promo": [
        "🚀 Promo: level up your {topic}\n\nOur bot gives you signals, alerts and AI tools in one place. "
        "Open the menu and check this week's offer — it takes less than a minute.\n\n#promo #{tag}",
        "🔥 Promo — {topic} made simple\n\nGet instant alerts and ready-made setups right in Telegram. "
        "Tap /start to see plans and today's discount.\n\n#promo #{tag}",
    ],
    "community": [
        "💬 Community question: {topic}\n\nHow do you approach {topic} in your own trading? Share one "
        "rule that saved you money — the best answers get featured tomorrow.\n\n#community #{tag}",
        "🗳 Community question — {topic}\n\nWhat's your biggest mistake with {topic}, and what did it teach "
        "you? Reply below, let's learn from each other.\n\n#community #{tag}",
    ],
}
HOSTILE_HEAD = ('<script>alert(1)</script><b>unclosed <i>tags & "quotes" '
                '<a href="javascript:alert(2)">click</a> <img src=x onerror=alert(3)> ')


class DeepSeekError(ProviderError):
    """An OpenAI-style error reply."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str = "invalid_request_error") -> None:
        super().__init__(status, message)
        self.type, self.code = type_, code

    def response(self) -> web.Response:
        return web.json_response({"error": {"message": self.message, "type": self.type, "param": None,
                                            "code": self.code}}, status=self.status)


@dataclass
class Call:
    """One recorded request."""

    method: str
    path: str
    body: Any
    time: float
    status: int = 0
    fail_mode: str | None = None

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def messages(self) -> list[JSON]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []


CALL = web.RequestKey("call", Call)


@dataclass
class DeepSeekStandIn(LocalServer):
    """In-memory DeepSeek served by aiohttp; ``start()`` returns the base URL (no ``/v1``)."""

    api_key: str = "sk-deepseek-sandbox"
    seed: int = 0
    fail_mode: FailMode | None = None
    #: Apply ``fail_mode`` to the next N chat requests only (None = until changed).
    fail_count: int | None = None
    #: How long ``"timeout"`` hangs (released early by ``stop()``).
    hang_seconds: float = 30.0
    balance: str = "100.00"
    calls: list[Call] = field(default_factory=list)
    base_url: str | None = None

    def __post_init__(self) -> None:
        if self.fail_mode is not None and self.fail_mode not in FAIL_MODES:
            raise ValueError(f"fail_mode must be one of {FAIL_MODES} or None")
        self._rng = random.Random(self.seed)
        self._stopping = asyncio.Event()
        self.app = web.Application(middlewares=[self._middleware])
        for prefix in ("", "/v1"):
            self.app.add_routes([
                web.post(f"{prefix}/chat/completions", self._chat),
                web.get(f"{prefix}/models", self._models),
                web.get(f"{prefix}/user/balance", self._balance),
            ])

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port); return ``http://host:port``."""
        self._stopping = asyncio.Event()
        return await super().start(host, port)

    async def stop(self) -> None:
        """Release hanging requests and stop the server."""
        self._stopping.set()
        await super().stop()

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        call = Call(request.method, request.path, await read_body(request), time.time())
        self.calls.append(call)
        request[CALL] = call

        async def run() -> web.StreamResponse:
            self._authorize(request)
            return await handler(request)

        response = await answer(run, DeepSeekError)
        call.status = response.status
        return response

    def _authorize(self, request: web.Request) -> None:
        token = bearer_token(request)
        if not token:
            raise DeepSeekError(401, "Authentication Fails (no such user)", "authentication_error")
        if not secrets.compare_digest(token, self.api_key):
            raise DeepSeekError(401, f"Authentication Fails, Your api key: ****{token[-4:]} is invalid",
                                "authentication_error")

    def _take_fail_mode(self) -> str | None:
        mode = self.fail_mode
        if mode is not None and self.fail_count is not None:
            self.fail_count -= 1
            if self.fail_count <= 0:
                self.fail_mode, self.fail_count = None, None
        return mode

    # ------------------------------------------------------------------ endpoints

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "owned_by": "deepseek"} for m in MODELS]
        return web.json_response({"object": "list", "data": data})

    async def _balance(self, request: web.Request) -> web.Response:
        return web.json_response({"is_available": True, "balance_infos": [{
            "currency": "USD", "total_balance": self.balance, "granted_balance": "0.00",
            "topped_up_balance": self.balance}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        call: Call = request[CALL]
        body = call.body
        if isinstance(body, str):
            raise DeepSeekError(400, "Failed to parse the request body as JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise DeepSeekError(422, "Failed to deserialize the JSON body: missing or empty field `messages`")
        model = body.get("model")
        if model not in MODELS:
            raise DeepSeekError(400, "Model Not Exist")
        if body.get("stream"):
            raise DeepSeekError(400, STREAM_UNSUPPORTED)
        max_tokens = body.get("max_tokens")
        if not valid_max_tokens(max_tokens):
            raise DeepSeekError(422, MAX_TOKENS_INVALID)

        call.fail_mode = mode = self._take_fail_mode()
        if mode == "500":
            raise DeepSeekError(500, "Internal server error", "server_error", "server_error")
        if mode == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.hang_seconds)
            raise DeepSeekError(503, "Server overloaded, please try again later", "server_error",
                                "server_error")
        if mode == "garbage":
            return web.Response(text='{"id": "chatcmpl-garbage", "choices": [ <html>Bad Gateway',
                                content_type="application/json")

        messages = [m for m in body["messages"] if isinstance(m, dict)]
        if mode == "empty":
            content = ""
        elif mode == "hostile":
            content = _hostile_post()
        else:
            content = self.compose(messages)
        cut = False
        if mode != "hostile":
            content, cut = truncate_to_tokens(content, max_tokens)
        finish = "length" if cut else "stop"
        prompt = prompt_tokens(messages)
        completion_tokens = count_tokens(content)
        return web.json_response({
            "id": f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-"
                  f"{secrets.token_hex(2)}-{secrets.token_hex(6)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                      "total_tokens": prompt + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": prompt},
            "system_fingerprint": "fp_sandbox_prod",
        })

    # ------------------------------------------------------------------ content

    def compose(self, messages: list[JSON]) -> str:
        """A channel post for these messages (advances the seeded generator)."""
        kind, topic = detect_request(messages)
        template = self._rng.choice(TEMPLATES[kind])
        tag = re.sub(r"\W+", "", topic.title()) or "Crypto"
        return template.format(topic=topic, Topic=topic[:1].upper() + topic[1:], tag=tag)


def detect_request(messages: list[JSON]) -> tuple[str, str]:
    """``(kind, topic)`` asked for: the last user message wins, then the other messages."""
    users = [message_text(m.get("content")) for m in messages if m.get("role") == "user"]
    others = [message_text(m.get("content")) for m in messages if m.get("role") != "user"]
    texts = [t for t in [*(users[-1:]), *reversed(users[:-1]), *others] if t]
    kind = next((k for t in texts if (k := _first_kind(t))), "market")
    topic = next((tp for t in texts if (tp := _topic(t))), "the crypto market")
    return kind, topic


def _first_kind(text: str) -> str | None:
    found = [(m.start(), kind) for kind, rx in KIND_PATTERNS.items() if (m := rx.search(text))]
    return min(found)[1] if found else None


def _topic(text: str) -> str | None:
    for rx in (_TOPIC_RE, _ABOUT_RE):
        if m := rx.search(text):
            return m.group(1).strip()
    lowered = text.lower()
    return next((t for t in KNOWN_TOPICS if t in lowered), None)


def _hostile_post() -> str:
    """Raw HTML, an unclosed tag at the end, exactly ``HOSTILE_BODY_CHARS`` long."""
    filler = "Market update <b>breaking</b> & <u>news</u> " * (HOSTILE_BODY_CHARS // 40 + 1)
    return (HOSTILE_HEAD + filler)[:HOSTILE_BODY_CHARS - 3] + "<b>"

