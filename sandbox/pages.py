"""Shared plumbing for the stand-ins.

- :class:`LocalServer`: serving ``self.app`` on localhost (``start``/``stop``, ``async with``), for
  every stand-in (Telegram, OpenRouter, DeepSeek and the payment providers).
- :class:`ProviderStandIn`, a `LocalServer` for the payment-provider stand-ins (Crypto Pay,
  KryptoExpress): the request log (``calls``), fault injection (``fail_next``, ``down``) and webhook
  delivery with retries, a delivery log and a queue of webhooks that could not be delivered (``pending``).
- Wire formats: :func:`plain_decimal` (amounts and prices as strings) and :func:`iso` (dates).
- Tiny HTML helpers for the pay pages. Everything that is not a literal goes through :func:`esc`.
  The pages speak English or Russian (:func:`page_lang`: ``?lang=ru``, else the browser's
  ``Accept-Language``), as the real services show their pages in the payer's language.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, Self, TypeVar

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def plain_decimal(amount: Decimal) -> str:
    """Plain decimal string without exponent or trailing zeros (``"12.5"``, ``"10"``, ``"0"``)."""
    text = format(amount.normalize(), "f")
    return text if text != "-0" else "0"


def iso(moment: datetime) -> str:
    """``2026-01-02T03:04:05.678Z``: ISO 8601 in UTC with milliseconds, as the services write dates."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PayError(ValueError):
    """A driving-API or pay-page payment that cannot happen (``status``: 404 unknown, 409 state)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Call:
    """One API request as received (``params`` decoded); ``status`` is the HTTP status answered."""

    method: str
    params: JSON
    time: float
    status: int = 200


class Faults:
    """Injected failures queued per method name (lower-cased): each answers the next ``times`` calls."""

    def __init__(self) -> None:
        self._queues: dict[str, list[list[Any]]] = {}

    def add(self, method: str, fault: tuple[Any, ...], times: int) -> None:
        self._queues.setdefault(method.lower(), []).append([fault, times])

    def take(self, *methods: str) -> tuple[Any, ...] | None:
        """The fault due for a call of the first of ``methods`` that has one (counted down), if any."""
        for method in methods:
            queue = self._queues.get(method)
            if queue:
                fault, times = entry = queue[0]
                entry[1] = times - 1
                if times <= 1:
                    queue.pop(0)
                return fault
        return None


class HasMethod(Protocol):
    method: str


C = TypeVar("C", bound=HasMethod)


def calls_of(calls: Iterable[C], method: str) -> list[C]:
    """The ``calls`` of ``method`` (case-insensitive)."""
    return [c for c in calls if c.method.lower() == method.lower()]


@dataclass
class Outgoing:
    """A webhook to deliver: exact body bytes and (signed) headers. ``url=None``: the default URL."""

    payload: JSON
    body: bytes
    headers: dict[str, str]
    url: str | None = None


@dataclass
class Delivery:
    """One delivery attempt of a webhook."""

    url: str
    body: bytes
    headers: dict[str, str]
    attempt: int
    status: int | None
    error: str | None
    time: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


class LocalServer:
    """Serves ``self.app`` (set by the subclass) on localhost. Subclasses that hold more (tasks,
    sessions, waiters) extend `start`/`stop` and call ``super()``."""

    app: web.Application
    base_url: str | None
    _runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = any free port); return the base URL."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        """Stop the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ProviderStandIn(LocalServer):
    """Base class: serve ``self.app``, log calls, inject faults, deliver webhooks with retries.

    Subclasses add routes to ``self.app`` and answer API calls through :meth:`_gate`, which logs the
    call and returns the injected failure, if any.
    """

    def __init__(
        self, *, public_url: str | None = None, retry_delays: Sequence[float] = (0.05, 0.25, 1.0),
        delivery_timeout: float = 5.0,
    ) -> None:
        self.app = web.Application(middlewares=[self._hold])
        self.calls: list[Call] = []
        #: Requests held unanswered by :meth:`hang` so far.
        self.held = 0
        self._released = asyncio.Event()
        self._released.set()
        self.deliveries: list[Delivery] = []
        self.pending: list[Outgoing] = []
        #: Every API call answers 503 (not JSON, as a load balancer in front of a dead service would).
        self.down = False
        #: Pause before each retry; a webhook gets ``1 + len(retry_delays)`` attempts.
        self.retry_delays = tuple(retry_delays)
        self.delivery_timeout = delivery_timeout
        self.base_url: str | None = None
        self._public_url = public_url
        self._faults = Faults()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[bool]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def public_url(self) -> str:
        """Base URL that payers' links use (defaults to the served address)."""
        url = self._public_url or self.base_url
        if url is None:
            raise RuntimeError("not started; call start() or set public_url")
        return url.rstrip("/")

    @public_url.setter
    def public_url(self, value: str | None) -> None:
        self._public_url = value

    async def stop(self) -> None:
        """Cancel deliveries in flight and stop the server."""
        self.release()  # answer what is held, so the server can close
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None
        await super().stop()

    # ------------------------------------------------------------------ calls and faults

    def hang(self) -> None:
        """Hold every request unanswered until :meth:`release`: a provider that accepted the
        connection and never answers."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    @web.middleware
    async def _hold(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not self._released.is_set():
            await request.read()  # the body is in hand before the caller gives up
            self.held += 1
            await self._released.wait()
        return await handler(request)

    def fail_next(self, method: str, status: int = 500, times: int = 1, *, error: str | None = None) -> None:
        """Make the next ``times`` calls of ``method`` fail with HTTP ``status`` (``error``: the
        provider's error name; a per-status default otherwise). ``method="*"`` matches any call."""
        self._faults.add(method, (status, error), times)

    def calls_of(self, method: str) -> list[Call]:
        return calls_of(self.calls, method)

    def _gate(self, method: str, params: JSON) -> tuple[Call, web.Response | None]:
        """Log the call; return the response to send instead of answering it (down / fault)."""
        call = Call(method, params, time.time())
        self.calls.append(call)
        if self.down:
            call.status = 503
            return call, web.Response(status=503, text="503 Service Temporarily Unavailable")
        fault = self._faults.take(method.lower(), "*")
        if fault is None:
            return call, None
        status, error = fault
        call.status = status
        return call, self._fault_response(status, error)

    def _fault_response(self, status: int, error: str | None) -> web.Response:
        raise NotImplementedError

    # ------------------------------------------------------------------ webhooks

    def _default_url(self) -> str | None:
        """Where webhooks without their own URL go (evaluated at each attempt)."""
        return None

    def _send(self, item: Outgoing) -> None:
        """Deliver ``item`` in the background (call from the event loop)."""
        task = asyncio.get_running_loop().create_task(self._deliver(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, item: Outgoing) -> bool:
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            url = item.url or self._default_url()
            if url is None:
                break
            status, error = None, None
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession()
            try:
                async with self._session.post(
                    url, data=item.body, headers=item.headers,
                    timeout=aiohttp.ClientTimeout(total=self.delivery_timeout),
                ) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            delivery = Delivery(url, item.body, dict(item.headers), attempt, status, error, time.time())
            self.deliveries.append(delivery)
            if delivery.ok:
                return True
            log.info("webhook to %s failed (attempt %d): %s", url, attempt, error or status)
        self.pending.append(item)
        return False

    async def deliver_pending(self) -> int:
        """Run a full retry cycle for every undelivered webhook; return how many got through."""
        items, self.pending = self.pending, []
        results = await asyncio.gather(*(self._deliver(item) for item in items))
        return sum(results)

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every webhook in flight is delivered or given up (moved to ``pending``)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)


# ---------------------------------------------------------------------- HTML helpers

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "h1{font-size:1.25rem}.sandbox{color:#a60;font-size:.8rem;text-transform:uppercase}"
    "table{border-collapse:collapse;width:100%;margin:1rem 0}"
    "td{padding:.35rem .4rem;border-bottom:1px solid #eee;vertical-align:top}"
    "td:first-child{color:#666;width:38%}.amount{font-size:1.6rem;font-weight:600}"
    ".note{padding:.6rem .8rem;border-radius:.4rem;background:#f2f2f2;margin:.8rem 0}"
    ".ok{background:#e4f5e4}.warn{background:#fff2dc}.err{background:#fde6e6}"
    ".mono{font-family:ui-monospace,monospace;word-break:break-all}"
    "form{display:inline-block;margin:.3rem .3rem 0 0}button{padding:.5rem 1rem;font-size:1rem;cursor:pointer}"
    "select,input{font-size:1rem;padding:.4rem}"
)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


#: The pay pages' wording in Russian, keyed by the English text (``{name}`` placeholders).
RU: dict[str, str] = {
    "Sandbox — no real money moves": "Песочница — настоящие деньги не двигаются",
    "Invoice not found": "Счёт не найден",
    "Payment not found": "Платёж не найден",
    "Crypto Pay invoice #{id}": "Счёт Crypto Pay #{id}",
    "Merchant": "Продавец",
    "Invoice": "Счёт",
    "Description": "Описание",
    "Status": "Статус",
    "active": "ожидает оплаты",
    "paid": "оплачен",
    "expired": "истёк",
    "Expires": "Действует до",
    "Pay with": "Оплатить в",
    "Pay": "Оплатить",
    "Paid {amount} at {time}": "Оплачено {amount} · {time}",
    "Continue": "Продолжить",
    "This invoice has expired and can no longer be paid.": "Срок счёта истёк, оплатить его уже нельзя.",
    "KryptoExpress payment: {currency}": "Платёж KryptoExpress: {currency}",
    "Payment": "Платёж",
    "Price": "Цена",
    "Send to": "Адрес",
    "Received": "Получено",
    "Paid.": "Оплачено.",
    "Paid, overpaid by {amount}.": "Оплачено, переплата {amount}.",
    "Partially paid: {amount} still due.": "Оплачено частично: осталось {amount}.",
    "Expired: a transaction now would arrive late.": "Срок истёк: перевод сейчас придёт с опозданием.",
    "Pay exact": "Оплатить точно",
    "Pay less": "Оплатить меньше",
    "Pay more": "Оплатить больше",
    "Other amount": "Другая сумма",
    "Send": "Отправить",
}


def page_lang(request: web.Request) -> str:
    """``"ru"`` or ``"en"``: ``?lang=`` if given, else the browser's first ``Accept-Language``."""
    asked = request.query.get("lang") or request.headers.get("Accept-Language", "")
    return "ru" if asked.strip().lower().startswith("ru") else "en"


def words(lang: str, text: str, **values: object) -> str:
    """``text`` in ``lang`` with its ``{placeholders}`` filled."""
    return (RU.get(text, text) if lang == "ru" else text).format(**values)


def number(amount: object, lang: str) -> str:
    """A plain decimal string as the reader writes it (``12,5`` in Russian)."""
    return str(amount).replace(".", ",") if lang == "ru" else str(amount)


def moment(when: datetime, lang: str) -> str:
    """A UTC time: ISO 8601 in English (as the services' API), ``03.12.2026 17:05 UTC`` in Russian."""
    return when.astimezone(UTC).strftime("%d.%m.%Y %H:%M UTC") if lang == "ru" else when.isoformat()


def with_lang(path: str, lang: str) -> str:
    """``path`` keeping a Russian page Russian after a form post."""
    return f"{path}?lang=ru" if lang == "ru" else path


def esc(value: object) -> str:
    """HTML-escape ``value`` (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def page(title: str, *parts: str, status: int = 200, lang: str = "en") -> web.Response:
    """A complete, self-contained HTML page; ``parts`` are HTML fragments built with these helpers."""
    body = (
        f"<!doctype html><html lang={esc(lang)}><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<div class=sandbox>{esc(words(lang, 'Sandbox — no real money moves'))}</div><h1>{esc(title)}</h1>"
        + "".join(parts) + "</body></html>"
    )
    return web.Response(text=body, content_type="text/html", status=status, headers=_HEADERS)


def note(text: str, kind: str = "") -> str:
    return f"<div class='note {esc(kind)}'>{esc(text)}</div>"


def table(rows: Iterable[tuple[str, object]], *, mono: Iterable[str] = ()) -> str:
    """Label/value rows (both escaped); labels in ``mono`` get a monospace value."""
    mono = set(mono)
    cells = "".join(
        f"<tr><td>{esc(label)}</td><td{' class=mono' if label in mono else ''}>{esc(value)}</td></tr>"
        for label, value in rows)
    return f"<table>{cells}</table>"


def button(action: str, label: str, fields: Mapping[str, str] | None = None) -> str:
    """A one-button form that POSTs ``fields`` to ``action``."""
    hidden = "".join(f"<input type=hidden name='{esc(k)}' value='{esc(v)}'>" for k, v in (fields or {}).items())
    return f"<form method=post action='{esc(action)}'>{hidden}<button type=submit>{esc(label)}</button></form>"
