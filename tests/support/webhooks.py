"""A settable clock and a local webhook endpoint, for tests of payment providers and their stand-ins.

The `clock` and `receiver` fixtures are shared by naming them in a test module:
``clock, receiver = webhooks.clock, webhooks.receiver``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.clock import Clock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Receiver:
    """A webhook endpoint on localhost that records each POST as (headers, raw body) and answers 500 to the
    first ``fail`` of them (settable at any time), then 200. Use ``async with Receiver() as r`` or
    `start`/`close`; ``url`` is where to send."""

    def __init__(self, *, fail: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail = fail
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.server = TestServer(app)

    async def _hook(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        if self.fail:
            self.fail -= 1
            return web.Response(status=500)
        return web.Response(text="ok")

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    def bodies(self) -> list[Any]:
        """The recorded bodies parsed as JSON, non-integer numbers as Decimal."""
        return [json.loads(body, parse_float=Decimal) for _, body in self.requests]

    async def start(self) -> Receiver:
        await self.server.start_server()
        return self

    async def close(self) -> None:
        await self.server.close()

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r
