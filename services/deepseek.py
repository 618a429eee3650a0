"""DeepSeek (OpenAI-compatible) chat completions for channel posts, through the openai SDK's async client.

`complete()` tries up to `attempts` times with a per-request timeout and returns the text with its
usage and latency, or raises `GenerationFailed` with every attempt's error; the caller falls back to a
template. Errors that another attempt cannot fix (a bad key, a bad request) stop at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import openai

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
#: Pause before attempt n+1 is n × this (seconds).
DEFAULT_BACKOFF = 1.0
#: Errors another attempt cannot fix.
FINAL_ERRORS = (openai.AuthenticationError, openai.PermissionDeniedError, openai.BadRequestError,
                openai.NotFoundError, openai.UnprocessableEntityError)


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    latency_ms: int
    attempts: int


class GenerationFailed(Exception):
    """Every attempt failed; `str()` names the last error, `errors` holds them all."""

    def __init__(self, errors: list[str], *, attempts: int, latency_ms: int, output: str | None = None) -> None:
        super().__init__(errors[-1] if errors else "no attempt made")
        self.errors, self.attempts, self.latency_ms, self.output = errors, attempts, latency_ms, output


class DeepSeekClient:
    def __init__(self, base_url: str, api_key: str | None, model: str, *, attempts: int = 2,
                 timeout: float = DEFAULT_TIMEOUT, backoff: float = DEFAULT_BACKOFF) -> None:
        self.model, self.attempts, self.backoff = model, attempts, backoff
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout,
                                          max_retries=0) if api_key else None

    async def complete(self, messages: list[dict], *, max_tokens: int = 700,
                       temperature: float = 1.0) -> Completion:
        if self._client is None:
            raise GenerationFailed(["DEEPSEEK_KEY is not set"], attempts=0, latency_ms=0)
        errors: list[str] = []
        output: str | None = None
        started = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            if attempt > 1 and self.backoff:
                await asyncio.sleep(self.backoff * (attempt - 1))
            try:
                reply = await self._client.chat.completions.create(
                    model=self.model, messages=messages, max_tokens=max_tokens, temperature=temperature)
                choice = reply.choices[0] if reply.choices else None
                output = choice.message.content if choice is not None else None
                if not output or not output.strip():
                    raise ValueError("the model returned an empty post")
            except FINAL_ERRORS as exc:
                errors.append(_describe(exc))
                break
            except (openai.APIError, json.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
                # APIError covers timeouts, connection errors and 5xx/429; a garbled body surfaces as a raw
                # JSONDecodeError (or a reply missing its fields) from the client.
                errors.append(_describe(exc))
                log.info("DeepSeek attempt %s/%s failed: %s", attempt, self.attempts, errors[-1])
                continue
            usage = reply.usage
            return Completion(
                text=output, model=reply.model or self.model,
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage else None,
                total_tokens=usage.total_tokens if usage else None,
                latency_ms=_ms_since(started), attempts=attempt)
        raise GenerationFailed(errors, attempts=len(errors), latency_ms=_ms_since(started), output=output)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        return f"HTTP {exc.status_code}: {body.get('message') or exc.message}"[:300]
    if isinstance(exc, openai.APITimeoutError):
        return "timed out"
    if isinstance(exc, json.JSONDecodeError):
        return f"unreadable reply (invalid JSON: {exc.msg})"
    return f"{type(exc).__name__}: {exc}"[:300]


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
