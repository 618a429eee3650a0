"""A flood of forged, maximum-size request bodies at every POST endpoint, from its own process.

The test builds the requests (`build_requests`) and saves them (`save`); ``python -m tests.support.flood
HOST PORT REQUESTS_FILE SECONDS SENDERS`` (standard library only, so it starts at once) prints ``started``,
then, after SECONDS or at SIGTERM, one JSON line: the answers by status and the number of requests.
Each sender cycles through the requests, one connection per request (``Connection: close``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import sys
import time
from collections import Counter
from pathlib import Path

MIB = 1024 * 1024


def padded_object(size: int, **fields: str) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    head = json.dumps({**fields, "pad": ""}, separators=(",", ":")).encode()
    return head[:-2] + b"a" * (size - len(head)) + b'"}'


def build_requests(host: str) -> list[bytes]:
    """For every endpoint, with forged credentials: a JSON object exactly at its cap (for KryptoExpress one
    that passes the shape gate, so it is re-serialised), a bracket bomb at the cap, and the issue's 1 MB
    array (``[1,1,…]``, 1 MB: under the old cap of every route, over every new one but the whale batch's)."""
    from routes.app import BODY_LIMITS
    from tests.support.endpoints import ENDPOINTS, forged_headers

    requests = []
    for route, path in ENDPOINTS.items():
        cap = BODY_LIMITS[route]
        shaped = padded_object(cap, hash="forged", isPaid="true") if route == "/webhooks/kryptoexpress" \
            else padded_object(cap, id="forged")
        headers = {"Content-Type": "application/json", **forged_headers(route), "X-Timestamp": str(int(time.time()))}
        for body in (shaped, b"[" * (cap // 2) + b"]" * (cap // 2), b"[" + b"1," * 499_999 + b"1]"):
            lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Connection: close", f"Content-Length: {len(body)}",
                     *(f"{k}: {v}" for k, v in headers.items())]
            requests.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return requests


def save(requests: list[bytes], path: Path) -> None:
    path.write_bytes(b"".join(struct.pack(">I", len(r)) + r for r in requests))


def load(path: Path) -> list[bytes]:
    data, requests, at = path.read_bytes(), [], 0
    while at < len(data):
        (size,) = struct.unpack_from(">I", data, at)
        requests.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return requests


async def sender(host: str, port: int, requests: list[bytes], stop: asyncio.Event, statuses: Counter) -> None:
    i = 0
    while not stop.is_set():
        raw = requests[i % len(requests)]
        i += 1
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(raw)
            await writer.drain()
            status_line = await reader.readline()
            statuses[int(status_line.split()[1]) if status_line else 0] += 1
            writer.close()
        except (OSError, IndexError, ValueError):
            statuses["error"] += 1


async def main(host: str, port: int, requests: list[bytes], seconds: float, senders: int) -> None:
    os.nice(10)  # an attacker's CPU is not ours: on one test machine, let the server have the cores first
    statuses: Counter = Counter()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.call_later(seconds, stop.set)
    print("started", flush=True)
    await asyncio.gather(*(sender(host, port, requests[k:] + requests[:k], stop, statuses) for k in range(senders)))
    print(json.dumps({"statuses": {str(k): v for k, v in statuses.items()}, "requests": sum(statuses.values())}),
          flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), load(Path(sys.argv[3])), float(sys.argv[4]), int(sys.argv[5])))
