"""The track record, computed from stored signals and events only (never typed in), and the hash chain
that makes quiet edits of those rows evident.

Outcome of a signal: it is closed by its first `sl_hit`, `closed`, or a `tp_hit` on its last target; the
exit is that event's price. Each closed signal is one trade of equal size:

* return     = (exit − entry) / entry for a long, (entry − exit) / entry for a short;
* R multiple = (exit − entry) / (entry − stop) for a long, (entry − exit) / (stop − entry) for a short;
* a win is a trade with a positive return;
* cumulative return = the sum of the returns (equal size, not compounded); the equity curve is
  1 + that sum after each trade, in closing order; max drawdown is the largest fall of that curve from
  its previous peak, as a fraction of the peak;
* Sharpe ratio = mean return / sample standard deviation of the returns, per trade (not annualised;
  none with fewer than two trades or no variation).

All figures are Decimal. Periods (7 days, 30 days, all time) select trades by closing time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.money import plain

GENESIS = "0" * 64
CLOSING = ("sl_hit", "closed")
PERIODS = (("7d", 7), ("30d", 30), ("all", None))


# ---------------------------------------------------------------------------------------- the chain

def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _dec(value: Decimal) -> str:
    return plain(value)


def signal_hash(prev_hash: str, *, external_id: str, ecosystem: str, symbol: str, side: str, entry: Decimal,
                take_profits: Sequence[str], stop_loss: Decimal, timeframe: str | None, note: str | None,
                received_at: datetime) -> str:
    content = {"id": external_id, "ecosystem": ecosystem, "symbol": symbol, "side": side, "entry": _dec(entry),
               "take_profits": [_dec(Decimal(tp)) for tp in take_profits], "stop_loss": _dec(stop_loss),
               "timeframe": timeframe, "note": note, "received_at": _utc(received_at)}
    return hashlib.sha256(prev_hash.encode() + b"|" + _canonical(content)).hexdigest()


def event_hash(prev_hash: str, *, signal_hash_: str, type_: str, level: int, price: Decimal,
               received_at: datetime, claimed_at: datetime | None = None) -> str:
    """`claimed_at` (the sender's `at`) is hashed only when given, so events stored without it keep their hash."""
    content = {"signal": signal_hash_, "type": type_, "level": level, "price": _dec(price),
               "received_at": _utc(received_at)}
    if claimed_at is not None:
        content["claimed_at"] = _utc(claimed_at)
    return hashlib.sha256(prev_hash.encode() + b"|" + _canonical(content)).hexdigest()


def genesis(provider_id: int | None, *, events: bool = False) -> str:
    """Where a chain starts: GENESIS for the house's signals and events; a marketplace provider's chains start
    at a hash of its id, so each provider has its own chain and no row can sit on two of them."""
    if provider_id is None:
        return GENESIS
    return hashlib.sha256(f"provider:{provider_id}:{'events' if events else 'signals'}".encode()).hexdigest()


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hash_of_signal(row) -> str:
    return signal_hash(row.prev_hash, external_id=row.external_id, ecosystem=row.ecosystem, symbol=row.symbol,
                       side=row.side, entry=row.entry, take_profits=row.take_profits, stop_loss=row.stop_loss,
                       timeframe=row.timeframe, note=row.note, received_at=row.received_at)


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    head: str  # the last stored hash (GENESIS when empty)
    length: int
    broken_at: str | None = None  # "signal <external id>" / "event <id>" where it first fails


def verify_chain(signals: Sequence, events: Sequence, *, genesis: str = GENESIS,
                 events_genesis: str = GENESIS) -> ChainCheck:
    """Recompute both chains (signals, then events) in insertion order. Any edited field, a deleted or
    reordered row breaks the link where it happened."""
    prev, by_id = genesis, {}
    for row in signals:
        if row.prev_hash != prev or hash_of_signal(row) != row.hash:
            return ChainCheck(False, signals[-1].hash, len(signals), f"signal {row.external_id}")
        prev, by_id[row.id] = row.hash, row
    head = prev
    prev = events_genesis
    for ev in events:
        parent = by_id.get(ev.signal_id)
        expected = None if parent is None else event_hash(
            ev.prev_hash, signal_hash_=parent.hash, type_=ev.type, level=ev.level, price=ev.price,
            received_at=ev.received_at, claimed_at=getattr(ev, "claimed_at", None))
        if ev.prev_hash != prev or expected != ev.hash:
            return ChainCheck(False, head, len(signals), f"event {ev.id}")
        prev = ev.hash
    return ChainCheck(True, head, len(signals))


# ---------------------------------------------------------------------------------------- figures

@dataclass(frozen=True, slots=True)
class Trade:
    signal_id: int
    ecosystem: str
    symbol: str
    closed_at: datetime
    ret: Decimal
    r_multiple: Decimal | None


@dataclass(frozen=True, slots=True)
class Figures:
    trades: int
    wins: int
    win_rate: Decimal | None  # 0..1
    avg_r: Decimal | None
    cumulative_return: Decimal  # sum of returns (0.1 = +10 %)
    max_drawdown: Decimal  # 0..1
    sharpe: Decimal | None
    equity: tuple[Decimal, ...]  # 1 + cumulative after each trade, starting at 1


def outcome(signal, events: Iterable) -> Trade | None:
    """The trade a signal became, or None while it is open."""
    last_level = len(signal.take_profits)
    for ev in sorted(events, key=lambda e: (e.received_at, e.id)):
        if ev.type in CLOSING or (ev.type == "tp_hit" and ev.level >= last_level):
            return trade(signal, ev.price, ev.received_at)
    return None


def trade(signal, exit_price: Decimal, closed_at: datetime) -> Trade:
    entry, stop = signal.entry, signal.stop_loss
    sign = Decimal(1) if signal.side == "long" else Decimal(-1)
    ret = sign * (exit_price - entry) / entry
    risk = sign * (entry - stop)
    r_multiple = sign * (exit_price - entry) / risk if risk > 0 else None
    return Trade(signal.id, signal.ecosystem, signal.symbol, closed_at, ret, r_multiple)


def figures(trades: Sequence[Trade]) -> Figures:
    trades = sorted(trades, key=lambda t: (t.closed_at, t.signal_id))
    returns = [t.ret for t in trades]
    n = len(returns)
    wins = sum(1 for r in returns if r > 0)
    rs = [t.r_multiple for t in trades if t.r_multiple is not None]
    equity, level, peak, drawdown = [Decimal(1)], Decimal(1), Decimal(1), Decimal(0)
    for r in returns:
        level += r
        equity.append(level)
        peak = max(peak, level)
        if peak > 0:
            drawdown = max(drawdown, (peak - level) / peak)
    sharpe = None
    if n >= 2:
        mean = sum(returns, Decimal(0)) / n
        variance = sum(((r - mean) ** 2 for r in returns), Decimal(0)) / (n - 1)
        if variance > 0:
            sharpe = mean / variance.sqrt()
    return Figures(
        trades=n, wins=wins, win_rate=Decimal(wins) / n if n else None,
        avg_r=sum(rs, Decimal(0)) / len(rs) if rs else None,
        cumulative_return=sum(returns, Decimal(0)), max_drawdown=drawdown, sharpe=sharpe, equity=tuple(equity))


def by_period(trades: Sequence[Trade], now: datetime, ecosystem: str | None = None) -> dict[str, Figures]:
    chosen = [t for t in trades if ecosystem is None or t.ecosystem == ecosystem]
    result = {}
    for name, days in PERIODS:
        since = None if days is None else now - timedelta(days=days)
        result[name] = figures([t for t in chosen if since is None or t.closed_at >= since])
    return result
