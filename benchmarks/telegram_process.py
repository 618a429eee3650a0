"""The Telegram stand-in in a process of its own, for benchmarks: Telegram is not in the bot's process
in production, so it should not share the bot's CPU when we measure the bot.

    python -m benchmarks.telegram_process --limit 500 --flood-every 50 --first-user 1000000 --users 10000
        --block-every 20 --channel -1001000000003

prints ``ready <base url>`` when serving. ``GET /ctl/sends`` returns every sendMessage as
``[chat_id, ok, error_code, unix_time]`` and the 429s it injected, for the benchmark's tally;
``GET /ctl/delivered`` just the number of successful sendMessage calls, cheap enough to poll.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiohttp import web

from sandbox.telegram import ApiError, TelegramStandIn


def flood(telegram: TelegramStandIn, every: int) -> list[float]:
    """Answer every `every`-th sendMessage with 429 retry_after=1 (2 % for every=50)."""
    original = telegram.handlers["sendmessage"]
    seen, times = [0], []

    async def handler(params):
        seen[0] += 1
        if seen[0] % every == 0:
            times.append(time.time())
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        return await original(params)

    telegram.register("sendMessage", handler)
    return times


async def serve(args: argparse.Namespace) -> None:
    telegram = TelegramStandIn(rate_limit=args.limit or None)
    telegram.add_channel(args.channel, "Signals")
    for uid in range(args.first_user, args.first_user + args.users):
        telegram.add_user(uid)
        if (uid - args.first_user) % args.block_every == 0:
            telegram.blocked.add(uid)  # blocked before the signal, without queuing updates to the bot
    floods = flood(telegram, args.flood_every) if args.flood_every else []

    async def sends(_request: web.Request) -> web.Response:
        rows = [[int(c.params.get("chat_id", 0)), c.ok, c.error_code, c.time]
                for c in telegram.calls_of("sendMessage")]
        return web.json_response({"sends": rows, "floods": floods})

    async def delivered(_request: web.Request) -> web.Response:
        return web.json_response({"delivered": sum(1 for c in telegram.calls_of("sendMessage") if c.ok)})

    telegram.app.router.add_get("/ctl/sends", sends)
    telegram.app.router.add_get("/ctl/delivered", delivered)
    url = await telegram.start("127.0.0.1", 0)
    print(f"ready {url}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=float, default=0)
    parser.add_argument("--flood-every", type=int, default=0)
    parser.add_argument("--first-user", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--block-every", type=int, default=20)
    parser.add_argument("--channel", type=int, required=True)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
