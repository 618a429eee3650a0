"""Start-up failures an operator fixes in one setting, mapped in one place.

The steps of `App` that depend on a setting run inside the context managers below; a failure becomes
`StartupError`, one line naming the setting and what to do. run.py prints it and exits 2, as for a
malformed setting: the operator's next move is to edit that setting, not to read a traceback.
Anything else (a broken migration, a bug) still surfaces with its traceback.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from aiogram.exceptions import TelegramAPIError, TelegramNotFound, TelegramUnauthorizedError
from aiohttp import ClientError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from db.engine import Database

MAX_REASON = 200


class StartupError(Exception):
    """Start-up failed because of one setting; `str()` is one line naming it and what to do."""


def _reason(exc: BaseException) -> str:
    """The cause in one short line (a driver's own message, not SQLAlchemy's multi-line wrapper)."""
    cause = getattr(exc, "orig", None) or exc
    message = " ".join(str(cause).split()) or type(cause).__name__
    return message[:MAX_REASON]


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def database_file(url: str) -> Iterator[None]:
    """Around `Database(url)`: it creates the SQLite file's folder."""
    try:
        yield
    except OSError as exc:
        raise StartupError(f"Cannot use DATABASE_URL {_safe_url(url)}: the SQLite file's folder cannot be "
                           f"created ({_reason(exc)}); point DATABASE_URL at a writable path") from None


async def check_database(db: Database, url: str) -> None:
    """Connect once, so an unreachable database is named before migrations run."""
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError) as exc:
        raise StartupError(f"Cannot connect to DATABASE_URL {_safe_url(url)} ({_reason(exc)}); check that the "
                           "database server runs and the URL's host, port, name and credentials") from None


@contextmanager
def web_listener(host: str, port: int) -> Iterator[None]:
    """Around binding the HTTP app to WEB_HOST:WEB_PORT."""
    try:
        yield
    except OSError as exc:
        reason = _reason(exc)
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"WEB_PORT {port} is already in use on {host}: stop the program using it or "
                               "set another WEB_PORT") from None
        if exc.errno == errno.EACCES:
            raise StartupError(f"WEB_PORT {port} may not be used by this user ({reason}); use a port above "
                               "1023 (behind a reverse proxy)") from None
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise StartupError(f"WEB_HOST {host!r} is not an address of this machine ({reason}); use e.g. "
                               "127.0.0.1 or 0.0.0.0") from None
        raise StartupError(f"Cannot listen on WEB_HOST {host!r}, WEB_PORT {port} ({reason}); check both "
                           "settings") from None


@contextmanager
def telegram(api_url: str) -> Iterator[None]:
    """Around the first request to the Bot API (getMe)."""
    try:
        yield
    except (TelegramUnauthorizedError, TelegramNotFound) as exc:
        raise StartupError(f"TELEGRAM_BOT_TOKEN was refused by the Bot API at {api_url} ({_reason(exc)}); copy "
                           "the token from @BotFather again") from None
    except (TelegramAPIError, ClientError, OSError) as exc:
        raise StartupError(f"Cannot reach the Bot API at TELEGRAM_API_URL {api_url} ({_reason(exc)}); check the "
                           "network, or TELEGRAM_API_URL if you changed it") from None


@contextmanager
def webhook(url: str | None) -> Iterator[None]:
    """Around setWebhook."""
    try:
        yield
    except TelegramAPIError as exc:
        raise StartupError(f"TELEGRAM_WEBHOOK_URL {url} was refused by Telegram ({_reason(exc)}); use a public "
                           "https:// URL ending in /telegram/webhook on port 443, 80, 88 or 8443") from None
