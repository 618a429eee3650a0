"""Local stand-in for the KryptoExpress API (``https://kryptoexpress.pro/api``).

Documented wire format (the public API guide, github.com/kryptoexpress/kryptoexpress ``api-docs.md``,
and the official TypeScript/PHP SDKs built from its OpenAPI file):

- Header ``X-Api-Key`` on protected endpoints; JSON bodies.
- ``POST /payment`` ``{"paymentType": "PAYMENT"|"DEPOSIT", "fiatCurrency": "USD", "fiatAmount": 100,
  "cryptoCurrency": "BTC", "callbackUrl": ..., "callbackSecret": ...}`` (``fiatAmount`` only for
  PAYMENT; stablecoins such as ``USDT_TRC20`` only for PAYMENT) returns the payment record:
  ``id, paymentType, fiatCurrency, fiatAmount, cryptoAmount, userId, cryptoCurrency, expireDatetime,
  createDatetime, paidAt, address, isPaid, isWithdrawn, hash, callbackUrl``. Amounts are JSON numbers,
  datetimes epoch milliseconds. A PAYMENT may be paid in several transactions (aggregated).
- ``GET /payment?hash=...`` (no authentication) returns the same record.
- Also ``GET /wallet`` (protected), ``GET /cryptocurrency``, ``/cryptocurrency/stable``, ``/currency``,
  ``/cryptocurrency/price?cryptoCurrency=BTC,ETH&fiatCurrency=USD``.
- Callbacks POST the payment record to ``callbackUrl``; when a ``callbackSecret`` was given the header
  ``X-Signature`` = hex HMAC-SHA-512(secret, compact JSON of the body). Five attempts, 0/120/240/480/960 s.

Not documented publicly, so designed here (sandbox guesses):

- Error bodies ``{"error": "CODE", "message": "text"}`` with 400 (VALIDATION_ERROR), 401
  (UNAUTHORIZED), 404 (NOT_FOUND), 500 (INTERNAL_ERROR); the fields the SDKs read.
- ``receivedCryptoAmount`` (total received so far) is a sandbox extension so partial and over-payments
  can be told apart; the real record may not carry it. ``isPaid`` turns true once the total reaches
  ``cryptoAmount``; every transaction sends a callback.
- Minimum 1 USD-equivalent; crypto amounts rounded up to the currency's decimals from fixed rates
  (:data:`USD_PRICES`, :data:`FIAT_USD`); payments expire after 2 hours but late transactions are still
  credited (on-chain money cannot be refused), so "paid late" can be exercised.
- The constructor's ``callback_url`` / ``callback_secret`` stand in when a request omits them.
- Callback bodies are exactly ``json.dumps(record, separators=(",", ":"))``, so checking the raw body
  and re-compacting the parsed body (as the docs' Python example does) both verify.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from sandbox.pages import (
    JSON,
    Delivery,
    Outgoing,
    PayError,
    ProviderStandIn,
    button,
    esc,
    moment,
    note,
    number,
    page,
    page_lang,
    plain_decimal,
    table,
    with_lang,
    words,
)

#: Fixed sandbox price of one unit in USD.
USD_PRICES: dict[str, Decimal] = {
    "BTC": Decimal("65000"), "LTC": Decimal("80"), "ETH": Decimal("3000"), "SOL": Decimal("150"),
    "BNB": Decimal("600"), "DOGE": Decimal("0.15"), "TRX": Decimal("0.12"),
    **dict.fromkeys(("USDT_TRC20", "USDT_ERC20", "USDT_BEP20", "USDT_SOL", "USDC_ERC20", "USDC_BEP20",
                     "USDC_SOL"), Decimal("1")),
}
STABLECOINS = frozenset(c for c in USD_PRICES if c.startswith(("USDT_", "USDC_")))
#: Decimal places of each currency.
DECIMALS: dict[str, int] = {c: 6 if c in STABLECOINS or c == "TRX" else 8 for c in USD_PRICES}
#: USD value of one unit of each supported fiat currency.
FIAT_USD: dict[str, Decimal] = {"USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27"),
                                "JPY": Decimal("0.0067")}
MIN_USD = Decimal("1")
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class ApiError(Exception):
    """An error reply ``{"error": code, "message": message}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> web.Response:
        return web.json_response({"error": self.code, "message": self.message}, status=self.status)


def invalid(message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message)


def compact(body: JSON) -> bytes:
    """The callback body bytes: compact JSON, as the signature is defined over."""
    return json.dumps(body, separators=(",", ":")).encode()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _num(amount: Decimal | None) -> float | None:
    """Decimal -> JSON number at the wire edge only (the repr of the float round-trips exactly)."""
    return None if amount is None else float(amount)


def _base58(data: bytes) -> str:
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = _BASE58[r] + out
    return out


def sandbox_address(currency: str, seed: str) -> str:
    """A deterministic, plausible-looking (not valid) deposit address for ``currency``."""
    digest = hashlib.sha256(f"{currency}:{seed}".encode()).digest()
    if currency in ("BTC", "LTC"):
        return ("bc1q" if currency == "BTC" else "ltc1q") + "".join(_BECH32[b % 32] for b in digest[:38])
    if currency in ("ETH", "BNB") or currency.endswith(("_ERC20", "_BEP20")):
        return "0x" + digest.hex()[:40]
    if currency in ("TRX", "DOGE") or currency.endswith("_TRC20"):
        return ("D" if currency == "DOGE" else "T") + _base58(digest + digest)[:33]
    return _base58(digest)  # Solana: base58 of 32 bytes


@dataclass
class Payment:
    """One payment (internal state; :meth:`to_json` is the wire record)."""

    id: int
    hash: str
    payment_type: str
    fiat_currency: str
    fiat_amount: Decimal | None
    crypto_amount: Decimal | None
    crypto_currency: str
    address: str
    user_id: str
    create_ms: int
    expire_ms: int
    callback_url: str | None
    callback_secret: str | None = field(default=None, repr=False)
    received: Decimal = Decimal(0)
    is_paid: bool = False
    paid_at_ms: int | None = None
    transactions: list[JSON] = field(default_factory=list)

    def remaining(self) -> Decimal:
        return max(Decimal(0), (self.crypto_amount or Decimal(0)) - self.received)

    def to_json(self) -> JSON:
        return {
            "id": self.id, "paymentType": self.payment_type, "fiatCurrency": self.fiat_currency,
            "fiatAmount": _num(self.fiat_amount), "cryptoAmount": _num(self.crypto_amount),
            "userId": self.user_id, "cryptoCurrency": self.crypto_currency,
            "expireDatetime": self.expire_ms, "createDatetime": self.create_ms, "paidAt": self.paid_at_ms,
            "address": self.address, "isPaid": self.is_paid, "isWithdrawn": False, "hash": self.hash,
            "callbackUrl": self.callback_url, "receivedCryptoAmount": _num(self.received),
        }


class KryptoExpressStandIn(ProviderStandIn):
    """In-memory KryptoExpress account with an aiohttp front end. See the module docstring.

    ``api_url`` (``{base}/api``) is what ``KRYPTO_EXPRESS_API_URL`` should point at. Driving API:
    :meth:`pay`, :meth:`amounts`, :meth:`expire`, ``payments`` (hash -> :class:`Payment`), ``calls``
    (method names like ``"POST /payment"``), ``callback_deliveries``, ``pending_callbacks`` +
    :meth:`deliver_pending`, :meth:`drain`, ``fail_next`` and ``down``.
    """

    def __init__(
        self, api_key: str = "sandbox-kryptoexpress-key", callback_secret: str | None = None,
        callback_url: str | None = None, *, public_url: str | None = None,
        clock: Callable[[], datetime] | None = None, payment_ttl: timedelta = timedelta(hours=2),
        callback_retry_delays: Sequence[float] = (0.05, 0.1, 0.2, 0.4),
    ) -> None:
        super().__init__(public_url=public_url, retry_delays=callback_retry_delays)
        self.api_key = api_key
        self.callback_secret = callback_secret
        self.callback_url = callback_url
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.payment_ttl = payment_ttl
        self.user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"kryptoexpress-sandbox:{api_key}"))
        self.payments: dict[str, Payment] = {}
        self._ids = itertools.count(1001)
        self.routes: dict[tuple[str, str], tuple[Callable[[JSON], Any], bool]] = {
            ("POST", "/payment"): (self._create_payment, True),
            ("GET", "/payment"): (self._get_payment, False),
            ("GET", "/wallet"): (self._wallet, True),
            ("GET", "/currency"): (lambda p: list(FIAT_USD), False),
            ("GET", "/cryptocurrency"): (lambda p: [c for c in USD_PRICES if c not in STABLECOINS], False),
            ("GET", "/cryptocurrency/all"): (lambda p: list(USD_PRICES), False),
            ("GET", "/cryptocurrency/stable"): (lambda p: sorted(STABLECOINS), False),
            ("GET", "/cryptocurrency/price"): (self._prices, False),
        }
        self.app.router.add_route("*", "/api/{path:.*}", self._handle)
        self.app.router.add_get("/pay/{hash}", self._page)
        self.app.router.add_post("/pay/{hash}", self._page_pay)

    @property
    def api_url(self) -> str:
        if self.base_url is None:
            raise RuntimeError("not started")
        return f"{self.base_url}/api"

    @property
    def callback_deliveries(self) -> list[Delivery]:
        return self.deliveries

    @property
    def pending_callbacks(self) -> list[Outgoing]:
        return self.pending

    @staticmethod
    def sign(secret: str, body: JSON) -> str:
        """``X-Signature`` for callback ``body``: hex HMAC-SHA-512(secret, compact JSON)."""
        return hmac.new(secret.encode(), compact(body), hashlib.sha512).hexdigest()

    @staticmethod
    def price(crypto: str, fiat: str = "USD") -> Decimal:
        """Fixed sandbox price of one ``crypto`` in ``fiat`` (8 decimal places)."""
        return (USD_PRICES[crypto] / FIAT_USD[fiat]).quantize(Decimal("1e-8"), rounding=ROUND_HALF_UP)

    # ------------------------------------------------------------------ HTTP API

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"].strip("/")
        params: JSON = dict(request.query)
        bad_body: ApiError | None = None
        if request.method == "POST":
            try:
                body = json.loads(await request.read() or b"null", parse_float=Decimal)
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
            else:
                bad_body = invalid("Request body must be a JSON object")
        call, early = self._gate(f"{request.method} {path}", params)
        if early is not None:
            return early
        try:
            if bad_body is not None:
                raise bad_body
            route = self.routes.get((request.method, path))
            if route is None:
                raise ApiError(404, "NOT_FOUND", f"No route {request.method} /api{path}")
            handler, protected = route
            if protected and not hmac.compare_digest(request.headers.get("X-Api-Key", ""), self.api_key):
                raise ApiError(401, "UNAUTHORIZED", "Invalid or missing X-Api-Key")
            result = handler(params)
        except ApiError as exc:
            call.status = exc.status
            return exc.response()
        return web.json_response(result, dumps=lambda obj: json.dumps(obj, separators=(",", ":")))

    def _fault_response(self, status: int, error: str | None) -> web.Response:
        code = error or {401: "UNAUTHORIZED", 404: "NOT_FOUND", 429: "TOO_MANY_REQUESTS"}.get(
            status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")
        return ApiError(status, code, f"Injected failure {status}").response()

    def _create_payment(self, p: JSON) -> JSON:
        payment_type = p.get("paymentType")
        if payment_type not in ("PAYMENT", "DEPOSIT"):
            raise invalid("paymentType must be PAYMENT or DEPOSIT")
        fiat, crypto = str(p.get("fiatCurrency")), str(p.get("cryptoCurrency"))
        if fiat not in FIAT_USD:
            raise invalid(f"Unsupported fiatCurrency: {fiat}")
        if crypto not in USD_PRICES:
            raise invalid(f"Unsupported cryptoCurrency: {crypto}")
        callback_url = p.get("callbackUrl") or self.callback_url
        if not isinstance(callback_url, str) or not callback_url.startswith(("http://", "https://")):
            raise invalid("callbackUrl is required and must be an http(s) URL")
        secret = p.get("callbackSecret") or self.callback_secret
        fiat_amount = crypto_amount = None
        if payment_type == "PAYMENT":
            fiat_amount = self._fiat_amount(p.get("fiatAmount"))
            if fiat_amount * FIAT_USD[fiat] < MIN_USD:
                raise invalid(f"Minimum payment amount is the equivalent of {MIN_USD} USD")
            crypto_amount = self._to_crypto(fiat_amount, fiat, crypto)
        elif p.get("fiatAmount") is not None:
            raise invalid("fiatAmount must not be set for DEPOSIT")
        elif crypto in STABLECOINS:
            raise invalid(f"{crypto} supports only PAYMENT")
        now = self.clock()
        pay_hash = secrets.token_hex(32)
        payment = Payment(
            id=next(self._ids), hash=pay_hash, payment_type=payment_type, fiat_currency=fiat,
            fiat_amount=fiat_amount, crypto_amount=crypto_amount, crypto_currency=crypto,
            address=sandbox_address(crypto, pay_hash), user_id=self.user_id, create_ms=_ms(now),
            expire_ms=_ms(now + self.payment_ttl), callback_url=callback_url,
            callback_secret=str(secret) if secret else None)
        self.payments[pay_hash] = payment
        return payment.to_json()

    @staticmethod
    def _fiat_amount(value: Any) -> Decimal:
        if value is None or isinstance(value, bool):
            raise invalid("fiatAmount is required for PAYMENT")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise invalid("fiatAmount must be a number") from None
        if not amount.is_finite() or amount <= 0:
            raise invalid("fiatAmount must be greater than zero")
        return amount

    @staticmethod
    def _to_crypto(fiat_amount: Decimal, fiat: str, crypto: str) -> Decimal:
        amount = fiat_amount * FIAT_USD[fiat] / USD_PRICES[crypto]
        return amount.quantize(Decimal(1).scaleb(-DECIMALS[crypto]), rounding=ROUND_UP)

    def _get_payment(self, p: JSON) -> JSON:
        payment = self.payments.get(str(p.get("hash", "")))
        if payment is None:
            raise ApiError(404, "NOT_FOUND", "Payment not found")
        return payment.to_json()

    def _wallet(self, p: JSON) -> JSON:
        totals = dict.fromkeys(USD_PRICES, Decimal(0))
        for payment in self.payments.values():
            totals[payment.crypto_currency] += payment.received
        return {c: _num(v) for c, v in totals.items()}

    def _prices(self, p: JSON) -> list[JSON]:
        fiat = p.get("fiatCurrency") or "USD"
        cryptos = [c.strip() for c in str(p.get("cryptoCurrency") or ",".join(USD_PRICES)).split(",") if c.strip()]
        if fiat not in FIAT_USD or any(c not in USD_PRICES for c in cryptos):
            raise invalid("Unsupported currency")
        return [{"cryptoCurrency": c, "fiatCurrency": fiat, "price": _num(self.price(c, fiat))} for c in cryptos]

    # ------------------------------------------------------------------ driving API

    def find(self, pay_hash: str) -> Payment:
        payment = self.payments.get(pay_hash)
        if payment is None:
            raise PayError(f"no payment {pay_hash!r}", 404)
        return payment

    def is_expired(self, payment: Payment) -> bool:
        return not payment.is_paid and _ms(self.clock()) >= payment.expire_ms

    def amounts(self, pay_hash: str) -> dict[str, Decimal]:
        """What the pay page's buttons send: ``exact`` (the rest), ``less`` (half the rest) and
        ``more`` (the rest plus 10 % of the total). ``exact``/``less`` are absent once nothing is due."""
        payment = self.find(pay_hash)
        step = Decimal(1).scaleb(-DECIMALS[payment.crypto_currency])
        due, total = payment.remaining(), payment.crypto_amount or Decimal(0)
        out = {"more": (due + total / 10).quantize(step, rounding=ROUND_UP)}
        if due > 0:
            out = {"exact": due, "less": (due / 2).quantize(step, rounding=ROUND_UP), **out}
        return out

    def pay(self, pay_hash: str, amount: Decimal | str | int | None = None, *, txid: str | None = None) -> JSON:
        """A transaction of ``amount`` (default: exactly what is still due) reaches the payment's
        address. Sends the signed callback; returns the updated record. Raises :class:`PayError`."""
        payment = self.find(pay_hash)
        if amount is None:
            if payment.payment_type == "DEPOSIT" or payment.remaining() <= 0:
                raise PayError("give an amount: nothing is due")
            amount = payment.remaining()
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise PayError(f"bad amount {amount!r}", 400) from None
        if not value.is_finite() or value <= 0:
            raise PayError(f"amount must be positive, got {amount}", 400)
        if payment.payment_type == "DEPOSIT" and payment.transactions:
            raise PayError("a DEPOSIT counts only its first transaction")
        now = self.clock()
        payment.received += value
        payment.transactions.append({"txid": txid or secrets.token_hex(32), "amount": value, "time": _ms(now)})
        if payment.payment_type == "DEPOSIT":
            payment.crypto_amount = value
            fiat_value = value * USD_PRICES[payment.crypto_currency] / FIAT_USD[payment.fiat_currency]
            payment.fiat_amount = fiat_value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        if not payment.is_paid and payment.received >= (payment.crypto_amount or 0):
            payment.is_paid, payment.paid_at_ms = True, _ms(now)
        record = payment.to_json()
        headers = {"Content-Type": "application/json"}
        if payment.callback_secret:
            headers["X-Signature"] = self.sign(payment.callback_secret, record)
        self._send(Outgoing(record, compact(record), headers, payment.callback_url))
        return copy.deepcopy(record)

    def expire(self, pay_hash: str) -> JSON:
        """Move the payment's ``expireDatetime`` to now."""
        payment = self.find(pay_hash)
        payment.expire_ms = min(payment.expire_ms, _ms(self.clock()))
        return payment.to_json()

    # ------------------------------------------------------------------ pay page

    async def _page(self, request: web.Request) -> web.Response:
        lang = page_lang(request)
        try:
            return self._render(self.find(request.match_info["hash"]), lang=lang)
        except PayError as exc:
            return page(words(lang, "Payment not found"), note(str(exc), "err"), status=exc.status, lang=lang)

    async def _page_pay(self, request: web.Request) -> web.Response:
        lang = page_lang(request)
        pay_hash = request.match_info["hash"]
        form = await request.post()
        kind, amount = form.get("kind"), form.get("amount")
        try:
            if isinstance(kind, str) and kind:
                choices = self.amounts(pay_hash)
                if kind not in choices:
                    raise PayError(f"nothing to pay for {kind!r}")
                self.pay(pay_hash, choices[kind])
            else:
                typed = amount.strip() if isinstance(amount, str) else ""
                self.pay(pay_hash, (typed.replace(",", ".") if lang == "ru" else typed) or None)
        except PayError as exc:
            if exc.status == 404:
                return page(words(lang, "Payment not found"), note(str(exc), "err"), status=404, lang=lang)
            return self._render(self.find(pay_hash), error=str(exc), status=exc.status, lang=lang)
        raise web.HTTPSeeOther(with_lang(f"/pay/{pay_hash}", lang))

    def _render(self, payment: Payment, *, error: str | None = None, status: int = 200,
                lang: str = "en") -> web.Response:
        cur = payment.crypto_currency
        unit = f" {cur}"

        def crypto(amount: Decimal) -> str:
            return f"{number(plain_decimal(amount), lang)}{unit}"

        kind = "" if lang == "ru" else f" ({payment.payment_type})"
        rows: list[tuple[str, object]] = [(words(lang, "Payment"), f"#{payment.id}{kind}")]
        if payment.fiat_amount is not None:
            price = f"{number(plain_decimal(payment.fiat_amount), lang)} {payment.fiat_currency}"
            rows.append((words(lang, "Price"), price))
        send_to = words(lang, "Send to")
        rows += [(send_to, payment.address),
                 (words(lang, "Expires"), moment(datetime.fromtimestamp(payment.expire_ms // 1000, UTC), lang)),
                 (words(lang, "Received"), crypto(payment.received))]
        parts = []
        if payment.crypto_amount is not None and payment.payment_type == "PAYMENT":
            parts.append(f"<div class=amount>{esc(crypto(payment.crypto_amount))}</div>")
        parts.append(table(rows, mono=(send_to,)))
        if error:
            parts.append(note(error, "err"))
        total = payment.crypto_amount or Decimal(0)
        if payment.is_paid:
            over = payment.received - total
            parts.append(note(words(lang, "Paid, overpaid by {amount}.", amount=crypto(over)) if over > 0
                              else words(lang, "Paid."), "ok"))
        elif payment.received > 0:
            parts.append(note(words(lang, "Partially paid: {amount} still due.", amount=crypto(payment.remaining())),
                              "warn"))
        if self.is_expired(payment):
            parts.append(note(words(lang, "Expired: a transaction now would arrive late."), "warn"))
        action = with_lang(f"/pay/{payment.hash}", lang)
        if payment.payment_type == "PAYMENT":
            labels = {"exact": "Pay exact", "less": "Pay less", "more": "Pay more"}
            parts.append("<div>" + "".join(
                button(action, f"{words(lang, labels[k])} ({crypto(v)})", {"kind": k})
                for k, v in self.amounts(payment.hash).items()) + "</div>")
        if payment.payment_type == "PAYMENT" or not payment.transactions:
            parts.append(f"<form method=post action='{esc(action)}'><label>{esc(words(lang, 'Other amount'))} "
                         f"<input name=amount inputmode=decimal required></label>{esc(unit)} "
                         f"<button type=submit>{esc(words(lang, 'Send'))}</button></form>")
        return page(words(lang, "KryptoExpress payment: {currency}", currency=cur), *parts, status=status, lang=lang)


__all__ = ["DECIMALS", "FIAT_USD", "STABLECOINS", "USD_PRICES", "ApiError", "KryptoExpressStandIn",
           "PayError", "Payment", "compact", "plain_decimal", "sandbox_address"]
