"""The web chat's operator panel: what an operator's systems would send the bot, one click away.

Everything goes through the bot's REAL signed HTTP ingest routes (``POST /api/signals``,
``POST /api/signals/{id}/events``, ``POST /api/whales/trades``, signed with ``SIGNAL_WEBHOOK_SECRET``
by :func:`processing.ingest_auth.signed_headers`), never by calling the bot's services, so the panel
shows exactly what an integrator gets. It also lists the stand-ins' pay pages of a user's open
invoices (Crypto Pay and KryptoExpress), so a payer can open them from the chat.

JSON API (mounted beside the web chat's, ``/sandbox/api/operator``):

==========================================  ===================================================
``GET  /operator/state``                    ingest on or off, the ingest URL, signals posted so far
``POST /operator/signal``                   ``{ecosystem, symbol, side, entry, targets, stop, timeframe?, note?}``
``POST /operator/signal/{id}/event``        ``{type: tp_hit | sl_hit | closed, level?, price?}``
``POST /operator/whales``                   posts a realistic batch of whale trades
``GET  /operator/invoices?user_id=``        the user's open invoices: provider, amount, currency, pay page url
==========================================  ===================================================

Each POST answers ``{"status": <the bot's HTTP status>, "body": <its JSON answer>, ...}``.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from processing.ingest_auth import signed_headers
from sandbox.pages import plain_decimal
from sandbox.webchat import ApiError, json_route

if TYPE_CHECKING:
    from sandbox.cryptopay import CryptoPayStandIn
    from sandbox.kryptoexpress import KryptoExpressStandIn
    from sandbox.telegram import TelegramStandIn

log = logging.getLogger(__name__)

JSON = dict[str, Any]
PREFIX = "/sandbox/api/operator"
SIGNALS_PATH = "/api/signals"
WHALES_PATH = "/api/whales/trades"

#: The sample whales: (address, chain, label, skill) — skill tilts their P/L so the board has a shape.
WHALES: tuple[tuple[str, str, str, float], ...] = (
    ("7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU", "solana", "Jupiter Degen", 0.9),
    ("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM", "solana", "Sol Sniper", 0.75),
    ("HN7cABqLq46Es1jh92dQQisAq662SmxELLLsHHe4YWrH", "solana", "Bonk Baron", 0.55),
    ("0x28c6c06298d514db089934071355e5743bf21d60", "ethereum", "Binance 14", 0.6),
    ("0xd8da6bf26964af9d7eed9e03e53415d37aa96045", "ethereum", "vitalik.eth", 0.7),
    ("0x47ac0fb4f2d84898e4d9e7b4dab3c24507a6d503", "ethereum", "Whale 0x47ac", 0.4),
    ("0x3cd751e6b0078be393132286c442345e5dc49699", "base", "Base Maxi", 0.65),
    ("0x4838b106fce9647bdf1e7877bf73ce8b0bad5f97", "base", "Titan Builder", 0.35),
    ("0x8894e0a0c962cb723c1976a4421c95949be2d4e3", "bsc", "BNB Whale", 0.5),
    ("0xf977814e90da44bfa03b6295a0616a897441acec", "bsc", "Binance 8", 0.45),
)
SYMBOLS = {"solana": ("SOL", "JUP", "BONK", "WIF"), "ethereum": ("ETH", "PEPE", "LINK", "UNI"),
           "base": ("ETH", "AERO", "BRETT", "DEGEN"), "bsc": ("BNB", "CAKE", "XVS", "TWT")}
#: Trades per wallet and batch: enough for every wallet to be ranked (5 or more in the period).
TRADES_PER_WHALE = 6


def sample_trades(now: datetime, rng: random.Random | None = None) -> list[JSON]:
    """A realistic batch: every sample whale trades over the last six days, plus one large trade just
    now (so a follower whose threshold it passes gets an alert). Ids are new each call."""
    rng = rng or random.Random()
    batch = secrets.token_hex(4)
    trades: list[JSON] = []
    for number, (wallet, chain, label, skill) in enumerate(WHALES):
        for k in range(TRADES_PER_WHALE + 1):
            fresh = k == TRADES_PER_WHALE
            ts = now - (timedelta(minutes=rng.randint(0, 5)) if fresh else
                        timedelta(days=k, hours=rng.randint(1, 20), minutes=rng.randint(0, 59)))
            usd = rng.randint(600, 2_500) * 100 if fresh else rng.randint(50, 1_800) * 100
            won = rng.random() < skill
            pnl = round(usd * rng.uniform(0.02, 0.45) * (1 if won else -0.6))
            trades.append({
                "id": f"sandbox-{batch}-{number}-{k}", "wallet": wallet, "chain": chain, "label": label,
                "symbol": rng.choice(SYMBOLS[chain]), "side": rng.choice(("buy", "sell")),
                "usd_value": str(usd), "pnl_usd": None if fresh else str(pnl),
                "ts": ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            })
    return trades


def typed_price(value: Any) -> str:
    """A price as typed in the panel, as the ingest API takes it: ``"142,5"`` (a Russian reader's
    decimal comma) becomes ``"142.5"``; anything else is sent as typed, for the bot to judge."""
    text = str(value if value is not None else "").strip().replace("\u00a0", "").replace(" ", "")
    return text.replace(",", ".") if text.count(",") == 1 and "." not in text else text



@dataclass
class PostedSignal:
    """A signal the panel posted (its targets and stop, for the event buttons)."""

    id: str
    symbol: str
    side: str
    entry: str
    targets: list[str]
    stop: str
    events: list[str] = field(default_factory=list)


class OperatorPanel:
    """Routes of the operator panel on ``telegram.app`` (created before the stand-in starts)."""

    def __init__(self, telegram: TelegramStandIn, cryptopay: CryptoPayStandIn,
                 kryptoexpress: KryptoExpressStandIn) -> None:
        self.telegram, self.cryptopay, self.kryptoexpress = telegram, cryptopay, kryptoexpress
        #: The bot's HTTP app (``http://127.0.0.1:8080``) and its ingest secret, once known.
        self.bot_url: str | None = None
        self.secret: str | None = None
        self.signals: dict[str, PostedSignal] = {}
        app = telegram.app
        app.router.add_get(f"{PREFIX}/state", json_route(self._state))
        app.router.add_post(f"{PREFIX}/signal", json_route(self._signal))
        app.router.add_post(f"{PREFIX}/signal/{{signal_id}}/event", json_route(self._event))
        app.router.add_post(f"{PREFIX}/whales", json_route(self._whales))
        app.router.add_get(f"{PREFIX}/invoices", json_route(self._invoices))

    def bind(self, bot_url: str, secret: str | None) -> None:
        """Post to the bot at ``bot_url``, signed with ``secret`` (None: ingest is off)."""
        self.bot_url, self.secret = bot_url.rstrip("/"), secret

    # ------------------------------------------------------------------ plumbing

    async def post(self, path: str, payload: JSON) -> tuple[int, Any]:
        """POST ``payload`` to the bot's ingest route ``path``, signed; return its status and JSON answer."""
        if not self.bot_url or not self.secret:
            raise ApiError(409, "ingest is off: SIGNAL_WEBHOOK_SECRET is not set")
        body = json.dumps(payload).encode()
        headers = signed_headers(self.secret, body, path=path)
        try:
            async with aiohttp.ClientSession() as session, session.post(
                    f"{self.bot_url}{path}", data=body, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=30)) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(502, f"the bot did not answer: {exc}") from None
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    # ------------------------------------------------------------------ API

    async def _state(self, request: web.Request, body: JSON) -> JSON:
        return {"ingest": bool(self.bot_url and self.secret),
                "ingest_url": f"{self.bot_url}{SIGNALS_PATH}" if self.bot_url else None,
                "signals": [vars(s) for s in self.signals.values()]}

    async def _signal(self, request: web.Request, body: JSON) -> JSON:
        targets = body.get("targets")
        if isinstance(targets, str):  # "150, 158", or "150,5; 158" as a Russian reader writes it
            targets = [typed_price(t) for t in targets.split(";" if ";" in targets else ",") if t.strip()]
        payload: JSON = {
            "id": f"sandbox-{secrets.token_hex(4)}",
            "ecosystem": str(body.get("ecosystem") or "crypto").strip(),
            "symbol": str(body.get("symbol") or "").strip(),
            "side": str(body.get("side") or "long").strip(),
            "entry": typed_price(body.get("entry")),
            "take_profits": [typed_price(t) for t in targets] if isinstance(targets, list) else targets,
            "stop_loss": typed_price(body.get("stop")),
        }
        for optional in ("timeframe", "note"):
            if str(body.get(optional) or "").strip():
                payload[optional] = str(body[optional]).strip()
        status, answer = await self.post(SIGNALS_PATH, payload)
        if status in (200, 202):
            self.signals[payload["id"]] = PostedSignal(
                payload["id"], payload["symbol"].upper(), payload["side"].lower(), payload["entry"],
                payload["take_profits"], payload["stop_loss"])
        return {"status": status, "body": answer, "id": payload["id"]}

    async def _event(self, request: web.Request, body: JSON) -> JSON:
        signal_id = request.match_info["signal_id"]
        signal = self.signals.get(signal_id)
        kind = str(body.get("type") or "")
        payload: JSON = {"type": kind}
        price = typed_price(body.get("price"))
        if kind == "tp_hit":
            level = body.get("level")
            if not isinstance(level, int) or isinstance(level, bool):
                raise ApiError(400, "level must be a whole number")
            payload["level"] = level
            if not price and signal and 1 <= level <= len(signal.targets):
                price = signal.targets[level - 1]
        elif kind == "sl_hit" and not price and signal:
            price = signal.stop
        elif kind == "closed" and not price and signal:
            price = signal.entry
        payload["price"] = price
        status, answer = await self.post(f"{SIGNALS_PATH}/{signal_id}/events", payload)
        if signal and status in (200, 202):
            signal.events.append(kind if kind != "tp_hit" else f"tp_hit:{payload['level']}")
        return {"status": status, "body": answer}

    async def _whales(self, request: web.Request, body: JSON) -> JSON:
        trades = sample_trades(datetime.now(UTC))
        status, answer = await self.post(WHALES_PATH, {"trades": trades})
        return {"status": status, "body": answer, "sent": len(trades), "wallets": len(WHALES)}

    async def _invoices(self, request: web.Request, body: JSON) -> JSON:
        """Open invoices the bot showed in this user's chat, with the stand-in's pay page of each."""
        try:
            user_id = int(request.query.get("user_id", ""))
        except ValueError:
            raise ApiError(400, "user_id must be an integer") from None
        shown = json.dumps(self.telegram.chat_messages(user_id), ensure_ascii=False)
        found: list[JSON] = []
        for invoice_id in sorted(self.cryptopay.invoices, reverse=True):
            invoice = self.cryptopay.find(invoice_id)
            if invoice["status"] == "active" and f"/pay/{invoice['hash']}" in shown:
                found.append({"provider": "cryptopay", "title": "Crypto Pay", "amount": invoice["amount"],
                              "currency": invoice.get("fiat") or invoice.get("asset"),
                              "url": f"{self.cryptopay.public_url}/pay/{invoice['hash']}"})
        for payment in sorted(self.kryptoexpress.payments.values(), key=lambda p: -p.id):
            if not payment.is_paid and not self.kryptoexpress.is_expired(payment) and payment.address in shown:
                found.append({"provider": "kryptoexpress", "title": "KryptoExpress",
                              "amount": plain_decimal(payment.crypto_amount or Decimal(0)),
                              "currency": payment.crypto_currency,
                              "url": f"{self.kryptoexpress.public_url}/pay/{payment.hash}"})
        return {"invoices": found}


__all__ = ["WHALES", "OperatorPanel", "PostedSignal", "sample_trades"]
