"""Shared fixtures.

`database_url` is a fresh, empty database per test: a temp-file SQLite always, and the
same tests again on PostgreSQL whenever TEST_DATABASE_URL points at a server
(`.ci/run` starts one).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator

import pytest

from config.settings import Settings
from db import migrate
from db.engine import Database
from tests.support.harness import Harness
from tests.support.pg import fresh_database

PG_URL = os.environ.get("TEST_DATABASE_URL")
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _loopback_only(address) -> None:
    """Tests talk to stand-ins on this machine only: any other address fails loudly."""
    if isinstance(address, tuple):
        try:
            if not ipaddress.ip_address(address[0]).is_loopback:
                raise ConnectionRefusedError(f"tests may not reach {address[0]}: use a sandbox stand-in")
        except ValueError:  # a host name
            if address[0] != "localhost":
                raise ConnectionRefusedError(f"tests may not reach {address[0]}: use a sandbox stand-in") from None


@pytest.fixture(autouse=True, scope="session")
def no_network():
    def connect(sock, address):
        _loopback_only(address)
        return _connect(sock, address)

    def connect_ex(sock, address):
        _loopback_only(address)
        return _connect_ex(sock, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    yield
    socket.socket.connect, socket.socket.connect_ex = _connect, _connect_ex
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
ADMIN_ID = 9001


@pytest.fixture(params=BACKENDS)
async def database_url(request, tmp_path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    async with fresh_database(PG_URL) as url:
        yield url


@pytest.fixture
async def database(database_url) -> AsyncIterator[Database]:
    db = Database(database_url)
    await migrate.upgrade(db)
    yield db
    await db.close()


def make_settings(**overrides) -> Settings:
    values = {"admin_ids": [ADMIN_ID], "_env_file": None, "telegram_rate_limit": 1000,
              "telegram_bot_token": "42:TEST-TOKEN-abcdefghijklmnopqrstuv"}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def harness(settings) -> AsyncIterator[Harness]:
    h = await Harness(settings).start()
    yield h
    await h.close()


@pytest.fixture
def i18n_context():
    """Render translatable text outside a handler (English)."""
    from bot.i18n import build_i18n

    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("en"):
        yield i18n
