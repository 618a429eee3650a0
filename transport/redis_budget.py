"""The outgoing gate's budget shared by every replica, in Redis: one bot token, one limit.

``await budget.acquire(chat_id)`` returns 0 when this request may go now (the slot is taken), or the
seconds to wait before asking again; the caller sleeps and retries. ``await budget.pause(seconds)``
(on a 429 with ``retry_after``) pauses every replica.

The algorithm is one Lua script, so Redis runs each decision atomically, one at a time, for all replicas
together; every time in it is Redis's own clock (``redis.call('TIME')``, microseconds), never a replica's.
A request is granted only if all of these hold at that server time ``now``:

1. **Flood control**: ``now`` is past the shared pause (a key holding the pause's end, with a PX expiry;
   a new pause only ever extends it: the max of the pauses seen, never their sum).
2. **Per chat** (when a ``chat_id`` is given): a log of the chat's last grants (a capped list) has fewer than
   ``n`` entries within the chat's window: 1 per second for a private chat (``chat_id > 0``), 20 per minute
   for a group, supergroup or channel (negative ids and ``@username``).
3. **Global cap**: the log of the last ``C`` grants (all chats) holds no grant within the last ``W``
   seconds before its ``C``-th entry, i.e. fewer than ``C`` grants in ``(now - W, now]``, with
   ``C = floor(rate)`` and ``W = 1 s`` (for a rate below 1: ``C = 1``, ``W = 1 / rate``).
4. **Pacing** (GCRA, emission interval ``T = 1/rate``, burst tolerance ``T``): ``now >= TAT - T``, then
   ``TAT = max(TAT, now) + T``. This spreads grants evenly instead of letting ``C`` go at the start of
   each second, and the tolerance of one interval lets a waiter that wakes a little late keep its turn
   (so the sustained rate stays at ``rate`` despite sleep jitter).

Why the replicas together cannot exceed the limit in any 1-second window: every grant is decided by the
same script on the same server, serially, and stamped with that server's clock, which never goes back. The
grant times therefore form one sequence ``g1 <= g2 <= …``, and rule 3 admits ``g[k + C]`` only if
``g[k + C] - g[k] >= 1 s``; so no half-open 1-second window ``[a, a + 1)`` holds more than ``C <= rate``
grants, whichever replica asked, however many replicas there are, and whatever their clocks say. The
budget is for the whole bot token (the key prefix), as Telegram counts it. What a replica's own clock adds
is only the delay between a grant and its request leaving (a fraction of a millisecond locally).

A refused caller is told when to come back; no slot is reserved for it (a replica that dies while
waiting holds nothing). So that many waiters do not all come back at the same instant, the script hands
out staggered return times, one interval apart (a hint key holding the last one given): at 500/s with 24
senders on 3 connections, about 2 calls per grant and 97% of the rate used; one call takes ~0.3 ms locally.

Redis unreachable: ``acquire`` and ``pause`` raise ``redis.exceptions.RedisError``; a caller waits and asks
again rather than sending outside the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis.asyncio import Redis

__all__ = ["Grant", "RedisBudget"]

#: (grants, window in seconds) per chat: Telegram's "about 1 message per second" to one private chat and
#: "no more than 20 messages per minute" to one group.
PRIVATE_CHAT = (1, 1.0)
GROUP_CHAT = (20, 60.0)

# KEYS: 1 pause, 2 TAT, 3 global log, 4 hint, [5 chat log]
# ARGV: 1 interval us, 2 global cap, 3 global window us, 4 chat cap, 5 chat window us
# Returns {granted 0|1, wait us, server time us}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, cap, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function us(x) return string.format('%.0f', x) end
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if paused > now then wait = paused - now end
local chat_cap, chat_window = tonumber(ARGV[4]), tonumber(ARGV[5])
if KEYS[5] then
  local nth = redis.call('LINDEX', KEYS[5], chat_cap - 1)
  if nth and tonumber(nth) + chat_window - now > wait then wait = tonumber(nth) + chat_window - now end
end
if wait > 0 then return {0, wait, now} end
local due = 0
local nth = redis.call('LINDEX', KEYS[3], cap - 1)
if nth then due = tonumber(nth) + window end
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat - interval > due then due = tat - interval end
if due > now then
  local at = due
  local hint = tonumber(redis.call('GET', KEYS[4]) or '0')
  if hint >= due then at = hint + interval end
  redis.call('SET', KEYS[4], us(at), 'PX', math.ceil((at - now) / 1000) + 1000)
  return {0, at - now, now}
end
if tat < now then tat = now end
redis.call('SET', KEYS[2], us(tat + interval), 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
redis.call('LPUSH', KEYS[3], us(now))
redis.call('LTRIM', KEYS[3], 0, cap - 1)
redis.call('PEXPIRE', KEYS[3], math.ceil(window / 1000) + 1000)
if KEYS[5] then
  redis.call('LPUSH', KEYS[5], us(now))
  redis.call('LTRIM', KEYS[5], 0, chat_cap - 1)
  redis.call('PEXPIRE', KEYS[5], math.ceil(chat_window / 1000) + 1000)
end
return {1, 0, now}
"""

# KEYS: 1 pause; ARGV: 1 seconds in us. Returns the pause's end (server time, us).
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ends = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if ends <= current then return current end
redis.call('SET', KEYS[1], string.format('%.0f', ends), 'PX', math.ceil((ends - now) / 1000))
return ends
"""


@dataclass(frozen=True, slots=True)
class Grant:
    """One answer of the script: ``wait`` 0 means granted at ``server_time`` (both in seconds)."""

    wait: float
    server_time: float


class RedisBudget:
    """The shared budget for one bot token (``prefix``); one instance per replica, any number of tasks.

    :param redis: a redis-py asyncio client (``services.redis.connect``).
    :param rate: requests per second, all replicas together (``TELEGRAM_RATE_LIMIT``).
    """

    def __init__(self, redis: Redis, rate: float, *, prefix: str = "tg:{budget}:",
                 private_chat: tuple[int, float] = PRIVATE_CHAT, group_chat: tuple[int, float] = GROUP_CHAT) -> None:
        if not (rate > 0) or not math.isfinite(rate):
            raise ValueError(f"rate must be a finite number > 0, got {rate!r}")
        self.rate = float(rate)
        cap, window = (math.floor(rate), 1.0) if rate >= 1 else (1, 1 / rate)
        self._args = [round(1e6 / rate), cap, round(window * 1e6)]
        self._keys = [f"{prefix}{name}" for name in ("pause", "tat", "log", "hint")]
        self._chat_prefix = f"{prefix}chat:"  # the hash tag in `prefix` keeps every key in one cluster slot
        self._private = (private_chat[0], round(private_chat[1] * 1e6))
        self._group = (group_chat[0], round(group_chat[1] * 1e6))
        self._acquire = redis.register_script(_ACQUIRE)
        self._pause = redis.register_script(_PAUSE)

    async def reserve(self, chat_id: int | str | None = None) -> Grant:
        """``acquire`` with the server time of the decision (for measurements and logs)."""
        keys, args = self._keys, self._args
        if chat_id is not None and chat_id != "":
            chat_cap, chat_window = self._private if isinstance(chat_id, int) and chat_id > 0 else self._group
            keys = [*keys, f"{self._chat_prefix}{chat_id}"]
            args = [*args, chat_cap, chat_window]
        else:
            args = [*args, 0, 0]
        granted, wait_us, now_us = await self._acquire(keys=keys, args=args)
        return Grant(0.0 if granted else max(wait_us, 1) / 1e6, now_us / 1e6)

    async def acquire(self, chat_id: int | str | None = None) -> float:
        """0: go now (the slot is taken). Otherwise the seconds to wait before calling again.
        ``chat_id`` None skips the per-chat spacing (as the in-process gate does outside ``bulk()``)."""
        return (await self.reserve(chat_id)).wait

    async def pause(self, seconds: float) -> float:
        """Pause every replica for ``seconds`` from now (Telegram's ``retry_after``); returns the pause's
        end in server time (seconds since the epoch), which a longer pause seen earlier may exceed."""
        ends = await self._pause(keys=self._keys[:1], args=[max(0, round(seconds * 1e6))])
        return int(ends) / 1e6
