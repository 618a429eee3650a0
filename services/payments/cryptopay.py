"""Crypto Pay (@CryptoBot) client: USD-denominated invoices payable in the configured assets.

Wire format (https://help.crypt.bot/crypto-pay-api, mirrored by sandbox/cryptopay.py): ``{api_url}/api/{method}``
with the app token in the ``Crypto-Pay-API-Token`` header; replies ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"code": N, "name": "..."}}``. Amounts are decimal strings and are only ever read as
`Decimal`. ``accepted_assets`` must be a comma-separated string (the service fails on a JSON array).

One invoice is paid at most once and in full, so a paid invoice yields exactly one `PaymentReport` with the
payment id ``cryptopay:{invoice_id}`` and the invoice's USD amount.

Webhooks are configured in @CryptoBot (not through the API); ``webhook_url_hint`` is only echoed in the
start-up log line. Each update is checked with ``crypto-pay-api-signature`` = hex HMAC-SHA-256(key =
SHA-256(token), raw body); updates older than a day are refused as replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
from aiogram.utils.i18n import gettext as _

from config.settings import Settings
from services import safe_json
from services.money import smallest_unit
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

SIGNATURE_HEADER = "crypto-pay-api-signature"
#: getInvoices takes at most this many ids per request.
BATCH = 100
#: Updates whose ``request_date`` is older than this are refused (replays).
MAX_WEBHOOK_AGE = timedelta(days=1)
_DESCRIPTION_MAX_BYTES = 1024
_STATES = {"active": "active", "paid": "paid", "expired": "expired"}


def parse_date(value: Any) -> datetime | None:
    """An ISO 8601 date as Crypto Pay writes it (``...Z``) -> aware UTC datetime; None when absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        return None


def _decimal(value: Any, what: str) -> Decimal:
    amount = finite_decimal(value)
    if amount is None:
        raise ProviderError(f"Crypto Pay sent a malformed {what}: {value!r}", retryable=False)
    return amount


def _truncate(text: str, max_bytes: int) -> str:
    return text.encode()[:max_bytes].decode(errors="ignore")


class CryptoPayProvider:
    """`PaymentProvider` for Crypto Pay. The token never appears in logs, errors or reprs."""

    name = "cryptopay"
    pollable = True
    minimum_cents = 1
    webhook_max_bytes = 16 * 1024  # one update: an invoice with its 1 KB description and 4 KB payload
    editable_messages = True
    one_live_invoice = False  # each invoice expires by itself
    telegram_payments = False

    def __init__(
        self, token: str, api_url: str, assets: list[str], *, webhook_url_hint: str | None = None,
        client: httpx.AsyncClient | None = None, timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Crypto Pay token is required")
        self._token = token
        self._secret = hashlib.sha256(token.encode()).digest()
        self.api_url = api_url.rstrip("/")
        self.assets = [a.strip().upper() for a in assets if a.strip()]
        self.webhook_url_hint = webhook_url_hint
        self._http = HttpApi(client, timeout, clock)

    @classmethod
    def title(cls) -> str:
        return _("Crypto Pay")

    @classmethod
    def from_settings(cls, settings: Settings, wiring: Wiring) -> CryptoPayProvider | None:
        if settings.crypto_pay_token is None:
            return None
        return cls(settings.crypto_pay_token.get_secret_value(), settings.crypto_pay_api_url,
                   settings.crypto_pay_assets)

    def methods(self) -> list[Method]:
        return [Method(self.name, self.name)]

    def method_label(self, method: Method, amount_cents: int) -> str:
        return _("💎 Crypto Pay (@CryptoBot)")

    def __repr__(self) -> str:
        return f"CryptoPayProvider(api_url={self.api_url!r}, assets={self.assets!r})"

    # ------------------------------------------------------------------ HTTP

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        """POST ``method`` with a JSON body; the ``result`` of an ok reply, else ProviderError."""
        try:
            resp = await self._http.client.post(
                f"{self.api_url}/api/{method}", json=params, timeout=self._http.timeout,
                headers={"Crypto-Pay-API-Token": self._token})
        except httpx.TimeoutException as exc:
            raise ProviderError(f"Crypto Pay {method}: timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"Crypto Pay {method}: {type(exc).__name__}") from None
        try:
            body = json.loads(resp.content, parse_float=Decimal)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("ok") is True and resp.is_success:
            return jsonable(body.get("result"))
        error = body.get("error") if isinstance(body, dict) else None
        name = str(error.get("name", "")) if isinstance(error, dict) else ""
        retryable = resp.status_code >= 500 or resp.status_code == 429 or (resp.is_success and not name)
        raise ProviderError(f"Crypto Pay {method}: HTTP {resp.status_code} {name or 'unexpected reply'}".rstrip(),
                            retryable=retryable)

    # ------------------------------------------------------------------ PaymentProvider

    async def get_me(self) -> dict[str, Any]:
        """``getMe``: checks the token; logs where webhooks should point (set in @CryptoBot)."""
        me = await self._call("getMe", {})
        if self.webhook_url_hint:
            log.info("Crypto Pay app %r: set its webhook URL in @CryptoBot to %s",
                     me.get("name") if isinstance(me, dict) else "?", self.webhook_url_hint)
        return me if isinstance(me, dict) else {}

    async def create_invoice(self, request: InvoiceRequest) -> InvoiceDraft:
        if request.amount_cents <= 0:
            raise ValueError("an invoice must cost something")
        amount = (Decimal(request.amount_cents) / 100).quantize(Decimal("0.01"))
        params: dict[str, Any] = {
            "currency_type": "fiat", "fiat": "USD", "amount": str(amount),
            "accepted_assets": ",".join(self.assets),
            "description": _truncate(request.description or request.title, _DESCRIPTION_MAX_BYTES),
            "payload": str(request.order_id), "expires_in": request.expires_in_seconds,
            "allow_comments": False, "allow_anonymous": False,
        }
        inv = await self._call("createInvoice", params)
        if not isinstance(inv, dict) or "invoice_id" not in inv:
            raise ProviderError("Crypto Pay createInvoice: reply without an invoice", retryable=False)
        expires_at = parse_date(inv.get("expiration_date")) or (
            self._http.now() + timedelta(seconds=request.expires_in_seconds))
        pay_url = inv.get("bot_invoice_url") or inv.get("mini_app_invoice_url") or inv.get(
            "web_app_invoice_url") or inv.get("pay_url")
        return InvoiceDraft(external_id=str(inv["invoice_id"]), amount=_decimal(inv.get("amount"), "amount"),
                            asset="USD", expires_at=expires_at, pay_url=pay_url, raw=inv)

    async def fetch(self, external_ids: Sequence[str]) -> list[RemoteInvoice]:
        """State of these invoices, ``BATCH`` ids per getInvoices request; unknown ids are absent."""
        ids = list(dict.fromkeys(i for i in (str(x).strip() for x in external_ids) if i.isdigit()))
        out: list[RemoteInvoice] = []
        for start in range(0, len(ids), BATCH):
            batch = ids[start:start + BATCH]
            result = await self._call("getInvoices", {"invoice_ids": ",".join(batch), "count": len(batch)})
            items = result.get("items") if isinstance(result, dict) else None
            if not isinstance(items, list):
                raise ProviderError("Crypto Pay getInvoices: reply without items", retryable=False)
            wanted = set(batch)
            out.extend(self._remote(inv) for inv in items
                       if isinstance(inv, dict) and str(inv.get("invoice_id")) in wanted)
        return out

    def _remote(self, inv: dict[str, Any]) -> RemoteInvoice:
        invoice_id = str(inv["invoice_id"])
        status = str(inv.get("status"))
        state = _STATES.get(status)
        if state is None:
            log.warning("Crypto Pay invoice %s has unknown status %r; treating it as active", invoice_id, status)
            state = "active"
        payments: tuple[PaymentReport, ...] = ()
        if state == "paid":
            payments = (self._report(invoice_id, inv),)
        return RemoteInvoice(external_id=invoice_id, state=state, payments=payments, raw=inv)

    def _report(self, invoice_id: str, inv: dict[str, Any]) -> PaymentReport:
        """A paid invoice is paid in full: its own amount, in its own currency (USD for ours)."""
        asset = str(inv.get("fiat") or inv.get("asset") or "USD").upper()
        amount = _decimal(inv.get("amount"), "amount")
        usd: Decimal | None = None
        if asset == "USD":
            usd = amount
        elif inv.get("paid_usd_rate") and inv.get("paid_amount"):
            usd = _decimal(inv["paid_amount"], "paid_amount") * _decimal(inv["paid_usd_rate"], "paid_usd_rate")
        cents = int((usd * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) if usd is not None else None
        return PaymentReport(provider=self.name, invoice_id=invoice_id, payment_id=f"cryptopay:{invoice_id}",
                             amount=amount, asset=asset, paid_at=parse_date(inv.get("paid_at")),
                             usd_cents=cents, raw=inv)

    def webhook_invoice_ids(self, headers: Mapping[str, str], body: bytes) -> list[str]:
        """Authenticate an update over the raw body; ``invoice_paid`` names its invoice, others name none."""
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected("missing crypto-pay-api-signature")
        expected = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise WebhookRejected("bad crypto-pay-api-signature")
        try:
            update = safe_json.loads(body, parse_float=Decimal)
        except ValueError:
            raise WebhookRejected("body is not JSON") from None
        if not isinstance(update, dict):
            raise WebhookRejected("body is not a JSON object")
        if "request_date" in update:
            sent = parse_date(update["request_date"])
            if sent is None:
                raise WebhookRejected("malformed request_date")
            if self._http.now() - sent > MAX_WEBHOOK_AGE:
                raise WebhookRejected("update is older than a day (replay?)")
        if update.get("update_type") != "invoice_paid":
            return []
        payload = update.get("payload")
        if not isinstance(payload, dict) or payload.get("invoice_id") is None:
            raise WebhookRejected("invoice_paid update without an invoice")
        return [str(payload["invoice_id"])]

    async def present(self, invoice_id: str, request: InvoiceRequest, amount: Decimal) -> None:
        return None  # the bot shows the pay link (and address)

    # ------------------------------------------------------------------ paying back (refunds)

    async def transfer(self, *, user_id: int, asset: str, amount: Decimal, spend_id: str,
                       comment: str | None = None, look_first: bool = True) -> dict[str, Any]:
        """``transfer`` coins from the app's balance to a Telegram user's @CryptoBot wallet.

        Exactly once per ``spend_id`` (Crypto Pay accepts a spend id once): a retry first looks the
        spend id up with ``getTransfers`` and returns the transfer already made (``look_first`` False: the
        caller knows no earlier attempt was sent; a refused or unanswered call is still looked up)."""
        done = await self.find_transfer(spend_id) if look_first else None
        if done is not None:
            return done
        params: dict[str, Any] = {"user_id": user_id, "asset": asset, "amount": format(amount.normalize(), "f"),
                                  "spend_id": spend_id, "disable_send_notification": False}
        if comment:
            params["comment"] = _truncate(comment, 1024)
        try:
            result = await self._call("transfer", params)
        except ProviderError:
            done = await self.find_transfer(spend_id)  # accepted, but the answer was lost or refused as a repeat
            if done is not None:
                return done
            raise
        if not isinstance(result, dict) or "transfer_id" not in result:
            raise ProviderError("Crypto Pay transfer: reply without a transfer", retryable=False)
        return result

    async def find_transfer(self, spend_id: str) -> dict[str, Any] | None:
        result = await self._call("getTransfers", {"spend_id": spend_id, "count": 1})
        items = result.get("items") if isinstance(result, dict) else None
        found = [t for t in items or [] if isinstance(t, dict) and t.get("spend_id") == spend_id]
        return found[0] if found else None

    def payback_terms(self, payment: Any, amount: Decimal) -> tuple[str, Decimal]:
        """What to send back for `amount` (in the payment's own unit, USD for our invoices): the
        same share of the coins the payer actually paid, rounded half-up to their smallest unit (a cent at
        least: "25" USDT paid, two thirds back is 16.67)."""
        raw = payment.raw or {}
        paid_asset, paid_amount = raw.get("paid_asset"), finite_decimal(raw.get("paid_amount"))
        if not paid_asset or paid_amount is None or not payment.amount:
            return payment.asset, amount
        asset = str(paid_asset).upper()
        return asset, min(paid_amount, (paid_amount * amount / payment.amount).quantize(
            smallest_unit(paid_amount, asset), rounding=ROUND_HALF_UP))

    async def pay_back(self, payment: Any, *, user_id: int, asset: str, amount: Decimal, spend_id: str,
                       comment: str) -> str:
        """Refund by transfer to the payer's @CryptoBot wallet; returns the transfer id."""
        transfer = await self.transfer(user_id=user_id, asset=asset, amount=amount, spend_id=spend_id,
                                       comment=comment)
        return f"transfer {transfer['transfer_id']}"

    # ------------------------------------------------------------------ paying out (services.payouts)

    #: The dollar asset sellers are paid in (one unit is one USD; six decimals hold every micro-dollar).
    payout_asset = "USDT"

    async def pay_out(self, *, user_id: int, amount_usd: Decimal, spend_id: str, comment: str,
                      retry: bool = True) -> str:
        """A seller's payout: a transfer of `amount_usd` in USDT to their @CryptoBot wallet, once per spend id
        (`retry` False: the first attempt, nothing to look up first)."""
        transfer = await self.transfer(user_id=user_id, asset=self.payout_asset, amount=amount_usd,
                                       spend_id=spend_id, comment=comment, look_first=retry)
        return f"transfer {transfer['transfer_id']}"

    async def close(self) -> None:
        await self._http.close()


__all__ = ["BATCH", "SIGNATURE_HEADER", "CryptoPayProvider", "parse_date"]
