"""Authentication shared by every ingest route under ``/api/`` (signals, whale trades).

Contract (README, "Security"):

* ``X-Timestamp``: unix seconds; ``X-Signature``: hex HMAC-SHA256(key = ``SIGNAL_WEBHOOK_SECRET``,
  message = ``"{timestamp}." + raw body``), compared with ``hmac.compare_digest`` over the raw bytes.
  With ``X-Signature-Version: 2`` the message is ``"{timestamp}.{METHOD}.{path}." + raw body``; ``path`` is
  the request's path as sent on the wire (percent-encoding kept, no query string).
* Requests more than 300 s older or newer than our clock, or with a bad/missing signature -> 401.
* A signature is bound to the path it was first presented for (`processing.signature_memory`: in this
  process, or in Redis when ``REDIS_URL`` is set): presented again for another path within its window
  -> 401; for the same path it is an ordinary retry. Memory unreachable -> 503 (refused, not let through).
* The body is read only after the IP check, up to the route's size cap (routes.app, 413 beyond), is
  authenticated as raw bytes, and only then parsed, with a nesting limit (`services.safe_json`).
* Client IP not in ``SIGNAL_WEBHOOK_ALLOWED_IPS`` (addresses or networks; empty = any) -> 403.
  The IP is the TCP peer (``request.remote``); ``X-Forwarded-For`` is NOT trusted — put the
  proxy's address in the allow-list if you run behind one.
* ``SIGNAL_WEBHOOK_SECRET`` unset -> ingest is disabled: **503** with
  ``{"ok": false, "error": "ingest disabled: SIGNAL_WEBHOOK_SECRET is not set"}``. 503 rather
  than 404 so an integrator sees at once that the route exists and is switched off by
  configuration (and a retrying sender keeps its data until it is switched on).

Nothing is read from the database here, so a refused request changes nothing.

Usage in an aiohttp handler::

    auth = IngestAuth.from_settings(settings)
    async def receive(request):
        payload = await auth.json_object(request)  # authenticated dict, or the 401/403/422/503 Response
        if isinstance(payload, web.Response):
            return payload
        ...

Error bodies share one shape: ``{"ok": false, "error": "<reason>", "field": "<name>"?}``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from processing.signature_memory import LocalMemory, RedisMemory, SignatureMemory
from services import safe_json
from services.redis import RedisError, connect

log = logging.getLogger(__name__)

WINDOW_SECONDS = 300
DISABLED_MESSAGE = "ingest disabled: SIGNAL_WEBHOOK_SECRET is not set"
VERSIONS = ("1", "2")


def prefix(timestamp: int | str, *, method: str | None = None, path: str | None = None) -> bytes:
    """What is signed before the raw body: ``"{ts}."`` (version 1), or ``"{ts}.{METHOD}.{path}."`` (version 2)."""
    if method is None and path is None:
        return f"{timestamp}.".encode()
    return f"{timestamp}.{(method or '').upper()}.{path}.".encode()


def sign(secret: str | bytes, timestamp: int | str, body: bytes, *, method: str | None = None,
         path: str | None = None) -> str:
    """The signature a sender puts in ``X-Signature`` (also used by tests and benchmarks); give ``method``
    and ``path`` for version 2."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, prefix(timestamp, method=method, path=path), hashlib.sha256)
    mac.update(body)  # the body is not copied
    return mac.hexdigest()


def signed_headers(secret: str | bytes, body: bytes, *, timestamp: int | None = None, method: str | None = None,
                   path: str | None = None) -> dict[str, str]:
    """Headers of a signed request: version 1, or version 2 when ``path`` is given (``method`` defaults to POST)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    headers = {"X-Timestamp": str(ts), "Content-Type": "application/json"}
    if path is None:
        headers["X-Signature"] = sign(secret, ts, body)
    else:
        headers["X-Signature"] = sign(secret, ts, body, method=method or "POST", path=path)
        headers["X-Signature-Version"] = "2"
    return headers


def error_response(status: int, error: str, *, field: str | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error": error}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return web.json_response(body, status=status)


@dataclass
class IngestAuth:
    secret: bytes | None
    allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    window: int = WINDOW_SECONDS
    clock: Callable[[], float] = time.time
    #: told (status, reason) of every refused request; the app counts them for burst alerts
    on_rejected: Callable[[int, str], None] | None = None
    #: signature -> the path it was first presented for
    memory: SignatureMemory | None = None

    def __post_init__(self) -> None:
        if self.memory is None:
            self.memory = LocalMemory(self.clock)

    @classmethod
    def build(cls, secret: str | None, allowed_ips: Iterable[str] = (), *,
              clock: Callable[[], float] = time.time, window: int = WINDOW_SECONDS,
              redis_url: str | None = None) -> IngestAuth:
        nets = [ipaddress.ip_network(item.strip(), strict=False) for item in allowed_ips if item.strip()]
        memory = RedisMemory(connect(redis_url), clock) if redis_url else LocalMemory(clock)
        return cls(secret.encode() if secret else None, nets, window, clock, memory=memory)

    @classmethod
    def from_settings(cls, settings: Any, *, clock: Callable[[], float] = time.time,
                      on_rejected: Callable[[int, str], None] | None = None) -> IngestAuth:
        raw = settings.signal_webhook_secret
        secret = raw.get_secret_value() if hasattr(raw, "get_secret_value") else raw
        auth = cls.build(secret or None, settings.signal_webhook_allowed_ips, clock=clock,
                         redis_url=getattr(settings, "redis_url", None) or None)
        auth.on_rejected = on_rejected
        return auth

    def attach(self, app: web.Application) -> None:
        """Close the signature memory (a Redis connection) when ``app`` is cleaned up; once per app."""
        if not any(getattr(hook, "__self__", None) is self for hook in app.on_cleanup):
            app.on_cleanup.append(self._cleanup)

    async def _cleanup(self, _app: web.Application) -> None:
        await self.close()

    async def close(self) -> None:
        assert self.memory is not None
        await self.memory.close()

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    def ip_allowed(self, remote: str | None) -> bool:
        if not self.allowed:
            return True
        if not remote:
            return False
        try:
            address = ipaddress.ip_address(remote.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == net.version and address in net for net in self.allowed)

    async def check(self, request: web.Request) -> web.Response | bytes:
        """The raw body when the request is authentic, otherwise the error response to return."""
        if not self.enabled:
            return error_response(503, DISABLED_MESSAGE)
        if not self.ip_allowed(request.remote):  # before reading the body
            return self._rejected(403, "client IP not allowed")
        body = await request.read()  # at most the route's cap (routes.app): 413 beyond
        refused = await self._signature_problem(request.method, request.rel_url.raw_path, request.headers, body)
        return refused if refused is not None else body

    async def json_object(self, request: web.Request) -> dict[str, Any] | web.Response:
        """`check`, then the body as a JSON object: the payload, or the error response to return."""
        checked = await self.check(request)
        return checked if isinstance(checked, web.Response) else parse_json_object(checked)

    async def _signature_problem(self, method: str, path: str, headers: Any, body: bytes) -> web.Response | None:
        raw_ts = (headers.get("X-Timestamp") or "").strip()
        if not raw_ts:
            return self._rejected(401, "missing X-Timestamp", field="X-Timestamp")
        if not (raw_ts.isascii() and raw_ts.isdigit() and len(raw_ts) <= 12):
            return self._rejected(401, "X-Timestamp must be unix seconds", field="X-Timestamp")
        ts = int(raw_ts)
        if abs(self.clock() - ts) > self.window:
            return self._rejected(401, f"X-Timestamp outside the ±{self.window} s window", field="X-Timestamp")
        version = (headers.get("X-Signature-Version") or "1").strip()
        if version not in VERSIONS:
            return self._rejected(401, "X-Signature-Version must be 1 or 2", field="X-Signature-Version")
        given = (headers.get("X-Signature") or "").strip().lower()
        if not given:
            return self._rejected(401, "missing X-Signature", field="X-Signature")
        assert self.secret is not None
        expected = sign(self.secret, raw_ts, body) if version == "1" else \
            sign(self.secret, raw_ts, body, method=method, path=path)
        if not hmac.compare_digest(expected.encode(), given.encode("ascii", "replace")):
            return self._rejected(401, "invalid signature", field="X-Signature")
        assert self.memory is not None
        try:
            fresh = await self.memory.bind(expected, path, ts + self.window + 1)
        except (RedisError, OSError) as exc:
            log.warning("ingest refused: the signature memory is unreachable: %s", exc)
            return error_response(503, "cannot check the signature for replay now, retry later")
        if not fresh:
            return self._rejected(401, "this signature was already used for another path", field="X-Signature")
        return None

    def _rejected(self, status: int, error: str, field: str | None = None) -> web.Response:
        if self.on_rejected is not None:
            self.on_rejected(status, error)
        return error_response(status, error, field=field)


def parse_json_object(body: bytes) -> dict[str, Any] | web.Response:
    """The body as a JSON object (at most `safe_json.MAX_DEPTH` levels deep), or a 422 naming ``body``."""
    try:
        payload = safe_json.loads(body.decode("utf-8"))
    except safe_json.TooDeep as exc:
        return error_response(422, f"body {exc}", field="body")
    except (UnicodeDecodeError, ValueError):
        return error_response(422, "body is not valid JSON", field="body")
    if not isinstance(payload, dict):
        return error_response(422, "body must be a JSON object", field="body")
    return payload
