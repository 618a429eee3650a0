"""The outgoing gate: one aiogram session middleware for every Bot API request.

Architecture rule 6. Register it once on the bot's session::

    gate = OutgoingGate(settings.telegram_rate_limit, on_blocked=mark_user_blocked)
    bot.session.middleware(gate)

What it does (modelled on python-telegram-bot's ``AIORateLimiter``):

* **Spacing.** Requests leave evenly spaced ``1 / rate`` seconds apart, all
  chats together (``TELEGRAM_RATE_LIMIT``).  Each request atomically reserves
  the next free slot (``slot = max(now, next_free)``, ``next_free = slot +
  1/rate``) and sleeps until it, so there are no bursts, no drift, and
  concurrent senders each get a slot of their own.
* **Bulk mode.** Inside ``with bulk():`` (a context variable, so it follows the
  task and the tasks it starts) requests that carry a ``chat_id`` additionally
  keep ``per_chat_interval`` seconds (default 1 s) between two requests to the
  same chat — Telegram's "about one message per second per chat" rule for
  broadcasts.  A chat that has to wait does not hold a global slot, so other
  chats keep going.  Outside bulk mode there is no per-chat spacing:
  interactive replies must be fast.
* **Flood control.** On ``TelegramRetryAfter`` every sender is paused: a shared
  ``paused_until`` (the max of all pauses seen, never their sum) that slot
  reservation respects; senders that already hold a slot re-check it when they
  wake.  The failed request is then retried, up to ``max_retries`` times, after
  which the error is re-raised.
* **Several replicas.** Given a ``budget`` (``transport.redis_budget.RedisBudget``, with
  ``REDIS_URL``), the spacing, the per-chat spacing in bulk mode and the flood-control pause
  are decided in Redis for every replica together instead of in this process: a request asks
  the budget for a grant and sleeps as told until it gets one, and a 429 pauses every replica.
  While Redis cannot be reached a request waits and asks again (``BUDGET_RETRY_SECONDS``)
  rather than going out unaccounted for. This process's own pause still applies as well.
* **Blocked users.** On ``TelegramForbiddenError`` the ``on_blocked(chat_id)``
  callback is awaited when the request targets a private chat (integer
  ``chat_id > 0``, i.e. a user id); then the error is re-raised so the caller
  can decide what to do.  A failing callback is logged, never raised over the
  original error.
* **Metrics.** ``MESSAGES_SENT{method}`` per successful request,
  ``RETRY_AFTER`` per 429, ``BLOCKED`` per 403 (see ``transport.metrics``).
* **Reply types kept alive.** aiogram parses every reply with the pydantic
  model ``Response[<returned type>]``.  pydantic caches such a model only
  weakly, so after each full garbage collection the next reply rebuilds it
  (~6 ms of CPU for ``Response[Message]``, every few dozen requests under
  load).  The gate holds one strong reference per returned type it has seen.

Exemptions (kept minimal on purpose):

* ``GetUpdates`` passes straight through: no spacing, no pause, no retry, no
  metrics.  It is how updates come *in*, not a send; a long poll that had to
  queue behind a broadcast or a flood-control pause would stall every incoming
  update, and aiogram's polling loop already backs off on its own errors.
  (python-telegram-bot exempts exactly this method too.)
* Everything else — including ``AnswerCallbackQuery`` and ``GetMe`` — is
  spaced and honours the pause.  Telegram's flood control is per bot token and
  counts every method, so calling anything during a 429 pause risks extending
  it.  The cost is small: bulk jobs are queues that hold one slot at a time,
  so an interactive request waits about one slot (~33 ms at 30/s), far below
  the ~15 s a callback query may stay unanswered; ``GetMe`` runs once at start
  and aiogram caches it.

Secrets: log lines carry only the API method name and the chat id — never the
token, the request payload or Telegram's error text.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from prometheus_client import Counter
from redis.exceptions import RedisError

from transport import metrics

if TYPE_CHECKING:
    from aiogram import Bot

    from transport.redis_budget import RedisBudget

__all__ = ["EXEMPT_METHODS", "GateStats", "OutgoingGate", "bulk", "in_bulk"]

logger = logging.getLogger(__name__)

#: Methods that bypass the gate entirely (see the module docstring).
EXEMPT_METHODS: tuple[type[TelegramMethod[Any]], ...] = (GetUpdates,)

#: Seconds a request waits before asking an unreachable shared budget (Redis) again.
BUDGET_RETRY_SECONDS = 1.0

# Number of per-chat timestamps kept before stale ones are pruned.
_PRUNE_THRESHOLD = 4096

#: ``Response[T]`` per returned type ``T`` (see "Reply types kept alive" above).
_reply_types: dict[Any, type[Response[Any]]] = {}

_bulk_mode: contextvars.ContextVar[bool] = contextvars.ContextVar("outgoing_gate_bulk", default=False)


@contextmanager
def bulk() -> Iterator[None]:
    """Bulk (broadcast) mode for requests made inside the block.

    Usable from sync or async code (``with bulk(): await bot.send_message(...)``).
    The flag lives in a context variable, so it applies to the current task and
    to tasks created inside the block, and never leaks into other handlers.
    """
    token = _bulk_mode.set(True)
    try:
        yield
    finally:
        _bulk_mode.reset(token)


def in_bulk() -> bool:
    """Whether the current context is in bulk mode."""
    return _bulk_mode.get()


@dataclass(frozen=True, slots=True)
class GateStats:
    """A snapshot of the gate's counters (for tests, benchmarks and /health)."""

    dispatched: int  # attempts handed to the session (retries included)
    succeeded: int
    failed: int  # requests that finally raised (any error)
    retry_after: int  # 429 answers seen
    retried: int  # attempts repeated after a 429
    blocked: int  # 403 answers seen
    passed_through: int  # exempt requests (GetUpdates)
    paused_until: float  # clock() value; -inf if never paused
    paused_total: float  # seconds paused by 429s so far (overlapping pauses counted once)
    next_free: float  # clock() value of the next free slot; -inf before the first request


class _ChatLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class OutgoingGate(BaseRequestMiddleware):
    """Session request-middleware that every outgoing Bot API request passes.

    :param rate: requests per second, all chats together (``TELEGRAM_RATE_LIMIT``); > 0.
    :param on_blocked: awaited with the user id when a private chat answers 403.
    :param per_chat_interval: seconds between two requests to one chat in bulk mode.
    :param max_retries: how many times a request is repeated after 429s before
        the ``TelegramRetryAfter`` is re-raised (0 = never retry).
    :param budget: the send budget shared by every replica (Redis); None: this process's own.
    :param clock: monotonic clock in seconds (injectable for tests).
    :param sleep: async sleep matching ``clock`` (injectable for tests).
    """

    def __init__(
        self,
        rate: float,
        *,
        on_blocked: Callable[[int], Awaitable[None]] | None = None,
        per_chat_interval: float = 1.0,
        max_retries: int = 5,
        budget: RedisBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise ValueError(f"rate must be a number of requests per second, got {rate!r}")
        if not (rate > 0) or not math.isfinite(rate):
            raise ValueError(f"rate must be a finite number > 0, got {rate!r}")
        if not (per_chat_interval >= 0) or not math.isfinite(per_chat_interval):
            raise ValueError(f"per_chat_interval must be >= 0, got {per_chat_interval!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")

        self._rate = float(rate)
        self._interval = 1.0 / self._rate
        self._per_chat_interval = float(per_chat_interval)
        self._max_retries = max_retries
        self._on_blocked = on_blocked
        self._budget = budget
        self._budget_down = False  # Redis unreachable at the last ask (logged once per outage)
        self._clock = clock
        self._sleep = sleep

        self._next_free = -math.inf
        self._paused_until = -math.inf
        self._paused_total = 0.0
        self._chat_last: dict[int | str, float] = {}
        self._chat_locks: dict[int | str, _ChatLock] = {}

        self._dispatched = 0
        self._succeeded = 0
        self._failed = 0
        self._retry_after = 0
        self._retried = 0
        self._blocked = 0
        self._passed_through = 0

    # ------------------------------------------------------------------ stats

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def interval(self) -> float:
        """Seconds between two slots (``1 / rate``)."""
        return self._interval

    @property
    def paused_until(self) -> float:
        """``clock()`` time until which every sender is paused (-inf if never)."""
        return self._paused_until

    def pause_remaining(self) -> float:
        """Seconds left in the current flood-control pause (0 if none)."""
        return max(0.0, self._paused_until - self._clock())

    @property
    def stats(self) -> GateStats:
        return GateStats(
            dispatched=self._dispatched,
            succeeded=self._succeeded,
            failed=self._failed,
            retry_after=self._retry_after,
            retried=self._retried,
            blocked=self._blocked,
            passed_through=self._passed_through,
            paused_until=self._paused_until,
            paused_total=self._paused_total,
            next_free=self._next_free,
        )

    # ------------------------------------------------------------- middleware

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in _reply_types:
            _reply_types[returning] = Response[returning]
        if isinstance(method, EXEMPT_METHODS):
            self._passed_through += 1
            return await make_request(bot, method)

        chat_id = getattr(method, "chat_id", None)
        chat_key = chat_id if in_bulk() and self._per_chat_interval > 0 and _is_chat(chat_id) else None
        if chat_key is None:
            return await self._send(make_request, bot, method, chat_id, None)

        entry = self._chat_locks.get(chat_key)
        if entry is None:
            entry = self._chat_locks[chat_key] = _ChatLock()
        entry.users += 1
        try:
            async with entry.lock:
                return await self._send(make_request, bot, method, chat_id, chat_key)
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._chat_locks[chat_key]

    async def _send(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
        chat_id: Any,
        chat_key: int | str | None,
    ) -> Response[TelegramType]:
        api_method = method.__api_method__
        attempt = 0
        while True:
            await self._wait_turn(chat_key)
            self._dispatched += 1
            try:
                result = await make_request(bot, method)
            except TelegramRetryAfter as exc:
                self._on_retry_after(exc, api_method, chat_id, attempt)
                await self._pause_budget(exc.retry_after)
                if attempt >= self._max_retries:
                    self._failed += 1
                    raise
                attempt += 1
                self._retried += 1
                continue
            except TelegramForbiddenError:
                self._failed += 1
                self._blocked += 1
                metrics.BLOCKED.inc()
                logger.info("Telegram refused %s to chat %s (403)", api_method, chat_id)
                await self._notify_blocked(chat_id)
                raise
            except BaseException:
                self._failed += 1
                raise
            self._succeeded += 1
            _sent_counter(api_method).inc()
            return result

    async def _wait_turn(self, chat_key: int | str | None) -> None:
        """Sleep until this request may go out; the caller sends right after."""
        if self._budget is not None:
            await self._wait_budget(chat_key)
            return
        while True:
            now = self._clock()
            not_before = self._paused_until
            if chat_key is not None:
                last = self._chat_last.get(chat_key)
                if last is not None:
                    not_before = max(not_before, last + self._per_chat_interval)
            if not_before > now:
                # Paused, or this chat is not due yet: wait without holding a
                # global slot so that other chats keep their pace.
                await self._sleep(not_before - now)
                continue
            # Reserve the next slot atomically (no await between read and write).
            slot = max(now, self._next_free)
            self._next_free = slot + self._interval
            if slot > now:
                await self._sleep(slot - now)
                if self._clock() < self._paused_until:
                    # A 429 arrived while we waited: the slot is void, queue again.
                    continue
            if chat_key is not None:
                self._remember_chat(chat_key, self._clock())
            return

    async def _wait_budget(self, chat_key: int | str | None) -> None:
        """Sleep until the shared budget grants this request (this process's own 429 pause first)."""
        assert self._budget is not None
        while True:
            if (paused := self._paused_until - self._clock()) > 0:
                await self._sleep(paused)
            try:
                wait = await self._budget.acquire(chat_key)
            except RedisError as exc:
                if not self._budget_down:
                    self._budget_down = True
                    logger.warning("send budget unreachable in Redis (%s): sends wait until it answers",
                                   type(exc).__name__)
                await self._sleep(BUDGET_RETRY_SECONDS)
                continue
            if self._budget_down:
                self._budget_down = False
                logger.info("send budget reachable in Redis again")
            if wait <= 0:
                return
            await self._sleep(wait)

    async def _pause_budget(self, retry_after: float) -> None:
        """Tell every replica about a 429; if Redis cannot be told, this process still pauses."""
        if self._budget is None:
            return
        try:
            await self._budget.pause(max(0.0, float(retry_after)))
        except RedisError as exc:
            logger.warning("could not share the flood-control pause in Redis (%s)", type(exc).__name__)

    def _remember_chat(self, chat_key: int | str, at: float) -> None:
        self._chat_last[chat_key] = at
        if len(self._chat_last) > _PRUNE_THRESHOLD:
            horizon = at - self._per_chat_interval
            self._chat_last = {k: t for k, t in self._chat_last.items() if t > horizon}

    def _on_retry_after(self, exc: TelegramRetryAfter, api_method: str, chat_id: Any, attempt: int) -> None:
        self._retry_after += 1
        metrics.RETRY_AFTER.inc()
        retry_after = max(0.0, float(exc.retry_after))
        now = self._clock()
        # max, not sum: concurrent 429s describe the same flood-control window.
        self._paused_total += max(0.0, now + retry_after - max(now, self._paused_until))
        self._paused_until = max(self._paused_until, now + retry_after)
        will_retry = attempt < self._max_retries
        logger.warning(
            "Flood control on %s (chat %s): all sends paused for %.1f s; %s",
            api_method,
            chat_id,
            retry_after,
            f"retry {attempt + 1}/{self._max_retries}" if will_retry else "giving up",
        )

    async def _notify_blocked(self, chat_id: Any) -> None:
        if self._on_blocked is None or not _is_user_id(chat_id):
            return
        try:
            await self._on_blocked(chat_id)
        except Exception:
            logger.exception("on_blocked callback failed for chat %s", chat_id)


@cache
def _sent_counter(api_method: str) -> Counter:
    """The ``MESSAGES_SENT`` child for one API method (``labels()`` costs a lock and a lookup per call)."""
    return metrics.MESSAGES_SENT.labels(method=api_method)


def _is_chat(chat_id: Any) -> bool:
    return (isinstance(chat_id, int) and not isinstance(chat_id, bool)) or (
        isinstance(chat_id, str) and chat_id != ""
    )


def _is_user_id(chat_id: Any) -> bool:
    return isinstance(chat_id, int) and not isinstance(chat_id, bool) and chat_id > 0
