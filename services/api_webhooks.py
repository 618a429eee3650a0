"""Outbound webhooks of the developer API: a paid user registers one URL; every signal and signal event they
would receive is POSTed there, signed with their secret (processing/webhook_delivery.py sends).

* Signing: `X-Signature` = hex HMAC-SHA256(secret, `"{X-Timestamp}." + body`), as our own ingest checks
  (processing/ingest_auth.sign). The secret is shown once (register, rotate) and kept encrypted (Fernet under
  a key derived from the app's credential, services/vault.fernet_for): we must sign with it, so no hash.
* SSRF: a URL must be https without credentials, and every address its host resolves to must be public —
  checked at registration and again before each delivery (the sender's resolver refuses too, so a host
  re-pointed at a private address between the two is caught). `allow_private` (API_WEBHOOK_ALLOW_PRIVATE,
  the sandbox) lets http and private addresses through.
* Queue: rows are added in the transaction that stores the signal or event (`signal_rows`/`event_rows`,
  `enqueue`), so a stored signal is never lost to a crash and a rolled-back one never posted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import uuid
from collections.abc import Awaitable, Callable, Container, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.engine import Database
from db.models_webhooks import ApiWebhook, ApiWebhookDelivery
from services.subscriptions import SubscriptionService
from services.vault import fernet_for

log = logging.getLogger(__name__)

MAX_URL = 2048
SECRET_PREFIX = "whsec_"
SIGNAL_CREATED, SIGNAL_EVENT = "signal.created", "signal.event"
RETRY_FOR = timedelta(hours=24)  # a delivery is retried this long after it was queued
DISABLE_AFTER = timedelta(hours=24)  # failing this long with no success switches the hook off
FIRST_RETRY, LONGEST_RETRY = timedelta(minutes=1), timedelta(hours=1)
Resolve = Callable[[str, int], Awaitable[list[str]]]


class Refusal(StrEnum):
    PAID_ONLY = "paid_only"
    BAD_URL = "bad_url"
    NOT_HTTPS = "not_https"
    CREDENTIALS = "credentials"
    UNRESOLVABLE = "unresolvable"
    PRIVATE = "private"


#: English reasons (the HTTP API answers with them; the bot words them in presentation/api.py).
REASONS = {
    Refusal.PAID_ONLY: "webhooks are included in paid plans only",
    Refusal.BAD_URL: f"the URL must be a full address such as https://example.com/hook, at most {MAX_URL} characters",
    Refusal.NOT_HTTPS: "the URL must start with https://",
    Refusal.CREDENTIALS: "the URL must not contain a user name or password",
    Refusal.UNRESOLVABLE: "the URL's host name does not resolve",
    Refusal.PRIVATE: "the URL's host must be a public address (not private, loopback, link-local, multicast or "
                     "reserved)",
}


class WebhookRefused(Exception):
    """A URL or user that may not have a webhook; `refusal` says why, str() in English."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(REASONS[refusal])
        self.refusal = refusal


def retry_delay(attempts: int) -> timedelta:
    """After the `attempts`-th failed try: 1 minute, doubling, at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def address_refused(address: str) -> bool:
    """An address a webhook may not reach: anything but a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.sixtofour or ip.teredo):
        embedded = ip.ipv4_mapped or ip.sixtofour or ip.teredo[1]  # the IPv4 address it carries reaches that host
        if address_refused(str(embedded)):
            return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def check_url(url: str, *, allow_private: bool = False, resolver: Resolve = resolve) -> str:
    """The URL (trimmed) when a webhook may post to it; WebhookRefused otherwise."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL or not url.isprintable() or not url.isascii() or " " in url:
        raise WebhookRefused(Refusal.BAD_URL)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise WebhookRefused(Refusal.BAD_URL) from None
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookRefused(Refusal.NOT_HTTPS if parts.scheme not in ("https", "http") else Refusal.BAD_URL)
    if parts.scheme != "https" and not allow_private:
        raise WebhookRefused(Refusal.NOT_HTTPS)
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused(Refusal.CREDENTIALS)
    if allow_private:
        return url
    literal = _ip(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolver(host, port or 443)
        except (OSError, UnicodeError):
            raise WebhookRefused(Refusal.UNRESOLVABLE) from None
    if not addresses:
        raise WebhookRefused(Refusal.UNRESOLVABLE)
    if any(address_refused(address) for address in addresses):
        raise WebhookRefused(Refusal.PRIVATE)
    return url


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


# ------------------------------------------------------------------------------------------ the queue

async def enabled_hooks(session: AsyncSession) -> dict[int, int]:
    """user id -> webhook id of every switched-on webhook (read once per ingest batch)."""
    return dict((await session.execute(select(ApiWebhook.user_id, ApiWebhook.id)
                                       .where(ApiWebhook.enabled.is_(True)))).all())


def _row(hook_id: int, user_id: int, kind: str, item_id: int, now: datetime) -> dict[str, Any]:
    return dict(public_id=f"whd_{uuid.uuid4().hex}", webhook_id=hook_id, user_id=user_id, kind=kind,
                item_id=item_id, status="queued", attempts=0, next_attempt_at=now, created_at=now)


def signal_rows(hooks: dict[int, int], recipients: Iterable[dict[str, Any]], paid: Container[int],
                signal_id: int, now: datetime) -> list[dict[str, Any]]:
    """A "signal.created" delivery for each recipient of the signal (its outbox rows: the audience rule) who
    is on a paid plan and has a webhook."""
    if not hooks:
        return []
    return [_row(hooks[r["user_id"]], r["user_id"], SIGNAL_CREATED, signal_id, now) for r in recipients
            if r["user_id"] in hooks and r["user_id"] in paid]


def event_rows(hooks: dict[int, int], user_ids: Iterable[int | None], event_id: int,
               now: datetime) -> list[dict[str, Any]]:
    """A "signal.event" delivery for each of the signal's recipients who has a webhook (the plan is checked
    again when it is sent)."""
    return [_row(hooks[u], u, SIGNAL_EVENT, event_id, now) for u in dict.fromkeys(user_ids) if u in hooks]


async def enqueue(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert the rows in the caller's transaction (one executemany)."""
    if rows:
        await session.execute(insert(ApiWebhookDelivery.__table__), rows)


# ------------------------------------------------------------------------------------------ the service

class WebhookService:
    """Registering, showing, rotating and removing a user's webhook; the delivery log."""

    def __init__(self, database: Database, subscriptions: SubscriptionService, *, material: str | None,
                 allow_private: bool = False, clock: Callable[[], datetime] = utcnow,
                 resolver: Resolve = resolve) -> None:
        self.db, self.subscriptions, self.allow_private = database, subscriptions, allow_private
        self.clock, self.resolver = clock, resolver
        self._fernet = fernet_for(material, "api-webhook-secrets") if material else None

    async def check_url(self, url: str) -> str:
        return await check_url(url, allow_private=self.allow_private, resolver=self.resolver)

    def _encrypt(self, secret: str) -> str:
        if self._fernet is None:
            raise RuntimeError("no key material to keep webhook secrets")
        return self._fernet.encrypt(secret.encode()).decode()

    def secret_of(self, hook: ApiWebhook) -> str | None:
        """The hook's signing secret; None if it cannot be decrypted (the key material changed)."""
        if self._fernet is None:
            return None
        try:
            return self._fernet.decrypt(hook.secret.encode()).decode()
        except InvalidToken:
            log.warning("webhook %s: its secret can't be decrypted; the user must rotate it", hook.id)
            return None

    async def register(self, user_id: int, url: str) -> tuple[ApiWebhook, str]:
        """Set (or replace) the user's URL, switched on, with a new secret (returned: shown once)."""
        if not (await self.subscriptions.current_plan(user_id)).is_paid:
            raise WebhookRefused(Refusal.PAID_ONLY)
        url = await self.check_url(url)
        try:
            return await self._set(user_id, url)
        except IntegrityError:  # a concurrent first registration won: this one replaces it
            return await self._set(user_id, url)

    async def _set(self, user_id: int, url: str) -> tuple[ApiWebhook, str]:
        secret = new_secret()
        async with self.db.transaction() as session:
            hook = await session.scalar(select(ApiWebhook).where(ApiWebhook.user_id == user_id))
            if hook is None:
                hook = ApiWebhook(user_id=user_id, url=url, secret=self._encrypt(secret), enabled=True,
                                  created_at=self.clock())
                session.add(hook)
            else:
                hook.url, hook.secret, hook.enabled = url, self._encrypt(secret), True
                hook.failing_since = hook.disabled_at = None
            await session.flush()
        return hook, secret

    async def get(self, user_id: int) -> ApiWebhook | None:
        async with self.db.session() as session:
            return await session.scalar(select(ApiWebhook).where(ApiWebhook.user_id == user_id))

    async def remove(self, user_id: int) -> bool:
        """Forget the hook, its queue and its log; False when there was none."""
        async with self.db.transaction() as session:
            hook_id = await session.scalar(select(ApiWebhook.id).where(ApiWebhook.user_id == user_id))
            if hook_id is None:
                return False
            await session.execute(delete(ApiWebhookDelivery).where(ApiWebhookDelivery.webhook_id == hook_id))
            await session.execute(delete(ApiWebhook).where(ApiWebhook.id == hook_id))
        return True

    async def rotate_secret(self, user_id: int) -> str | None:
        """A new secret for the user's hook (shown once; the old one stops signing at once); None: no hook."""
        secret = new_secret()
        async with self.db.transaction() as session:
            done = await session.execute(update(ApiWebhook).where(ApiWebhook.user_id == user_id)
                                         .values(secret=self._encrypt(secret)))
        return secret if done.rowcount else None

    async def deliveries(self, user_id: int, limit: int = 10) -> list[ApiWebhookDelivery]:
        """The user's latest deliveries, newest first."""
        async with self.db.session() as session:
            return list(await session.scalars(select(ApiWebhookDelivery).where(ApiWebhookDelivery.user_id == user_id)
                                              .order_by(ApiWebhookDelivery.id.desc()).limit(limit)))
