"""Whale trade ingest input: validation of one item (the field named on error), wallet addresses and
the amounts as exact decimals and integer cents.

* **Batches keep their valid items.** Each item of a batch is validated on its own; a malformed item
  is rejected with its field and reason and nothing of it is stored, while its valid siblings are
  stored in the same single transaction. Trade ids are idempotent, so a sender fixes and re-sends
  just the rejected items. A batch where every item is bad is answered 422 by the route.
* **Amounts** are stored exactly as sent (`ExactDecimal`) and as integer cents (rounded half-even)
  for SQL aggregation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from services.text import strip_invisible_or_none

MAX_BATCH = 1000
FUTURE_SKEW = timedelta(minutes=5)
MAX_USD = Decimal("1000000000000")  # 1e12: anything bigger is a data error
SIDES = ("buy", "sell")

_CHAIN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9:._-]{4,128}$")
_TWITTER = re.compile(r"^@?([A-Za-z0-9_]{1,15})$")


@dataclass(frozen=True, slots=True)
class TradeIn:
    id: str
    wallet: str
    chain: str
    label: str | None
    symbol: str
    side: str
    usd_value: Decimal
    pnl_usd: Decimal | None
    ts: datetime

    @property
    def usd_cents(self) -> int:
        return to_cents(self.usd_value)

    @property
    def pnl_cents(self) -> int | None:
        return None if self.pnl_usd is None else to_cents(self.pnl_usd)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int  # 0-based position in the batch (CSV: the line number)
    id: str | None
    field: str
    reason: str

    def as_dict(self, prefix: str = "trades") -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "field": f"{prefix}[{self.index}].{self.field}",
                "reason": self.reason}


class Invalid(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field, self.reason = field_name, reason


def to_cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def parse_amount(value: Any, name: str, *, positive: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(name, "must be a decimal string")
    if isinstance(value, str) and not value.isascii():  # Decimal() reads "١٢٣" as 123
        raise Invalid(name, "must be written with the digits 0-9")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise Invalid(name, "is not a decimal number") from None
    if not amount.is_finite():
        raise Invalid(name, "must be finite")
    if positive and amount <= 0:
        raise Invalid(name, "must be greater than 0")
    if abs(amount) >= MAX_USD:
        raise Invalid(name, "is implausibly large")
    return amount


def parse_ts(value: Any, now: datetime) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("ts", "must be an ISO 8601 time with a zone, e.g. 2026-11-20T10:00:00Z")
    text = value.strip()
    try:
        ts = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise Invalid("ts", "is not an ISO 8601 time") from None
    if ts.tzinfo is None:
        raise Invalid("ts", "needs a time zone (Z or +00:00)")
    try:
        ts = ts.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise Invalid("ts", "is out of range") from None
    if ts > now + FUTURE_SKEW:
        raise Invalid("ts", "is in the future")
    return ts


def _text(item: dict, name: str, *, max_len: int, required: bool = True) -> str | None:
    value = item.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise Invalid(name, "is required")
        return None
    if not isinstance(value, str):
        raise Invalid(name, "must be a string")
    if "\x00" in value:
        raise Invalid(name, "must not contain NUL characters")
    value = value.strip()
    if not value:
        raise Invalid(name, "must not be empty")
    if len(value) > max_len:
        raise Invalid(name, f"is longer than {max_len} characters")
    return value


def normalise_wallet(address: str, chain: str) -> tuple[str, str]:
    chain = chain.strip().lower()
    if not _CHAIN.match(chain):
        raise Invalid("chain", "must be a short lowercase chain name like solana or ethereum")
    address = address.strip()
    if not _ADDRESS.match(address):
        raise Invalid("wallet", "is not a wallet address")
    if address.lower().startswith("0x"):  # EVM addresses are case-insensitive
        address = address.lower()
    return address, chain


def parse_trade(item: Any, now: datetime) -> TradeIn:
    """One ingest item, validated; raises Invalid naming the field."""
    if not isinstance(item, dict):
        raise Invalid("item", "must be an object")
    trade_id = _text(item, "id", max_len=128)
    wallet = _text(item, "wallet", max_len=128)
    chain = _text(item, "chain", max_len=32)
    address, chain = normalise_wallet(wallet, chain)
    label = strip_invisible_or_none(_text(item, "label", max_len=64, required=False))  # no bidi/zero-width tricks
    symbol = _text(item, "symbol", max_len=32)
    side = (_text(item, "side", max_len=8) or "").lower()
    if side not in SIDES:
        raise Invalid("side", "must be buy or sell")
    usd_value = parse_amount(item.get("usd_value"), "usd_value", positive=True)
    pnl_raw = item.get("pnl_usd")
    pnl = None if pnl_raw is None or pnl_raw == "" else parse_amount(pnl_raw, "pnl_usd", positive=False)
    ts = parse_ts(item.get("ts"), now)
    return TradeIn(trade_id, address, chain, label, symbol.upper(), side, usd_value, pnl, ts)  # type: ignore[arg-type]


def parse_twitter(value: str) -> str | None:
    """A handle without '@'; '' or '-' clears it. Raises Invalid."""
    value = value.strip()
    if value in ("", "-"):
        return None
    match = _TWITTER.match(value)
    if not match:
        raise Invalid("twitter", "must be a handle like @name (letters, digits, _; up to 15)")
    return match.group(1)


def parse_bool(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("0", "false", "no", "n", "off", ""):
        return False
    raise Invalid(name, "must be yes or no")


def short_address(address: str) -> str:
    return address if len(address) <= 10 else f"{address[:4]}…{address[-4:]}"

