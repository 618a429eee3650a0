"""Local stand-in for the Crypto Pay API (@CryptoBot, https://help.crypt.bot/crypto-pay-api).

Wire format, as documented and as the maintained clients (aiocryptopay, @gramio/crypto-pay-api) use it:

- ``{base}/api/{method}``, GET or POST; parameters in the query string, a JSON, urlencoded or
  multipart body; the app token in the ``Crypto-Pay-API-Token`` header.
- Replies ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code": N, "name": "..."}}``
  with HTTP status N. Amounts and rates are decimal strings; dates ISO 8601 (UTC, ``Z``).
- Invoices: ``currency_type`` "crypto" (``asset``) or "fiat" (``fiat`` + ``accepted_assets`` as a
  comma-separated string), status active → paid | expired; after payment ``paid_asset``,
  ``paid_amount``, ``paid_usd_rate``, ``paid_fiat_rate`` (fiat), ``fee_asset``, ``fee_amount``, ``paid_at``
  (plus the deprecated ``usd_rate``, ``fee`` and ``pay_url``).
- ``transfer`` (user_id, asset, amount, spend_id, comment, disable_send_notification) sends coins from
  the app's balance to a user's @CryptoBot wallet and answers a Transfer (``transfer_id``, ``spend_id``,
  ``user_id``, ``asset``, ``amount``, ``status`` "completed", ``completed_at``, ``comment``); a spend id
  is accepted once. ``getTransfers`` (asset, transfer_ids, spend_id, offset, count) lists them.
- Webhook: POST ``{"update_id", "update_type": "invoice_paid", "request_date", "payload": Invoice}``
  with header ``crypto-pay-api-signature`` = hex HMAC-SHA-256(key = SHA-256(token) digest, raw body).

Error names seen from the real service: UNAUTHORIZED (401), METHOD_NOT_FOUND (405), APP_ERROR (500,
e.g. ``accepted_assets`` sent as a JSON array instead of a comma-separated string; reproduced here).
The 400 names (AMOUNT_TOO_SMALL, ASSET_INVALID, ...) follow the service's naming but are guesses, and
so are the limits behind them (amount worth 0.01 to 1,000,000 USD), and the transfer errors
(INSUFFICIENT_FUNDS, SPEND_ID_ALREADY_USED, SPEND_ID_REQUIRED, USER_ID_INVALID).

Sandbox differences: invoice links open this server's pay page (``GET /pay/{hash}``); exchange rates
are fixed (:data:`USD_RATES`, :data:`FIAT_PER_USD`); webhook retries are seconds apart, not hours; the
app starts with :data:`STARTING_BALANCE_USD` worth of every asset; a transfer is recorded in
``transfers`` and passed to every ``on_transfer`` callback (the sandbox shows it in the buyer's chat).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import string
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from sandbox.pages import (
    JSON,
    Delivery,
    Outgoing,
    PayError,
    ProviderStandIn,
    esc,
    iso,
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

DEFAULT_TOKEN = "12345:SANDBOXcryptopaytoken"
#: Decimal places of each asset (amounts are rounded up to these).
ASSETS: dict[str, int] = {"USDT": 6, "TON": 9, "BTC": 8, "ETH": 8, "LTC": 8, "BNB": 8, "TRX": 6, "USDC": 6}
#: Fixed sandbox price of one unit of each asset in USD.
USD_RATES: dict[str, Decimal] = {
    "USDT": Decimal("1"), "USDC": Decimal("1"), "TON": Decimal("5"), "BTC": Decimal("65000"),
    "ETH": Decimal("3000"), "LTC": Decimal("80"), "BNB": Decimal("600"), "TRX": Decimal("0.12"),
}
#: Units of each supported fiat currency per USD (rate(asset, fiat) = USD rate x this).
FIAT_PER_USD: dict[str, Decimal] = {"USD": Decimal("1"), "EUR": Decimal("0.92")}
PAID_BUTTONS = frozenset({"viewItem", "openChannel", "openBot", "callback"})
MIN_USD, MAX_USD = Decimal("0.01"), Decimal("1000000")
MAX_EXPIRES_IN = 2_678_400  # 31 days
_HASH_ALPHABET = string.ascii_letters + string.digits
#: What the sandbox app holds of each asset before any invoice is paid (so refunds can be sent).
STARTING_BALANCE_USD = Decimal("1000")
_DEFAULT_ERRORS = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 404: "NOT_FOUND", 405: "METHOD_NOT_FOUND",
                   429: "TOO_MANY_REQUESTS", 500: "APP_ERROR"}


class ApiError(Exception):
    """An error reply: ``{"ok": false, "error": {"code": code, "name": name}}``, HTTP ``code``."""

    def __init__(self, code: int, name: str) -> None:
        super().__init__(f"{code} {name}")
        self.code, self.name = code, name

    def response(self) -> web.Response:
        return web.json_response({"ok": False, "error": {"code": self.code, "name": self.name}},
                                 status=self.code)


def bad(name: str) -> ApiError:
    return ApiError(400, name)


def _quantize(amount: Decimal, asset: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-ASSETS[asset]), rounding=ROUND_UP)


# ---------------------------------------------------------------------- parameter parsing

def _text(p: JSON, key: str, *, max_len: int | None = None, error: str | None = None) -> str | None:
    value = p.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, dict | list):
        raise ApiError(500, "APP_ERROR")  # what the real service answers to non-scalar parameters
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if max_len is not None and len(text.encode()) > max_len:
        raise bad(error or f"{key.upper()}_TOO_LONG")
    return text


def _int(p: JSON, key: str, error: str) -> int | None:
    text = _text(p, key)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise bad(error) from None


def _id_list(p: JSON, key: str, error: str) -> list[int] | None:
    """`key` as Crypto Pay takes it (comma-separated or a list); None when not given."""
    raw = p.get(key)
    if isinstance(raw, list):
        raw = ",".join(map(str, raw))
    if raw in (None, ""):
        return None
    try:
        return [int(x) for x in str(raw).split(",") if x.strip()]
    except ValueError:
        raise bad(error) from None


def _page(p: JSON) -> tuple[int, int]:
    """(offset, count) of a listing method: count 1–1000, 100 by default."""
    offset = _int(p, "offset", "OFFSET_INVALID") or 0
    count = _int(p, "count", "COUNT_INVALID")
    count = 100 if count is None else count
    if offset < 0:
        raise bad("OFFSET_INVALID")
    if not 1 <= count <= 1000:
        raise bad("COUNT_INVALID")
    return offset, count


def _bool(p: JSON, key: str, default: bool) -> bool:
    text = _text(p, key)
    return default if text is None else text.lower() in ("true", "1")


def _amount(p: JSON) -> Decimal:
    text = _text(p, "amount")
    try:
        amount = Decimal(text) if text is not None else Decimal(0)
    except InvalidOperation:
        raise bad("AMOUNT_INVALID") from None
    if not amount.is_finite() or amount <= 0:
        raise bad("AMOUNT_INVALID")
    return amount


def _assets(text: str, error: str) -> list[str]:
    assets = [a.strip().upper() for a in text.split(",") if a.strip()]
    if not assets or any(a not in ASSETS for a in assets):
        raise bad(error)
    return list(dict.fromkeys(assets))


class CryptoPayStandIn(ProviderStandIn):
    """In-memory Crypto Pay app with an aiohttp front end. See the module docstring.

    Driving API for tests and the sandbox: :meth:`pay` (what the pay page does), :meth:`expire`,
    ``invoices`` (id -> Invoice as on the wire), ``calls``, ``webhook_deliveries``,
    ``pending_webhooks`` + :meth:`deliver_pending`, :meth:`drain`, ``fail_next`` and ``down``.
    """

    def __init__(
        self, token: str = DEFAULT_TOKEN, webhook_url: str | None = None, *,
        public_url: str | None = None, app_name: str = "Sandbox Shop",
        clock: Callable[[], datetime] | None = None, fee: Decimal = Decimal("0.03"),
        webhook_retry_delays: Sequence[float] = (0.05, 0.25, 1.0),
    ) -> None:
        super().__init__(public_url=public_url, retry_delays=webhook_retry_delays)
        self.token = token
        self.webhook_url = webhook_url
        self.app_name = app_name
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.fee = fee
        self.invoices: dict[int, JSON] = {}
        self._expiry: dict[int, datetime] = {}
        self._by_hash: dict[str, int] = {}
        self._invoice_ids = itertools.count(1001)
        self._update_ids = itertools.count(1)
        self.methods: dict[str, Callable[[JSON], Any]] = {
            "getme": self._get_me, "createinvoice": self._create_invoice,
            "getinvoices": self._get_invoices, "deleteinvoice": self._delete_invoice,
            "getexchangerates": self._get_exchange_rates, "getbalance": self._get_balance,
            "transfer": self._transfer, "gettransfers": self._get_transfers,
        }
        self.transfers: dict[int, JSON] = {}
        self._transfer_ids = itertools.count(501)
        #: Called with each new transfer (as on the wire), e.g. to show it in the user's chat.
        self.on_transfer: list[Callable[[JSON], None]] = []
        #: While an unset event, each ``transfer`` call waits for it before it is answered (a slow Crypto Pay).
        self.hold_transfers: asyncio.Event | None = None
        self.app.router.add_route("*", "/api/{method}", self._handle)
        self.app.router.add_get("/pay/{hash}", self._page)
        self.app.router.add_post("/pay/{hash}", self._page_pay)

    @property
    def webhook_deliveries(self) -> list[Delivery]:
        return self.deliveries

    @property
    def pending_webhooks(self) -> list[Outgoing]:
        """Updates that exhausted their retries (or had no ``webhook_url``); see :meth:`deliver_pending`."""
        return self.pending

    @staticmethod
    def sign(token: str, body: bytes) -> str:
        """The ``crypto-pay-api-signature`` of ``body``: hex HMAC-SHA-256 keyed with SHA-256(token)."""
        return hmac.new(hashlib.sha256(token.encode()).digest(), body, hashlib.sha256).hexdigest()

    @staticmethod
    def rate(asset: str, fiat: str = "USD") -> Decimal:
        """Fixed sandbox price of one ``asset`` in ``fiat``."""
        return USD_RATES[asset] * FIAT_PER_USD[fiat]

    # ------------------------------------------------------------------ HTTP API

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        bad_body: ApiError | None = None
        try:
            params = await self._params(request)
        except ApiError as exc:
            params, bad_body = dict(request.query), exc
        call, early = self._gate(method, params)
        if early is not None:
            return early
        if method.lower() == "transfer" and self.hold_transfers is not None:
            await self.hold_transfers.wait()
        try:
            if bad_body is not None:
                raise bad_body
            if not hmac.compare_digest(request.headers.get("Crypto-Pay-API-Token", ""), self.token):
                raise ApiError(401, "UNAUTHORIZED")
            handler = self.methods.get(method.lower())
            if handler is None or request.method not in ("GET", "POST"):
                raise ApiError(405, "METHOD_NOT_FOUND")
            result = handler(params)
        except ApiError as exc:
            call.status = exc.code
            return exc.response()
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _params(request: web.Request) -> JSON:
        params: JSON = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.read() or b"{}", parse_float=Decimal)
            except ValueError:
                raise ApiError(400, "JSON_INVALID") from None
            if not isinstance(body, dict):
                raise ApiError(400, "JSON_INVALID")
            params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    def _fault_response(self, status: int, error: str | None) -> web.Response:
        return ApiError(status, error or _DEFAULT_ERRORS.get(status, "APP_ERROR")).response()

    def _get_me(self, p: JSON) -> JSON:
        app_id = self.token.split(":", 1)[0]
        return {"app_id": int(app_id) if app_id.isdigit() else 1, "name": self.app_name,
                "payment_processing_bot_username": "CryptoSandboxBot"}

    def _create_invoice(self, p: JSON) -> JSON:
        currency_type = _text(p, "currency_type") or "crypto"
        amount = _amount(p)
        inv: JSON = {"invoice_id": 0, "hash": "", "currency_type": currency_type}
        if currency_type == "crypto":
            asset = (_text(p, "asset") or "").upper()
            if asset not in ASSETS:
                raise bad("ASSET_INVALID")
            inv["asset"], usd = asset, amount * USD_RATES[asset]
        elif currency_type == "fiat":
            fiat = (_text(p, "fiat") or "").upper()
            if fiat not in FIAT_PER_USD:
                raise bad("FIAT_INVALID")
            accepted = _text(p, "accepted_assets")
            inv["fiat"], usd = fiat, amount / FIAT_PER_USD[fiat]
            if accepted is not None:
                inv["accepted_assets"] = _assets(accepted, "ACCEPTED_ASSETS_INVALID")
        else:
            raise bad("CURRENCY_TYPE_INVALID")
        if usd < MIN_USD:
            raise bad("AMOUNT_TOO_SMALL")
        if usd > MAX_USD:
            raise bad("AMOUNT_TOO_BIG")
        description = _text(p, "description", max_len=1024)
        hidden_message = _text(p, "hidden_message", max_len=2048)
        payload = _text(p, "payload", max_len=4096)
        btn_name, btn_url = _text(p, "paid_btn_name"), _text(p, "paid_btn_url")
        if btn_name is not None and btn_name not in PAID_BUTTONS:
            raise bad("PAID_BTN_NAME_INVALID")
        if btn_name is not None and btn_url is None:
            raise bad("PAID_BTN_URL_REQUIRED")
        if btn_url is not None and not btn_url.startswith(("https://", "http://")):
            raise bad("PAID_BTN_URL_INVALID")
        expires_in = _int(p, "expires_in", "EXPIRES_IN_INVALID")
        if expires_in is not None and not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise bad("EXPIRES_IN_INVALID")

        invoice_id = next(self._invoice_ids)
        inv_hash = "IV" + "".join(secrets.choice(_HASH_ALPHABET) for _ in range(12))
        url = f"{self.public_url}/pay/{inv_hash}"
        now = self.clock()
        inv.update({
            "invoice_id": invoice_id, "hash": inv_hash, "amount": plain_decimal(amount),
            "bot_invoice_url": url, "mini_app_invoice_url": f"{url}?mode=mini_app",
            "web_app_invoice_url": f"{url}?mode=web_app", "pay_url": url,
            "status": "active", "created_at": iso(now),
            "allow_comments": _bool(p, "allow_comments", True),
            "allow_anonymous": _bool(p, "allow_anonymous", True),
        })
        optional = {"description": description, "hidden_message": hidden_message, "payload": payload,
                    "paid_btn_name": btn_name, "paid_btn_url": btn_url}
        inv.update({k: v for k, v in optional.items() if v is not None})
        if expires_in is not None:
            self._expiry[invoice_id] = now + timedelta(seconds=expires_in)
            inv["expiration_date"] = iso(self._expiry[invoice_id])
        self.invoices[invoice_id] = inv
        self._by_hash[inv_hash] = invoice_id
        return copy.deepcopy(inv)

    def _get_invoices(self, p: JSON) -> JSON:
        ids = _id_list(p, "invoice_ids", "INVOICE_IDS_INVALID")
        assets = _assets(a, "ASSET_INVALID") if (a := _text(p, "asset")) else None
        fiat = (_text(p, "fiat") or "").upper() or None
        status = _text(p, "status")
        if status not in (None, "active", "paid", "expired"):
            raise bad("STATUS_INVALID")
        offset, count = _page(p)
        if ids is not None:
            found = [self.invoices[i] for i in ids if i in self.invoices]
        else:
            found = sorted(self.invoices.values(), key=lambda inv: inv["invoice_id"], reverse=True)
        items = []
        for inv in found:
            self._refresh(inv)
            if (status and inv["status"] != status) or (fiat and inv.get("fiat") != fiat) or (
                    assets and inv.get("asset") not in assets):
                continue
            items.append(copy.deepcopy(inv))
        return {"items": items[offset:offset + count]}

    def _delete_invoice(self, p: JSON) -> bool:
        invoice_id = _int(p, "invoice_id", "INVOICE_ID_INVALID")
        if invoice_id is None or invoice_id not in self.invoices:
            raise bad("INVOICE_NOT_FOUND")
        del self._by_hash[self.invoices.pop(invoice_id)["hash"]]
        return True

    def _get_exchange_rates(self, p: JSON) -> list[JSON]:
        return [{"is_valid": True, "is_crypto": True, "is_fiat": False, "source": asset, "target": fiat,
                 "rate": plain_decimal(self.rate(asset, fiat))} for asset in ASSETS for fiat in FIAT_PER_USD]

    def balance(self) -> dict[str, Decimal]:
        """What the app holds of each asset: the starting balance, plus paid invoices net of fees,
        minus transfers."""
        available = {a: _quantize(STARTING_BALANCE_USD / USD_RATES[a], a) for a in ASSETS}
        for inv in self.invoices.values():
            if inv["status"] == "paid":
                available[inv["paid_asset"]] += Decimal(inv["paid_amount"]) - Decimal(inv["fee_amount"])
        for transfer in self.transfers.values():
            available[transfer["asset"]] -= Decimal(transfer["amount"])
        return available

    def _get_balance(self, p: JSON) -> list[JSON]:
        return [{"currency_code": a, "available": plain_decimal(v), "onhold": "0"}
                for a, v in self.balance().items()]

    def _transfer(self, p: JSON) -> JSON:
        user_id = _int(p, "user_id", "USER_ID_INVALID")
        if user_id is None or user_id <= 0:
            raise bad("USER_ID_INVALID")
        asset = (_text(p, "asset") or "").upper()
        if asset not in ASSETS:
            raise bad("ASSET_INVALID")
        amount = _amount(p)
        if amount != _quantize(amount, asset):
            raise bad("AMOUNT_INVALID")
        usd = amount * USD_RATES[asset]
        if usd < MIN_USD:
            raise bad("AMOUNT_TOO_SMALL")
        if usd > MAX_USD:
            raise bad("AMOUNT_TOO_BIG")
        spend_id = _text(p, "spend_id", max_len=64, error="SPEND_ID_INVALID")
        if spend_id is None:
            raise bad("SPEND_ID_REQUIRED")
        if any(t["spend_id"] == spend_id for t in self.transfers.values()):
            raise bad("SPEND_ID_ALREADY_USED")
        comment = _text(p, "comment", max_len=1024)
        if self.balance()[asset] < amount:
            raise bad("INSUFFICIENT_FUNDS")
        transfer: JSON = {"transfer_id": next(self._transfer_ids), "spend_id": spend_id, "user_id": user_id,
                          "asset": asset, "amount": plain_decimal(amount), "status": "completed",
                          "completed_at": iso(self.clock())}
        if comment is not None:
            transfer["comment"] = comment
        self.transfers[transfer["transfer_id"]] = transfer
        if not _bool(p, "disable_send_notification", False):
            for callback in self.on_transfer:
                callback(copy.deepcopy(transfer))
        return copy.deepcopy(transfer)

    def _get_transfers(self, p: JSON) -> JSON:
        ids = _id_list(p, "transfer_ids", "TRANSFER_IDS_INVALID")
        asset = (_text(p, "asset") or "").upper() or None
        spend_id = _text(p, "spend_id")
        offset, count = _page(p)
        items = [copy.deepcopy(t) for t in sorted(self.transfers.values(), key=lambda t: -t["transfer_id"])
                 if (ids is None or t["transfer_id"] in ids) and (asset is None or t["asset"] == asset)
                 and (spend_id is None or t["spend_id"] == spend_id)]
        return {"items": items[offset:offset + count]}

    # ------------------------------------------------------------------ driving API

    def find(self, ref: int | str) -> JSON:
        """The stored invoice by id or hash (raises :class:`PayError` 404)."""
        invoice_id = self._by_hash.get(ref) if isinstance(ref, str) and not ref.isdigit() else int(ref)
        if invoice_id is None or invoice_id not in self.invoices:
            raise PayError(f"no invoice {ref!r}", 404)
        return self._refresh(self.invoices[invoice_id])

    def payable_assets(self, inv: JSON) -> dict[str, Decimal]:
        """Asset -> amount a payer would send for ``inv``."""
        if inv["currency_type"] == "crypto":
            return {inv["asset"]: Decimal(inv["amount"])}
        assets = inv.get("accepted_assets") or list(ASSETS)
        return {a: _quantize(Decimal(inv["amount"]) / self.rate(a, inv["fiat"]), a) for a in assets}

    def pay(self, ref: int | str, asset: str | None = None, *, comment: str | None = None,
            anonymous: bool = False) -> JSON:
        """Pay invoice ``ref`` (id or hash) in ``asset`` (default: the invoice's asset, else USDT
        when accepted, else the first accepted one), exactly as the pay page does. Queues the
        ``invoice_paid`` webhook; returns the paid invoice. Raises :class:`PayError`."""
        inv = self.find(ref)
        if inv["status"] != "active":
            raise PayError(f"invoice {inv['invoice_id']} is {inv['status']}")
        options = self.payable_assets(inv)
        asset = (asset or ("USDT" if "USDT" in options else next(iter(options)))).upper()
        if asset not in options:
            raise PayError(f"invoice {inv['invoice_id']} cannot be paid in {asset}; options: {list(options)}")
        paid = options[asset]
        fee = _quantize(paid * self.fee, asset)
        inv.update({
            "status": "paid", "paid_asset": asset, "paid_amount": plain_decimal(paid),
            "paid_usd_rate": plain_decimal(self.rate(asset)), "usd_rate": plain_decimal(self.rate(asset)),
            "fee_asset": asset, "fee_amount": plain_decimal(fee), "fee": plain_decimal(fee),
            "fee_in_usd": plain_decimal((fee * self.rate(asset)).quantize(Decimal("0.01"), rounding=ROUND_UP)),
            "paid_at": iso(self.clock()), "paid_anonymously": anonymous,
        })
        if inv["currency_type"] == "fiat":
            inv["paid_fiat_rate"] = plain_decimal(self.rate(asset, inv["fiat"]))
        if comment and inv["allow_comments"]:
            inv["comment"] = comment
        self._queue_webhook(inv)
        return copy.deepcopy(inv)

    def expire(self, ref: int | str) -> JSON:
        """Expire an active invoice now (sets ``expiration_date`` when it had none)."""
        inv = self.find(ref)
        if inv["status"] == "active":
            now = self.clock()
            self._expiry[inv["invoice_id"]] = now
            inv["expiration_date"] = iso(now)
            inv["status"] = "expired"
        return copy.deepcopy(inv)

    def _refresh(self, inv: JSON) -> JSON:
        expiry = self._expiry.get(inv["invoice_id"])
        if inv["status"] == "active" and expiry is not None and expiry <= self.clock():
            inv["status"] = "expired"
        return inv

    def _default_url(self) -> str | None:
        return self.webhook_url

    def _queue_webhook(self, inv: JSON) -> None:
        update = {"update_id": next(self._update_ids), "update_type": "invoice_paid",
                  "request_date": iso(self.clock()), "payload": copy.deepcopy(inv)}
        body = json.dumps(update, ensure_ascii=False, separators=(",", ":")).encode()
        self._send(Outgoing(update, body, {"Content-Type": "application/json",
                                           "crypto-pay-api-signature": self.sign(self.token, body)}))

    # ------------------------------------------------------------------ pay page

    async def _page(self, request: web.Request) -> web.Response:
        lang = page_lang(request)
        try:
            inv = self.find(request.match_info["hash"])
        except PayError as exc:
            return page(words(lang, "Invoice not found"), note(str(exc), "err"), status=exc.status, lang=lang)
        return self._render(inv, lang=lang)

    async def _page_pay(self, request: web.Request) -> web.Response:
        lang = page_lang(request)
        form = await request.post()
        inv_hash = request.match_info["hash"]
        asset = form.get("asset")
        try:
            self.pay(inv_hash, asset if isinstance(asset, str) else None)
        except PayError as exc:
            try:
                inv = self.find(inv_hash)
            except PayError:
                return page(words(lang, "Invoice not found"), note(str(exc), "err"), status=exc.status, lang=lang)
            return self._render(inv, error=str(exc), status=exc.status, lang=lang)
        raise web.HTTPSeeOther(with_lang(f"/pay/{inv_hash}", lang))

    def _render(self, inv: JSON, *, error: str | None = None, status: int = 200, lang: str = "en") -> web.Response:
        currency = inv.get("asset") or inv.get("fiat")
        rows: list[tuple[str, object]] = [(words(lang, "Merchant"), self.app_name),
                                          (words(lang, "Invoice"), f"#{inv['invoice_id']}")]
        if "description" in inv:
            rows.append((words(lang, "Description"), inv["description"]))
        rows.append((words(lang, "Status"), words(lang, inv["status"])))
        if "expiration_date" in inv:
            expires = self._expiry.get(inv["invoice_id"])
            rows.append((words(lang, "Expires"), moment(expires, lang) if expires and lang == "ru"
                         else inv["expiration_date"]))
        parts = [f"<div class=amount>{esc(number(inv['amount'], lang))} {esc(currency)}</div>", table(rows)]
        if error:
            parts.append(note(error, "err"))
        if inv["status"] == "active":
            options = "".join(f"<option value='{esc(a)}'>{esc(number(plain_decimal(v), lang))} {esc(a)}</option>"
                              for a, v in self.payable_assets(inv).items())
            action = with_lang(f"/pay/{inv['hash']}", lang)
            parts.append(f"<form method=post action='{esc(action)}'><label>{esc(words(lang, 'Pay with'))} "
                         f"<select name=asset>{options}</select></label> "
                         f"<button type=submit>{esc(words(lang, 'Pay'))}</button></form>")
        elif inv["status"] == "paid":
            paid = f"{number(inv['paid_amount'], lang)} {inv['paid_asset']}"
            paid_at = inv["paid_at"] if lang != "ru" else moment(
                datetime.fromisoformat(inv["paid_at"].replace("Z", "+00:00")), lang)
            parts.append(note(words(lang, "Paid {amount} at {time}", amount=paid, time=paid_at), "ok"))
            if "hidden_message" in inv:
                parts.append(note(inv["hidden_message"]))
            if "paid_btn_url" in inv:
                parts.append(f"<p><a href='{esc(inv['paid_btn_url'])}'>{esc(words(lang, 'Continue'))}</a></p>")
        else:
            parts.append(note(words(lang, "This invoice has expired and can no longer be paid."), "warn"))
        return page(words(lang, "Crypto Pay invoice #{id}", id=inv["invoice_id"]), *parts, status=status, lang=lang)


__all__ = ["ASSETS", "DEFAULT_TOKEN", "FIAT_PER_USD", "USD_RATES", "ApiError", "CryptoPayStandIn",
           "PayError", "iso", "plain_decimal"]
