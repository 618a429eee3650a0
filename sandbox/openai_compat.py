"""What the OpenAI-compatible stand-ins (OpenRouter, DeepSeek) share: reading and answering requests,
and chat messages and token counts. Each stand-in keeps its own error class and status codes."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

STREAM_UNSUPPORTED = "stream=true is not supported by the sandbox"
MAX_TOKENS_INVALID = "max_tokens must be a positive integer"


class ProviderError(Exception):
    """Base of a stand-in's error replies; ``cls(status, message)`` must build one."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def response(self) -> web.Response:
        raise NotImplementedError


async def read_body(request: web.Request) -> Any:
    """The request body as JSON; the text itself when it is not JSON; None when there is none."""
    if not request.can_read_body:
        return None
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


async def answer(run: Callable[[], Awaitable[web.StreamResponse]],
                 error: type[ProviderError]) -> web.StreamResponse:
    """``run()``'s response, or the reply of the provider error it raised; an aiohttp HTTP error
    (404, 405, ...) is answered as an ``error`` of the same status."""
    try:
        return await run()
    except ProviderError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason).response()


def bearer_token(request: web.Request) -> str:
    """The ``Authorization: Bearer`` token ("" when there is none)."""
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else ""


def valid_max_tokens(value: Any) -> bool:
    """Whether ``max_tokens`` is absent or a positive integer."""
    return value is None or (isinstance(value, int) and value >= 1)


def message_text(content: Any) -> str:
    """Text of an OpenAI message ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def count_tokens(text: str) -> int:
    """Rough tokenizer: ~4 characters per token."""
    return math.ceil(len(text) / 4)


def prompt_tokens(messages: list[Any]) -> int:
    """Prompt tokens of ``messages``: 4 per message plus its text (entries that are not objects skipped)."""
    return sum(4 + count_tokens(message_text(m.get("content"))) for m in messages if isinstance(m, dict))


def truncate_to_tokens(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """``text`` cut to ``max_tokens`` tokens, and whether it was cut."""
    if max_tokens is None or count_tokens(text) <= max_tokens:
        return text, False
    return text[:max_tokens * 4], True
