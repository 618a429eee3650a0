"""A load generator in its own process, so the server under test has its own core: `python -m
benchmarks.http_load URL REQUESTS CLIENTS [HEADER:VALUE ...]` GETs URL REQUESTS times from CLIENTS concurrent
keep-alive clients and prints one JSON line: {"rate": req/s, "p50": ms, "p95": ms, "statuses": {...}}."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections import Counter

from aiohttp import ClientSession, TCPConnector


async def load(url: str, requests: int, clients: int, headers: dict[str, str]) -> dict:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    left = requests

    async def client(session: ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status] += 1

    sessions = [ClientSession(connector=TCPConnector(limit=1)) for _ in range(clients)]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(client(s) for s in sessions))
        elapsed = time.perf_counter() - started
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    quantiles = statistics.quantiles(latencies, n=100)
    return {"rate": len(latencies) / elapsed, "p50": quantiles[49], "p95": quantiles[94],
            "statuses": {str(k): v for k, v in statuses.items()}}


def main() -> None:
    url, requests, clients, *pairs = sys.argv[1:]
    headers = dict(pair.split(":", 1) for pair in pairs)
    print(json.dumps(asyncio.run(load(url, int(requests), int(clients), headers))))


if __name__ == "__main__":
    main()
