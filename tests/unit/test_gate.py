"""Unit tests for transport.gate.OutgoingGate, on virtual time.

A real ``aiogram.Bot`` talks to a small recording ``BaseSession`` whose
``make_request`` logs (api method, chat id, virtual time) and can be scripted
to raise ``TelegramRetryAfter`` / ``TelegramForbiddenError``.  Time is a fake
clock that only moves when every task is blocked in the fake ``sleep``: the
earliest sleeper is then woken and the clock jumps to its deadline.  Nothing
really waits, and the run is deterministic.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import logging
import math
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response
from aiogram.types import Message
from prometheus_client import REGISTRY

from transport.gate import GateStats, OutgoingGate, bulk, in_bulk

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
START = 1000.0
EPS = 1e-9


class FakeTime:
    """Virtual clock + sleep. ``run()`` drives the coroutines to completion."""

    # Event-loop turns allowed for woken tasks to settle before time moves on.
    SETTLE_TURNS = 30

    def __init__(self, start: float = START) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self.total_slept = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        delay = max(0.0, delay)
        self.total_slept += delay
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.now + delay, self._seq, fut))
        await fut

    async def _settle(self) -> None:
        for _ in range(self.SETTLE_TURNS):
            await asyncio.sleep(0)

    async def run(self, *coros: Awaitable[Any], return_exceptions: bool = False) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while True:
            await self._settle()
            if all(t.done() for t in tasks):
                break
            assert self._sleepers, "deadlock: tasks pending but nobody sleeps"
            wake_at = self._sleepers[0][0]
            self.now = max(self.now, wake_at)
            while self._sleepers and self._sleepers[0][0] <= wake_at:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
        return await asyncio.gather(*tasks, return_exceptions=return_exceptions)


@dataclass
class Call:
    method: str
    chat_id: Any
    at: float


class RecordingSession(BaseSession):
    """Records every request that reaches Telegram; optionally scripted to fail.

    ``script(method, attempt)`` may return an exception to raise; ``attempt``
    counts earlier requests with the same (api method, chat id).  ``latency``
    keeps a request in flight for that many virtual seconds.
    """

    def __init__(
        self,
        time: FakeTime,
        script: Callable[[TelegramMethod[Any], int], BaseException | None] | None = None,
        latency: float = 0.0,
    ) -> None:
        super().__init__()
        self.time = time
        self.script = script
        self.latency = latency
        self.calls: list[Call] = []
        self.attempts: dict[tuple[str, Any], int] = {}

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 - BaseSession signature
    ) -> Any:
        chat_id = getattr(method, "chat_id", None)
        self.calls.append(Call(method.__api_method__, chat_id, self.time.now))
        key = (method.__api_method__, chat_id)
        attempt = self.attempts.get(key, 0)
        self.attempts[key] = attempt + 1
        if self.latency:
            await self.time.sleep(self.latency)
        if self.script is not None and (exc := self.script(method, attempt)) is not None:
            raise exc
        return [] if method.__api_method__ == "getUpdates" else True

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        yield b""

    def times(self, method: str = "sendMessage", chat_id: Any = None) -> list[float]:
        return [c.at for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]


def make_bot(
    rate: float = 30,
    *,
    script: Callable[[TelegramMethod[Any], int], BaseException | None] | None = None,
    latency: float = 0.0,
    **gate_kwargs: Any,
) -> tuple[Bot, OutgoingGate, RecordingSession, FakeTime]:
    ft = FakeTime()
    session = RecordingSession(time=ft, script=script, latency=latency)
    gate = OutgoingGate(rate, clock=ft.clock, sleep=ft.sleep, **gate_kwargs)
    session.middleware(gate)
    return Bot(TOKEN, session=session), gate, session, ft


def retry_after(method: TelegramMethod[Any], seconds: int) -> TelegramRetryAfter:
    return TelegramRetryAfter(
        method=method, message=f"Too Many Requests: retry after {seconds}", retry_after=seconds
    )


def forbidden(method: TelegramMethod[Any]) -> TelegramForbiddenError:
    return TelegramForbiddenError(method=method, message="Forbidden: bot was blocked by the user")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --------------------------------------------------------------------- spacing


@pytest.mark.asyncio
async def test_100_concurrent_sends_are_spaced_evenly() -> None:
    bot, gate, session, ft = make_bot(rate=30)
    sent_before = metric("bot_messages_sent_total", method="sendMessage")

    results = await ft.run(*(bot.send_message(i + 1, f"msg {i}") for i in range(100)))

    assert results == [True] * 100
    times = session.times()
    assert len(times) == 100
    assert times == sorted(times)
    assert times[0] == START  # the first one is not delayed at all
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(abs(g - 1 / 30) for g in gaps) < EPS
    assert times[-1] - times[0] == pytest.approx(99 / 30, abs=EPS)
    assert sorted(c.chat_id for c in session.calls) == list(range(1, 101))
    assert metric("bot_messages_sent_total", method="sendMessage") - sent_before == 100
    assert gate.stats.succeeded == 100 and gate.stats.dispatched == 100


@pytest.mark.asyncio
async def test_sequential_sends_do_not_drift_and_idle_time_is_not_banked() -> None:
    bot, _gate, session, ft = make_bot(rate=10)

    async def sender() -> None:
        for i in range(5):
            await bot.send_message(7, str(i))
        await ft.sleep(5)  # idle: no burst credit may accumulate
        for i in range(3):
            await bot.send_message(7, str(i))

    await ft.run(sender())
    t = session.times()
    assert [round(x - START, 9) for x in t[:5]] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert [round(x - t[5], 9) for x in t[5:]] == [0.0, 0.1, 0.2]


@pytest.mark.asyncio
async def test_answer_callback_query_and_get_me_are_spaced_too() -> None:
    bot, _gate, session, ft = make_bot(rate=10)
    await ft.run(
        bot.send_message(1, "a"),
        bot.answer_callback_query("cbq-1"),
        bot.get_me(),
    )
    times = sorted(c.at for c in session.calls)
    assert [round(x - START, 9) for x in times] == [0.0, 0.1, 0.2]


# ------------------------------------------------------------- flood control


@pytest.mark.asyncio
async def test_retry_after_pauses_every_sender_and_retries(caplog: pytest.LogCaptureFixture) -> None:
    def script(method: TelegramMethod[Any], attempt: int) -> BaseException | None:
        if getattr(method, "chat_id", None) == 5 and attempt == 0:
            return retry_after(method, 3)
        return None

    bot, gate, session, ft = make_bot(rate=30, script=script)
    r429_before = metric("bot_telegram_429_total")
    caplog.set_level(logging.DEBUG, logger="transport.gate")

    results = await ft.run(*(bot.send_message(i, "secret text") for i in range(1, 21)))

    assert results == [True] * 20
    failed_at = START + 4 / 30  # chat 5 had the 5th slot
    first_try, retry = session.times(chat_id=5)
    assert first_try == pytest.approx(failed_at, abs=EPS)
    assert gate.paused_until == pytest.approx(failed_at + 3, abs=EPS)
    # No request reached Telegram during the pause ...
    assert not [c for c in session.calls if failed_at < c.at < failed_at + 3 - EPS]
    # ... and afterwards the senders resume at the normal pace, the retry among them.
    after = [c.at for c in session.calls if c.at > failed_at]
    assert len(after) == 16  # 15 others + the retry
    assert after[0] == pytest.approx(failed_at + 3, abs=EPS)
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert max(abs(g - 1 / 30) for g in gaps) < EPS
    assert retry >= failed_at + 3 - EPS
    assert metric("bot_telegram_429_total") - r429_before == 1
    s = gate.stats
    assert (s.retry_after, s.retried, s.succeeded, s.failed, s.dispatched) == (1, 1, 20, 0, 21)
    # Logs name the method and chat only: no token, no message text.
    assert "sendMessage" in caplog.text and "chat 5" in caplog.text
    assert TOKEN not in caplog.text and TOKEN.split(":")[1] not in caplog.text
    assert "secret text" not in caplog.text


@pytest.mark.asyncio
async def test_concurrent_retry_after_pauses_take_the_max_not_the_sum() -> None:
    def script(method: TelegramMethod[Any], attempt: int) -> BaseException | None:
        if getattr(method, "chat_id", None) in (1, 2) and attempt == 0:
            return retry_after(method, 3)
        return None

    # Requests stay 0.5 s in flight, so both 429s come back before the pause starts.
    bot, gate, session, ft = make_bot(rate=10, script=script, latency=0.5)
    await ft.run(*(bot.send_message(i, "x") for i in range(1, 6)))

    second_429_at = START + 0.1 + 0.5
    assert gate.paused_until == pytest.approx(second_429_at + 3, abs=EPS)
    assert gate.stats.paused_total == pytest.approx(3.1, abs=EPS)  # the union of the two 3 s pauses
    assert gate.stats.retry_after == 2
    resumed = [c.at for c in session.calls if c.at > second_429_at]
    assert resumed[0] == pytest.approx(second_429_at + 3, abs=EPS)
    assert not [c for c in session.calls if START + 0.5 < c.at < second_429_at + 3 - EPS]


@pytest.mark.asyncio
async def test_retry_after_gives_up_after_max_retries() -> None:
    def script(method: TelegramMethod[Any], attempt: int) -> BaseException | None:
        return retry_after(method, 1)

    bot, gate, session, ft = make_bot(rate=30, script=script, max_retries=2)
    (result,) = await ft.run(bot.send_message(9, "x"), return_exceptions=True)

    assert isinstance(result, TelegramRetryAfter)
    assert len(session.times(chat_id=9)) == 3  # first try + 2 retries
    assert gate.stats.failed == 1 and gate.stats.retry_after == 3


# ------------------------------------------------------------------- blocked


@pytest.mark.asyncio
async def test_forbidden_calls_on_blocked_once_and_reraises(caplog: pytest.LogCaptureFixture) -> None:
    blocked: list[int] = []

    async def on_blocked(chat_id: int) -> None:
        blocked.append(chat_id)

    def script(method: TelegramMethod[Any], attempt: int) -> BaseException | None:
        return forbidden(method) if getattr(method, "chat_id", None) == 42 else None

    bot, gate, session, ft = make_bot(rate=30, script=script, on_blocked=on_blocked)
    b403_before = metric("bot_telegram_403_total")
    caplog.set_level(logging.DEBUG, logger="transport.gate")

    results = await ft.run(
        bot.send_message(42, "private words"), bot.send_message(43, "ok"), return_exceptions=True
    )

    assert isinstance(results[0], TelegramForbiddenError)
    assert results[1] is True
    assert blocked == [42]
    assert len(session.times(chat_id=42)) == 1  # no retry on 403
    assert metric("bot_telegram_403_total") - b403_before == 1
    assert gate.stats.blocked == 1
    assert "private words" not in caplog.text and TOKEN not in caplog.text


@pytest.mark.asyncio
async def test_forbidden_in_group_chat_does_not_mark_a_user() -> None:
    blocked: list[int] = []

    async def on_blocked(chat_id: int) -> None:
        blocked.append(chat_id)

    bot, _gate, _session, ft = make_bot(script=lambda m, a: forbidden(m), on_blocked=on_blocked)
    results = await ft.run(
        bot.send_message(-100123, "x"), bot.send_message("@channel", "x"), return_exceptions=True
    )
    assert all(isinstance(r, TelegramForbiddenError) for r in results)
    assert blocked == []


@pytest.mark.asyncio
async def test_failing_on_blocked_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def on_blocked(chat_id: int) -> None:
        raise RuntimeError("db down")

    bot, _gate, _session, ft = make_bot(script=lambda m, a: forbidden(m), on_blocked=on_blocked)
    caplog.set_level(logging.DEBUG, logger="transport.gate")
    (result,) = await ft.run(bot.send_message(77, "x"), return_exceptions=True)

    assert isinstance(result, TelegramForbiddenError)  # the original error, not RuntimeError
    assert "on_blocked callback failed for chat 77" in caplog.text


# ------------------------------------------------------------------ exemption


@pytest.mark.asyncio
async def test_get_updates_is_not_delayed_by_pause_or_exhausted_rate() -> None:
    def script(method: TelegramMethod[Any], attempt: int) -> BaseException | None:
        if method.__api_method__ == "sendMessage" and getattr(method, "chat_id", None) == 1 and attempt == 0:
            return retry_after(method, 30)
        return None

    bot, gate, session, ft = make_bot(rate=1, script=script)

    async def poller() -> None:
        await ft.sleep(0.5)  # queue full (rate 1/s, 10 senders) and paused by now
        assert gate.pause_remaining() > 0
        assert gate.stats.next_free > ft.now
        await bot.get_updates(timeout=0)
        await bot.get_updates(timeout=0)

    await ft.run(poller(), *(bot.send_message(i, "x") for i in range(1, 11)))

    assert session.times("getUpdates") == [START + 0.5, START + 0.5]
    assert gate.stats.passed_through == 2
    # and the sends went out only after the 30 s pause, one per second
    sends = session.times()
    assert sends[0] == START and sends[1] == pytest.approx(START + 30, abs=EPS)


@pytest.mark.asyncio
async def test_get_updates_errors_pass_through_untouched() -> None:
    bot, gate, session, ft = make_bot(script=lambda m, a: retry_after(m, 5))
    (result,) = await ft.run(bot.get_updates(), return_exceptions=True)
    assert isinstance(result, TelegramRetryAfter)
    assert len(session.calls) == 1  # no retry
    assert gate.paused_until == -math.inf  # no pause for the senders
    assert gate.stats.retry_after == 0


# ----------------------------------------------------------------- bulk mode


@pytest.mark.asyncio
async def test_bulk_mode_spaces_messages_to_one_chat_while_others_proceed() -> None:
    bot, _gate, session, ft = make_bot(rate=30)

    async def broadcast() -> None:
        with bulk():
            assert in_bulk()
            await asyncio.gather(
                *(bot.send_message(chat, f"part {n}") for n in range(3) for chat in (1, 2)),
                *(bot.send_message(chat, "once") for chat in range(10, 20)),
            )
        assert not in_bulk()

    await ft.run(broadcast())

    for chat in (1, 2):
        t = session.times(chat_id=chat)
        assert len(t) == 3
        assert all(b - a >= 1.0 - EPS for a, b in itertools.pairwise(t))
        assert t[1] - t[0] == pytest.approx(1.0, abs=0.05)  # not much more than needed
    # The other chats were not held up by chats 1 and 2 waiting their second.
    others = [c.at for c in session.calls if c.chat_id >= 10]
    assert max(others) - START == pytest.approx(11 / 30, abs=EPS)
    # Global spacing still holds.
    all_times = sorted(c.at for c in session.calls)
    assert min(b - a for a, b in itertools.pairwise(all_times)) >= 1 / 30 - EPS


@pytest.mark.asyncio
async def test_no_per_chat_spacing_outside_bulk_mode() -> None:
    bot, _gate, session, ft = make_bot(rate=30)
    await ft.run(*(bot.send_message(1, str(i)) for i in range(3)))
    t = session.times(chat_id=1)
    assert t[-1] - t[0] == pytest.approx(2 / 30, abs=EPS)


@pytest.mark.asyncio
async def test_bulk_mode_does_not_leak_into_other_tasks() -> None:
    bot, _gate, session, ft = make_bot(rate=30)

    async def broadcaster() -> None:
        with bulk():
            await bot.send_message(1, "a")
            await ft.sleep(0.1)
            await bot.send_message(1, "b")

    async def interactive() -> None:
        await ft.sleep(0.05)
        await bot.send_message(1, "reply 1")
        await bot.send_message(1, "reply 2")

    await ft.run(broadcaster(), interactive())
    t = session.times(chat_id=1)
    # The interactive replies went out right away; only the bulk "b" waited 1 s.
    assert [round(x - START, 9) for x in t] == [0.0, 0.05, round(0.05 + 1 / 30, 9), 1.0]


# ---------------------------------------------------------------- reply types


@pytest.mark.asyncio
async def test_reply_model_is_not_rebuilt_after_garbage_collection() -> None:
    """aiogram parses each reply with ``Response[<returned type>]``; pydantic keeps that model only weakly,
    and rebuilding it after every full collection cost ~6 ms per rebuild, dozens of times per 1,000 replies."""

    def reply_model() -> type:  # built inside a function, as aiogram does for every reply
        return Response[Message]

    bot, _gate, _session, ft = make_bot()
    await ft.run(bot.send_message(1, "hi"))
    model = weakref.ref(reply_model())
    gc.collect()
    assert model() is not None and reply_model() is model()


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize("rate", [0, -1, -0.5, math.nan, math.inf])
def test_invalid_rate_is_rejected(rate: float) -> None:
    with pytest.raises(ValueError):
        OutgoingGate(rate)


@pytest.mark.parametrize(
    "kwargs", [{"per_chat_interval": -1}, {"max_retries": -1}, {"per_chat_interval": math.nan}]
)
def test_invalid_options_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OutgoingGate(30, **kwargs)


def test_stats_snapshot_before_any_request() -> None:
    gate = OutgoingGate(30)
    assert gate.rate == 30 and gate.interval == pytest.approx(1 / 30)
    assert gate.stats == GateStats(0, 0, 0, 0, 0, 0, 0, -math.inf, 0.0, -math.inf)
    assert gate.pause_remaining() == 0.0
