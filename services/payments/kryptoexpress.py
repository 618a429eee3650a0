"""KryptoExpress client: on-chain payments of a USD price in one crypto currency (USDT TRC20 by default).

Wire format (github.com/kryptoexpress/kryptoexpress ``api-docs.md``, mirrored by sandbox/kryptoexpress.py):
``POST {api_url}/payment`` with ``X-Api-Key`` creates a PAYMENT; ``GET {api_url}/payment?hash=`` (no key)
reads one back. Amounts are JSON numbers: we send them as exact decimal literals and parse replies with
``parse_float=Decimal``, so no float ever holds money. There is no batch read, so `fetch` runs one request
per hash, ``CONCURRENCY`` at a time.

Payments: the real record has no transaction list, only ``isPaid`` (true once the transactions reach
``cryptoAmount``); the stand-in also reports ``receivedCryptoAmount``, a running total. So each fetch reports
one *cumulative* PaymentReport (id ``kryptoexpress:{hash}``, amount = total received so far) and
services.orders records only the increment over what the database already holds: repeats are duplicates,
a top-up is one new payment, and a restart loses nothing.

States: ``isPaid`` -> "paid"; money received but short -> "partial" (even past expiry: money arrived, a
person should look); past ``expireDatetime`` with nothing received -> "expired"; else "active".

Callbacks: ``X-Signature`` = hex HMAC-SHA-512(callback secret, compact JSON of the body). We send our secret
with every payment, verify the raw body, and also accept the body re-serialised compactly (number texts
kept as received, no floats), as the API docs' own example does. With no secret configured every callback
is rejected; polling still confirms payments.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
from aiogram.utils.i18n import gettext as _

from config.settings import Settings
from services import safe_json
from services.money import plain
from services.orders import PaymentReport
from services.payments.base import (
    InvoiceDraft,
    InvoiceRequest,
    Method,
    ProviderError,
    RemoteInvoice,
    WebhookRejected,
    Wiring,
)
from services.payments.wire import HttpApi, finite_decimal, header, jsonable

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature"
#: GET /payment requests in flight at once during `fetch`.
CONCURRENCY = 10
#: A callback is one flat PAYMENT record (about 600 bytes); larger bodies are never re-serialised.
MAX_CALLBACK_BYTES = 8 * 1024
#: Nesting allowed in a callback body (the record is flat; a little room for additions).
CALLBACK_DEPTH = 4
_NOT_ASCII = re.compile(r"[^\x00-\x7e]")


class _Number(str):
    """A JSON number kept as its exact source text (for re-serialising callbacks)."""


def _dumps(value: Any, *, ascii_only: bool) -> str:
    """Compact JSON (``separators=(",", ":")``) that writes Decimals and `_Number`s as exact literals."""
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a JSON number: {value}")
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=ascii_only)}:{_dumps(v, ascii_only=ascii_only)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(v, ascii_only=ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def _ascii(compact: str) -> str:
    """JSON written with ``ensure_ascii=False`` as ``ensure_ascii=True`` would write it (raw non-ASCII can only
    stand inside strings, so escaping it there is the whole difference)."""
    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"
    return _NOT_ASCII.sub(escape, compact)


def _callback_record(body: bytes) -> dict[str, Any] | None:
    """The cheap gate before canonicalising: a small JSON object with a string ``hash``, parsed keeping number
    texts exact; None for anything else."""
    if len(body) > MAX_CALLBACK_BYTES or not body.lstrip().startswith(b"{") or b'"hash"' not in body:
        return None
    try:
        record = safe_json.loads(body, max_depth=CALLBACK_DEPTH, parse_float=_Number, parse_int=_Number)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("hash"), str) else None


def _plain(amount: Decimal) -> str:
    text = plain(amount)
    return "0" if text == "-0" else text


def _from_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _raw(record: Any) -> Any:
    """``record`` for a JSON column, every Decimal written normalised (``1.50`` -> ``"1.5"``)."""
    return jsonable(record, decimal=_plain)


class KryptoExpressProvider:
    """`PaymentProvider` for KryptoExpress. The API key and callback secret never appear in logs or errors."""

    name = "kryptoexpress"
    pollable = True
    minimum_cents = 100  # KryptoExpress refuses payments under $1
    webhook_max_bytes = 8 * 1024  # one flat payment record (~600 bytes)
    editable_messages = True
    one_live_invoice = False  # each payment expires by itself
    telegram_payments = False
    #: Assets offered at checkout, each its own method ("kx-<asset>").
    ASSETS = ("USDT_TRC20", "BTC")

    def __init__(
        self, api_key: str, api_url: str, callback_secret: str | None, *, callback_url: str | None = None,
        default_asset: str = "USDT_TRC20", client: httpx.AsyncClient | None = None, timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("a KryptoExpress API key is required")
        self._api_key = api_key
        self._secret = callback_secret.encode() if callback_secret else None
        self.api_url = api_url.rstrip("/")
        self.callback_url = callback_url
        self.default_asset = default_asset
        self._http = HttpApi(client, timeout, clock)

    @classmethod
    def title(cls) -> str:
        return _("KryptoExpress")

    @classmethod
    def from_settings(cls, settings: Settings, wiring: Wiring) -> KryptoExpressProvider | None:
        if settings.krypto_express_api_key is None:
            return None
        callback_secret = settings.krypto_express_callback_secret
        return cls(settings.krypto_express_api_key.get_secret_value(), settings.krypto_express_api_url,
                   callback_secret.get_secret_value() if callback_secret is not None else None,
                   callback_url=wiring.public_url(f"/webhooks/{cls.name}"))

    def methods(self) -> list[Method]:
        return [Method(f"kx-{asset}", self.name, asset) for asset in self.ASSETS]

    def method_label(self, method: Method, amount_cents: int) -> str:
        return _("🔗 {asset} on-chain").format(asset=(method.asset or "").replace("_", " "))

    def __repr__(self) -> str:
        return f"KryptoExpressProvider(api_url={self.api_url!r}, default_asset={self.default_asset!r})"

    # ------------------------------------------------------------------ HTTP

    async def _request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                       body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON or None); transport failures and 5xx/429 raise a retryable ProviderError."""
        what = f"KryptoExpress {method} {path}"
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            headers |= {"Content-Type": "application/json", "X-Api-Key": self._api_key}
            content = _dumps(body, ascii_only=True).encode()
        try:
            resp = await self._http.client.request(method, f"{self.api_url}{path}", params=params, content=content,
                                              headers=headers, timeout=self._http.timeout)
        except httpx.TimeoutException as exc:
            raise ProviderError(f"{what}: timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"{what}: {type(exc).__name__}") from None
        try:
            data = json.loads(resp.content, parse_float=Decimal)
        except ValueError:
            data = None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise ProviderError(f"{what}: HTTP {resp.status_code} {self._error_name(data)}".rstrip())
        return resp.status_code, data

    @staticmethod
    def _error_name(data: Any) -> str:
        if isinstance(data, dict):
            parts = [str(data[k]) for k in ("error", "message") if data.get(k)]
            return ": ".join(parts)
        return ""

    def _refuse(self, what: str, status: int, data: Any) -> ProviderError:
        return ProviderError(f"KryptoExpress {what}: HTTP {status} {self._error_name(data)}".rstrip(),
                             retryable=False)

    # ------------------------------------------------------------------ PaymentProvider

    async def create_invoice(self, request: InvoiceRequest) -> InvoiceDraft:
        if request.amount_cents <= 0:
            raise ValueError("an invoice must cost something")
        crypto = request.asset or self.default_asset
        body: dict[str, Any] = {
            "paymentType": "PAYMENT", "fiatCurrency": "USD",
            "fiatAmount": (Decimal(request.amount_cents) / 100).quantize(Decimal("0.01")),
            "cryptoCurrency": crypto,
        }
        if self.callback_url:
            body["callbackUrl"] = self.callback_url
        if self._secret is not None:
            body["callbackSecret"] = self._secret.decode()
        status, data = await self._request("POST", "/payment", body=body)
        if not 200 <= status < 300:
            raise self._refuse("POST /payment", status, data)
        if not isinstance(data, dict) or not data.get("hash"):
            raise ProviderError("KryptoExpress POST /payment: reply without a payment", retryable=False)
        amount = finite_decimal(data.get("cryptoAmount"))
        expires_at = _from_ms(data.get("expireDatetime"))
        if amount is None or expires_at is None:
            raise ProviderError("KryptoExpress POST /payment: reply without cryptoAmount/expireDatetime",
                                retryable=False)
        pay_url = next((data[k] for k in ("paymentUrl", "payUrl", "url") if isinstance(data.get(k), str)), None)
        return InvoiceDraft(external_id=str(data["hash"]), amount=amount,
                            asset=str(data.get("cryptoCurrency") or crypto), expires_at=expires_at,
                            pay_url=pay_url, address=data.get("address"), raw=_raw(data))

    async def fetch(self, external_ids: Sequence[str]) -> list[RemoteInvoice]:
        """One GET per hash, ``CONCURRENCY`` at a time; unknown hashes are absent. Any transport failure
        or 5xx fails the whole call (retryable), so a partial answer is never mistaken for the truth."""
        hashes = list(dict.fromkeys(h for h in (str(x).strip() for x in external_ids) if h))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(pay_hash: str) -> RemoteInvoice | None:
            async with gate:
                status, data = await self._request("GET", "/payment", params={"hash": pay_hash})
            if status in (400, 404):  # not a payment the provider knows (400: not even a valid hash)
                if status == 400:
                    log.warning("KryptoExpress rejected hash %r: %s", pay_hash, self._error_name(data))
                return None
            if not 200 <= status < 300:
                raise self._refuse("GET /payment", status, data)
            if not isinstance(data, dict) or data.get("hash") != pay_hash:
                raise ProviderError("KryptoExpress GET /payment: reply for another payment", retryable=False)
            return self._remote(pay_hash, data)

        results = await asyncio.gather(*(one(h) for h in hashes), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            retryable = [e for e in errors if isinstance(e, ProviderError) and e.retryable]
            first = retryable[0] if retryable else errors[0]
            if len(errors) > 1:
                log.warning("KryptoExpress fetch: %d of %d requests failed", len(errors), len(hashes))
            raise first
        return [r for r in results if isinstance(r, RemoteInvoice)]

    def _remote(self, pay_hash: str, record: dict[str, Any]) -> RemoteInvoice:
        due = finite_decimal(record.get("cryptoAmount")) or Decimal(0)
        paid = record.get("isPaid") is True
        received = finite_decimal(record.get("receivedCryptoAmount"))
        if received is None:  # the documented record: nothing is known until it is paid in full
            received = due if paid else Decimal(0)
        elif paid:  # the provider says paid in full (it may tolerate a dust shortfall): never report less
            received = max(received, due)
        now_ms = int(self._http.now().timestamp() * 1000)
        expire_ms = record.get("expireDatetime")
        expired = isinstance(expire_ms, int) and not isinstance(expire_ms, bool) and now_ms >= expire_ms
        if paid:
            state = "paid"
        elif received > 0:
            state = "partial"
        elif expired:
            state = "expired"
        else:
            state = "active"
        return RemoteInvoice(external_id=pay_hash, state=state, payments=self._reports(pay_hash, record, received),
                             raw=_raw(record))

    def _reports(self, pay_hash: str, record: dict[str, Any], received: Decimal) -> tuple[PaymentReport, ...]:
        """One cumulative report of everything received so far (services.orders records the increment)."""
        if received <= 0:
            return ()
        asset = str(record.get("cryptoCurrency") or self.default_asset)
        due, fiat = finite_decimal(record.get("cryptoAmount")), finite_decimal(record.get("fiatAmount"))
        usd_rate = fiat / due if due and fiat is not None and record.get("fiatCurrency") == "USD" else None
        cents = None
        if usd_rate is not None:
            cents = int((received * usd_rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        paid_at = _from_ms(record.get("paidAt")) if record.get("isPaid") is True else None
        return (PaymentReport(
            provider=self.name, invoice_id=pay_hash, payment_id=f"kryptoexpress:{pay_hash}", amount=received,
            asset=asset, paid_at=paid_at, usd_cents=cents, raw={"record": _raw(record)}, cumulative=True),)

    def webhook_invoice_ids(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        """Authenticate a callback (raw body, or its compact re-serialisation) and name its payment.

        The raw body is checked first (one HMAC, no parsing). Only a body that passes a cheap gate (at most
        `MAX_CALLBACK_BYTES`, a JSON object at most `CALLBACK_DEPTH` deep with a string ``hash``) is parsed
        and re-serialised, once, to try the compact form; anything else is refused unparsed."""
        if self._secret is None:
            raise WebhookRejected("no KryptoExpress callback secret configured; callbacks are not accepted")
        signature = (header(headers, SIGNATURE_HEADER) or "").strip().lower()
        if not signature:
            raise WebhookRejected("missing X-Signature")
        if self._signed(body, signature):
            try:
                record = safe_json.loads(body, max_depth=CALLBACK_DEPTH, parse_float=Decimal)
            except ValueError:
                raise WebhookRejected("body is not JSON") from None
        else:
            record = _callback_record(body)
            if record is None:
                raise WebhookRejected("bad X-Signature")
            compact = _dumps(record, ascii_only=False)
            if not any(self._signed(form.encode(), signature) for form in dict.fromkeys((compact, _ascii(compact)))):
                raise WebhookRejected("bad X-Signature")
        if not isinstance(record, dict) or not isinstance(record.get("hash"), str) or not record["hash"]:
            raise WebhookRejected("callback without a payment hash")
        return [str(record["hash"])]

    def _signed(self, message: bytes, signature: str) -> bool:
        assert self._secret is not None
        expected = hmac.new(self._secret, message, hashlib.sha512).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace"))

    async def present(self, invoice_id: str, request: InvoiceRequest, amount: Decimal) -> None:
        return None  # the bot shows the pay link (and address)

    async def close(self) -> None:
        await self._http.close()


__all__ = ["CONCURRENCY", "MAX_CALLBACK_BYTES", "SIGNATURE_HEADER", "KryptoExpressProvider"]
