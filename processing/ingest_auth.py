"""Authentication shared by every ingest route under ``/api/`` (signals, whale trades).

Contract (../shared/CONTRACT.md, "Ingest authentication"):

* ``X-Timestamp``: unix seconds; ``X-Signature``: hex HMAC-SHA256(key = ``SIGNAL_WEBHOOK_SECRET``,
  message = ``"{timestamp}." + raw body``), compared with ``hmac.compare_digest`` over the raw bytes.
* Requests more than 300 s older or newer than our clock, or with a bad/missing signature -> 401.
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
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WINDOW_SECONDS = 300
DISABLED_MESSAGE = "ingest disabled: SIGNAL_WEBHOOK_SECRET is not set"


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The signature a sender puts in ``X-Signature`` (also used by tests and benchmarks)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str | bytes, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {"X-Timestamp": str(ts), "X-Signature": sign(secret, ts, body), "Content-Type": "application/json"}


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

    @classmethod
    def build(cls, secret: str | None, allowed_ips: Iterable[str] = (), *,
              clock: Callable[[], float] = time.time, window: int = WINDOW_SECONDS) -> IngestAuth:
        nets = [ipaddress.ip_network(item.strip(), strict=False) for item in allowed_ips if item.strip()]
        return cls(secret.encode() if secret else None, nets, window, clock)

    @classmethod
    def from_settings(cls, settings: Any, *, clock: Callable[[], float] = time.time,
                      on_rejected: Callable[[int, str], None] | None = None) -> IngestAuth:
        raw = settings.signal_webhook_secret
        secret = raw.get_secret_value() if hasattr(raw, "get_secret_value") else raw
        auth = cls.build(secret or None, settings.signal_webhook_allowed_ips, clock=clock)
        auth.on_rejected = on_rejected
        return auth

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
        body = await request.read()
        refused = self._signature_problem(request.headers, body)
        return refused if refused is not None else body

    async def json_object(self, request: web.Request) -> dict[str, Any] | web.Response:
        """`check`, then the body as a JSON object: the payload, or the error response to return."""
        checked = await self.check(request)
        return checked if isinstance(checked, web.Response) else parse_json_object(checked)

    def _signature_problem(self, headers: Any, body: bytes) -> web.Response | None:
        raw_ts = (headers.get("X-Timestamp") or "").strip()
        if not raw_ts:
            return self._rejected(401, "missing X-Timestamp", field="X-Timestamp")
        try:
            ts = int(raw_ts)
        except ValueError:
            return self._rejected(401, "X-Timestamp must be unix seconds", field="X-Timestamp")
        if abs(self.clock() - ts) > self.window:
            return self._rejected(401, f"X-Timestamp outside the ±{self.window} s window", field="X-Timestamp")
        given = (headers.get("X-Signature") or "").strip().lower()
        if not given:
            return self._rejected(401, "missing X-Signature", field="X-Signature")
        assert self.secret is not None
        expected = sign(self.secret, raw_ts, body)
        if not hmac.compare_digest(expected.encode(), given.encode("ascii", "replace")):
            return self._rejected(401, "invalid signature", field="X-Signature")
        return None

    def _rejected(self, status: int, error: str, field: str | None = None) -> web.Response:
        if self.on_rejected is not None:
            self.on_rejected(status, error)
        return error_response(status, error, field=field)


def parse_json_object(body: bytes) -> dict[str, Any] | web.Response:
    """The body as a JSON object, or a 422 naming ``body``."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return error_response(422, "body is not valid JSON", field="body")
    if not isinstance(payload, dict):
        return error_response(422, "body must be a JSON object", field="body")
    return payload
