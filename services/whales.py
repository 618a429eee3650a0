"""Whale leaderboards: the wallet registry, trade ingest, rankings, wallet cards, follows and the
alert queue.

Decisions (the issue was silent):

* **Batches keep their valid items.** Each item of a batch is validated on its own; a malformed item
  is rejected with its field and reason and nothing of it is stored, while its valid siblings are
  stored in the same single transaction. Trade ids are idempotent, so a sender fixes and re-sends
  just the rejected items. A batch where every item is bad is answered 422 by the route.
* **Amounts** are stored exactly as sent (`ExactDecimal`) and as integer cents (rounded half-even)
  for SQL aggregation.
* **Metrics** (per wallet, over the period's trades, `ts` in the window):
  - realised PnL = sum of `pnl_usd`;
  - volume = sum of `usd_value`;
  - win rate = trades with `pnl_usd > 0` ÷ trades with a `pnl_usd` (realising trades);
  - ROI = realised PnL ÷ cost basis of the realising trades, cost basis = `usd_value - pnl_usd`.
  Only wallets with at least `MIN_TRADES` trades in the period are ranked, so one lucky trade does
  not top the board.
* **Composite score** (0–100, the default ordering): a weighted mean of the wallet's percentile
  rank among the ranked wallets of the period (SQL `PERCENT_RANK`):
  40 % realised PnL + 25 % ROI + 25 % win rate + 10 % volume. Percentiles make the four scales
  comparable and stop one extreme value from dominating.
* **Alerts**: a new trade of a followed wallet whose USD value is at least the follower's threshold
  queues one alert row per (follow, trade) in the ingest transaction. Trades older than
  `ALERT_MAX_AGE` when they arrive (backfills, CSV imports) do not alert.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Float, case, cast, delete, func, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from db.base import utcnow
from db.engine import Database
from db.models_whales import WhaleAlert, WhaleDay, WhaleFollow, WhaleTotal, WhaleTrade, WhaleWallet
from services.money import usd
from services.text import strip_invisible, strip_invisible_or_none

MIN_TRADES = 5
PAGE_SIZE = 10
FREE_TOP = 5
MAX_BATCH = 1000
CHUNK = 500
FUTURE_SKEW = timedelta(minutes=5)
ALERT_MAX_AGE = timedelta(hours=1)
MAX_USD = Decimal("1000000000000")  # 1e12: anything bigger is a data error
PERIODS: dict[str, timedelta | None] = {"7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
METRICS = ("score", "pnl", "roi", "winrate", "volume")
WEIGHTS = {"pnl": 0.40, "roi": 0.25, "winrate": 0.25, "volume": 0.10}
THRESHOLDS_USD = (10_000, 50_000, 100_000, 500_000)
SIDES = ("buy", "sell")

_CHAIN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9:._-]{4,128}$")
_TWITTER = re.compile(r"^@?([A-Za-z0-9_]{1,15})$")
_CENT = Decimal("0.01")


# Validation ---------------------------------------------------------------------------------------


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


# Display helpers (shared by the /whales screens, the alerts and the weekly post) --------------------


def signed_usd(cents: int) -> str:
    return ("+" if cents > 0 else "") + usd(cents)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def wallet_name(address: str, label: str | None, verified: bool, *, short: bool, bold: bool = False) -> str:
    """HTML: "✅ label · <code>address</code>" (the label in bold with `bold`)."""
    shown = short_address(address) if short else address
    name = f"{html.escape(label)} · " if label else ""
    if bold and name:
        name = f"<b>{name}</b>"
    return ("✅ " if verified else "") + f"{name}<code>{html.escape(shown)}</code>"


# Results ------------------------------------------------------------------------------------------


@dataclass
class IngestReport:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    alerts_queued: int = 0


@dataclass(frozen=True, slots=True)
class BoardRow:
    rank: int
    wallet_id: int
    address: str
    chain: str
    label: str | None
    verified: bool
    trades: int
    pnl_cents: int
    volume_cents: int
    win_rate: float | None  # 0..1, display only
    roi: float | None  # ratio, display only
    score: float  # 0..100, display only


@dataclass(frozen=True, slots=True)
class Board:
    period: str
    metric: str
    rows: list[BoardRow]
    total: int  # ranked wallets in the period
    offset: int


@dataclass(frozen=True, slots=True)
class Figures:
    trades: int
    pnl_cents: int
    volume_cents: int
    win_rate: float | None
    roi: float | None


@dataclass(frozen=True, slots=True)
class Card:
    wallet: WhaleWallet
    figures: dict[str, Figures]  # by period
    recent: list[WhaleTrade]


@dataclass(frozen=True, slots=True)
class FollowResult:
    ok: bool
    problem: str | None = None  # "unknown_wallet" | "not_included" | "limit"
    count: int = 0
    limit: int = 0


@dataclass
class ImportReport:
    kind: str  # "wallets" | "trades"
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


# A ranking row as the SQL returns it (plain tuples: thousands are sorted, ten are shown).
_R_ID, _R_TRADES, _R_CLOSED, _R_WINS, _R_VOLUME, _R_PNL, _R_COST, _R_WINRATE, _R_ROI, _R_SCORE = range(10)
_R_ADDRESS, _R_CHAIN, _R_LABEL, _R_VERIFIED = range(10, 14)
_SORT_KEYS: dict[str, Callable[[tuple], float]] = {
    "score": lambda r: r[_R_SCORE] or 0.0,
    "pnl": lambda r: r[_R_PNL],
    "volume": lambda r: r[_R_VOLUME] or 0,
    "winrate": lambda r: -1.0 if r[_R_WINRATE] is None else r[_R_WINRATE],
    "roi": lambda r: -1e18 if r[_R_ROI] is None else r[_R_ROI],
}


def _board_row(rank: int, r: tuple) -> BoardRow:
    return BoardRow(rank, r[_R_ID], r[_R_ADDRESS], r[_R_CHAIN], r[_R_LABEL], bool(r[_R_VERIFIED]), int(r[_R_TRADES]),
                    int(r[_R_PNL]), int(r[_R_VOLUME] or 0), r[_R_WINRATE], r[_R_ROI], float(r[_R_SCORE] or 0.0))


# The service --------------------------------------------------------------------------------------


class WhaleService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow,
                 min_trades: int = MIN_TRADES, ranking_ttl: float = 0) -> None:
        self.db, self.clock, self.min_trades, self.ranking_ttl = database, clock, min_trades, ranking_ttl
        self._cache: dict[str, tuple[datetime, list[tuple]]] = {}
        self._sorted: dict[tuple[str, str], list[tuple]] = {}

    def _insert(self, table):
        return (postgresql.insert if self.db.engine.dialect.name == "postgresql" else sqlite.insert)(table)

    @property
    def _trade_insert(self):
        """INSERT … ON CONFLICT (external_id) DO NOTHING RETURNING, in the database's dialect."""
        return (self._insert(WhaleTrade.__table__).on_conflict_do_nothing(index_elements=["external_id"])
                .returning(WhaleTrade.__table__.c.id, WhaleTrade.__table__.c.external_id, WhaleTrade.__table__.c.ts))

    # Ingest ---------------------------------------------------------------------------------------

    async def ingest(self, items: list[Any], *, index_base: int = 0) -> IngestReport:
        """Validate each item; store the valid, new ones in ONE transaction (idempotent by id)."""
        now = self.clock()
        report = IngestReport()
        valid: list[TradeIn] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            try:
                trade = parse_trade(item, now)
            except Invalid as exc:
                raw_id = item.get("id") if isinstance(item, dict) else None
                report.rejected.append(Rejection(i + index_base, raw_id if isinstance(raw_id, str) else None,
                                                 exc.field, exc.reason))
                continue
            if trade.id in seen:
                report.duplicates.append(trade.id)
                continue
            seen.add(trade.id)
            valid.append(trade)
        if not valid:
            return report
        async with self.db.transaction() as session:
            wallet_ids = await self._wallet_ids(session, valid, now)
            inserted: list[int] = []
            stored: set[str] = set()
            by_id = {t.id: t for t in valid}
            alertable = now - ALERT_MAX_AGE
            for start in range(0, len(valid), CHUNK):
                chunk = valid[start:start + CHUNK]
                rows = [{"external_id": t.id, "wallet_id": wallet_ids[(t.wallet, t.chain)], "symbol": t.symbol,
                         "side": t.side, "usd_value": t.usd_value, "pnl_usd": t.pnl_usd,
                         "usd_cents": t.usd_cents, "pnl_cents": t.pnl_cents, "ts": t.ts, "received_at": now}
                        for t in chunk]
                # executemany of one cached statement (SQLAlchemy's insertmanyvalues batches it with RETURNING)
                result = await session.execute(self._trade_insert, rows)
                for trade_id, external_id, ts in result.all():
                    stored.add(external_id)
                    if ts >= alertable:
                        inserted.append(trade_id)
            await self._roll_up(session, [(wallet_ids[(t.wallet, t.chain)], t)
                                          for t in (by_id[i] for i in stored)])
            if inserted:
                report.alerts_queued = await self._queue_alerts(session, inserted, now)
        report.stored = [t.id for t in valid if t.id in stored]
        report.duplicates += [t.id for t in valid if t.id not in stored]
        return report

    async def _wallet_ids(self, session, trades: Iterable[TradeIn], now: datetime) -> dict[tuple[str, str], int]:
        labels: dict[tuple[str, str], str | None] = {}
        for t in trades:
            if labels.get((t.wallet, t.chain)) is None:
                labels[(t.wallet, t.chain)] = t.label
        keys = list(labels)
        ids: dict[tuple[str, str], int] = {}
        wallets = WhaleWallet.__table__.c
        for start in range(0, len(keys), CHUNK):
            part = keys[start:start + CHUNK]
            lookup = select(wallets.id, wallets.address, wallets.chain, wallets.label).where(
                tuple_(wallets.address, wallets.chain).in_(part))
            known = {(a, c): (i, lb) for i, a, c, lb in (await session.execute(lookup)).all()}
            missing = [key for key in part if key not in known]
            if missing:  # new wallets only: most batches are from wallets seen before
                await session.execute(
                    self._insert(WhaleWallet.__table__).on_conflict_do_nothing(index_elements=["address", "chain"]),
                    [{"address": a, "chain": c, "label": labels[(a, c)], "verified": False, "created_at": now}
                     for a, c in missing])
                known.update({(a, c): (i, lb) for i, a, c, lb in (await session.execute(
                    lookup.where(tuple_(wallets.address, wallets.chain).in_(missing)))).all()})
            for key, (wallet_id, label) in known.items():
                ids[key] = wallet_id
                if label is None and labels[key]:
                    await session.execute(update(WhaleWallet).where(
                        WhaleWallet.id == wallet_id, WhaleWallet.label.is_(None)).values(label=labels[key]))
        return ids

    async def _roll_up(self, session, trades: list[tuple[int, TradeIn]]) -> None:
        """Add the newly stored trades to the per-day and all-time counters (same transaction)."""
        days: dict[tuple[int, date], list[int]] = {}
        totals: dict[int, list[int]] = {}
        for wallet_id, t in trades:
            pnl = t.pnl_cents
            inc = (1, 0 if pnl is None else 1, 1 if pnl is not None and pnl > 0 else 0, t.usd_cents, pnl or 0,
                   0 if pnl is None else t.usd_cents - pnl)
            for bucket in (days.setdefault((wallet_id, t.ts.date()), [0] * 6), totals.setdefault(wallet_id, [0] * 6)):
                for k, v in enumerate(inc):
                    bucket[k] += v
        names = ("trades", "closed", "wins", "volume_cents", "pnl_cents", "cost_cents")
        for model, rows, keys in (
                (WhaleDay, [{"wallet_id": w, "day": d, **dict(zip(names, c, strict=True))}
                            for (w, d), c in days.items()], ["wallet_id", "day"]),
                (WhaleTotal, [{"wallet_id": w, **dict(zip(names, c, strict=True))} for w, c in totals.items()],
                 ["wallet_id"])):
            if not rows:
                continue
            table = model.__table__
            stmt = self._insert(table)
            stmt = stmt.on_conflict_do_update(index_elements=keys, set_={
                name: table.c[name] + getattr(stmt.excluded, name) for name in names})
            await session.execute(stmt, rows)

    async def _queue_alerts(self, session, trade_ids: list[int], now: datetime) -> int:
        queued = 0
        for start in range(0, len(trade_ids), CHUNK):
            part = trade_ids[start:start + CHUNK]
            source = (select(WhaleFollow.id, WhaleFollow.user_id, WhaleTrade.id, literal("pending"),
                             literal(now, type_=WhaleAlert.queued_at.type))
                      .join(WhaleTrade, WhaleTrade.wallet_id == WhaleFollow.wallet_id)
                      .where(WhaleTrade.id.in_(part), WhaleTrade.usd_cents >= WhaleFollow.threshold_cents))
            stmt = (self._insert(WhaleAlert)
                    .from_select(["follow_id", "user_id", "trade_id", "status", "queued_at"], source)
                    .on_conflict_do_nothing(index_elements=["follow_id", "trade_id"]))
            result = await session.execute(stmt)
            queued += max(result.rowcount or 0, 0)
        return queued

    # Rankings -------------------------------------------------------------------------------------

    def _since(self, period: str) -> date | None:
        """First UTC day of the period: "7d" is today and the six days before it."""
        span = PERIODS[period]
        return None if span is None else self.clock().date() - span + timedelta(days=1)

    def _aggregate(self, since: date | None, wallet_id: int | None = None):
        """Counters per wallet for the period, from the rollups (never a scan of all trades)."""
        names = ("trades", "closed", "wins", "volume_cents", "pnl_cents", "cost_cents")
        labels = ("trades", "closed", "wins", "volume", "pnl", "cost")
        if since is None:
            t = WhaleTotal.__table__.c
            query = select(t.wallet_id.label("wallet_id"),
                           *(t[n].label(lb) for n, lb in zip(names, labels, strict=True)))
            if wallet_id is not None:
                query = query.where(t.wallet_id == wallet_id)
            return query, t.trades
        t = WhaleDay.__table__.c
        query = (select(t.wallet_id.label("wallet_id"),
                        *(func.sum(t[n]).label(lb) for n, lb in zip(names, labels, strict=True)))
                 .where(t.day >= since).group_by(t.wallet_id))
        if wallet_id is not None:
            query = query.where(t.wallet_id == wallet_id)
        return query, func.sum(t.trades)

    async def _ranking(self, period: str, *, force: bool = False) -> list[tuple]:
        """Every wallet ranked in the period (min trade count met), with its metrics and composite
        score, aggregated in SQL. Cached for `ranking_ttl` seconds: boards need not be fresher than
        that, and pages become slices. `force` recomputes whatever the cache holds and replaces the
        entry only when done, so views meanwhile are served the previous ranking."""
        now = self.clock()
        cached = self._cache.get(period)
        if (not force and cached is not None and self.ranking_ttl > 0
                and (now - cached[0]).total_seconds() < self.ranking_ttl):
            return cached[1]
        query, trades = self._aggregate(self._since(period))
        agg = (query.having(trades >= self.min_trades) if period != "all"
               else query.where(trades >= self.min_trades)).subquery("agg")
        win_rate = case((agg.c.closed > 0, cast(agg.c.wins, Float) / agg.c.closed), else_=None)
        roi = case((agg.c.cost > 0, cast(agg.c.pnl, Float) / agg.c.cost), else_=None)
        metrics = select(agg, win_rate.label("win_rate"), roi.label("roi")).subquery("m")
        sortable = {"pnl": metrics.c.pnl, "volume": metrics.c.volume,
                    "winrate": func.coalesce(metrics.c.win_rate, -1.0),
                    "roi": func.coalesce(metrics.c.roi, -1e18)}
        score = sum((weight * func.percent_rank().over(order_by=sortable[name].asc())
                     for name, weight in WEIGHTS.items()), literal(0.0)) * 100
        scored = select(metrics, score.label("score")).subquery("s")
        query = (select(scored, WhaleWallet.address, WhaleWallet.chain, WhaleWallet.label, WhaleWallet.verified)
                 .join(WhaleWallet, WhaleWallet.id == scored.c.wallet_id))
        async with self.db.session() as session:
            ranking = [tuple(r) for r in (await session.execute(query)).all()]
        self._cache[period] = (now, ranking)
        self._sorted = {key: value for key, value in self._sorted.items() if key[0] != period}
        return ranking

    async def board(self, period: str, metric: str, *, offset: int = 0, limit: int = PAGE_SIZE) -> Board:
        if period not in PERIODS or metric not in METRICS:
            raise ValueError("unknown period or metric")
        ranking = await self._ranking(period)
        ordered = self._sorted.get((period, metric))
        if ordered is None:
            key = _SORT_KEYS[metric]
            ordered = sorted(ranking, key=lambda r: (key(r), r[_R_PNL], -r[_R_ID]), reverse=True)
            self._sorted[(period, metric)] = ordered
        return Board(period, metric, [_board_row(offset + i + 1, r) for i, r in
                                      enumerate(ordered[offset:offset + limit])], len(ordered), offset)

    async def refresh_rankings(self) -> int:
        """Recompute the rankings someone has looked at (a scheduler job, so page views rarely pay
        the aggregate); returns how many were refreshed. The old ranking stays cached, and is
        served, until its replacement is computed."""
        periods = list(self._cache)
        for period in periods:
            await self._ranking(period, force=True)
        return len(periods)

    def forget_rankings(self) -> None:
        self._cache.clear()
        self._sorted.clear()

    async def rank_of(self, period: str, metric: str, wallet_id: int, *, within: int) -> int | None:
        """The wallet's rank if it is in the top `within` of this board, else None."""
        board = await self.board(period, metric, offset=0, limit=within)
        return next((row.rank for row in board.rows if row.wallet_id == wallet_id), None)

    # Cards ----------------------------------------------------------------------------------------

    async def get_wallet(self, wallet_id: int) -> WhaleWallet | None:
        async with self.db.session() as session:
            return await session.get(WhaleWallet, wallet_id)

    async def card(self, wallet_id: int, *, recent: int = 10) -> Card | None:
        async with self.db.session() as session:
            wallet = await session.get(WhaleWallet, wallet_id)
            if wallet is None:
                return None
            figures: dict[str, Figures] = {}
            for period in PERIODS:
                query, _trades = self._aggregate(self._since(period), wallet_id)
                row = (await session.execute(query)).mappings().first()
                if row is None or not row["trades"]:
                    figures[period] = Figures(0, 0, 0, None, None)
                    continue
                figures[period] = Figures(
                    int(row["trades"]), int(row["pnl"]), int(row["volume"] or 0),
                    row["wins"] / row["closed"] if row["closed"] else None,
                    row["pnl"] / row["cost"] if row["cost"] and row["cost"] > 0 else None)
            trades = list(await session.scalars(
                select(WhaleTrade).where(WhaleTrade.wallet_id == wallet_id)
                .order_by(WhaleTrade.ts.desc(), WhaleTrade.id.desc()).limit(recent)))
        return Card(wallet, figures, trades)

    # Follows --------------------------------------------------------------------------------------

    async def follow_of(self, user_id: int, wallet_id: int) -> WhaleFollow | None:
        async with self.db.session() as session:
            return await session.scalar(select(WhaleFollow).where(
                WhaleFollow.user_id == user_id, WhaleFollow.wallet_id == wallet_id))

    async def follows(self, user_id: int) -> list[tuple[WhaleFollow, WhaleWallet]]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(WhaleFollow, WhaleWallet).join(WhaleWallet, WhaleWallet.id == WhaleFollow.wallet_id)
                .where(WhaleFollow.user_id == user_id).order_by(WhaleFollow.id))
            return [(f, w) for f, w in rows.all()]

    async def follow(self, user_id: int, wallet_id: int, threshold_cents: int, *, limit: int) -> FollowResult:
        """Follow (or change the threshold of) a wallet, within the plan's maximum."""
        if threshold_cents <= 0:
            raise ValueError("threshold must be positive")
        async with self.db.transaction() as session:
            if await session.get(WhaleWallet, wallet_id) is None:
                return FollowResult(False, "unknown_wallet")
            count = await session.scalar(select(func.count()).where(WhaleFollow.user_id == user_id)) or 0
            changed = await session.execute(update(WhaleFollow).where(
                WhaleFollow.user_id == user_id, WhaleFollow.wallet_id == wallet_id).values(
                threshold_cents=threshold_cents))
            if changed.rowcount:
                return FollowResult(True, count=count, limit=limit)
            if limit <= 0:
                return FollowResult(False, "not_included", count, limit)
            if count >= limit:
                return FollowResult(False, "limit", count, limit)
            session.add(WhaleFollow(user_id=user_id, wallet_id=wallet_id, threshold_cents=threshold_cents,
                                    created_at=self.clock()))
        return FollowResult(True, count=count + 1, limit=limit)

    async def unfollow(self, user_id: int, wallet_id: int) -> bool:
        async with self.db.transaction() as session:
            result = await session.execute(delete(WhaleFollow).where(
                WhaleFollow.user_id == user_id, WhaleFollow.wallet_id == wallet_id))
            return bool(result.rowcount)

    # Admin ----------------------------------------------------------------------------------------

    async def set_wallet(self, address: str, chain: str, *, label: str | None = None,
                         twitter: Any = ..., verified: bool | None = None) -> WhaleWallet:
        """Create or update a wallet (admins only: the only path that sets twitter/verified)."""
        address, chain = normalise_wallet(address, chain)
        if label is not None:
            label = strip_invisible(label).strip()  # no bidi or zero-width tricks in a shown label
        now = self.clock()
        async with self.db.transaction() as session:
            await session.execute(self._insert(WhaleWallet).values(
                address=address, chain=chain, label=label, verified=bool(verified), created_at=now,
                twitter=None if twitter is ... else twitter).on_conflict_do_nothing(
                index_elements=["address", "chain"]))
            wallet = await session.scalar(select(WhaleWallet).where(
                WhaleWallet.address == address, WhaleWallet.chain == chain))
            assert wallet is not None
            if label is not None:
                wallet.label = label
            if twitter is not ...:
                wallet.twitter = twitter  # type: ignore[assignment]
            if verified is not None:
                wallet.verified = verified
        return wallet

    async def import_csv(self, text: str, *, max_rows: int = 20_000) -> ImportReport:
        """CSV of wallets (address,chain[,label,twitter,verified]) or of trades (the ingest fields).
        Line numbers in the report count the header as line 1."""
        reader = csv.DictReader(io.StringIO(text))
        header = {(h or "").strip().lower() for h in reader.fieldnames or []}
        rows = []
        for row in reader:
            rows.append({(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None})
            if len(rows) > max_rows:
                raise Invalid("file", f"has more than {max_rows} rows")
        if {"id", "wallet", "chain", "side"} <= header:
            report = ImportReport("trades")
            items = [{k: (v if v != "" else None) for k, v in row.items()} for row in rows]
            for start in range(0, len(items), CHUNK):
                result = await self.ingest(items[start:start + CHUNK], index_base=start + 2)
                report.accepted += len(result.stored)
                report.duplicates += len(result.duplicates)
                report.rejected += result.rejected
            return report
        if {"address", "chain"} <= header:
            report = ImportReport("wallets")
            for line, row in enumerate(rows, start=2):
                try:
                    label = _text(row, "label", max_len=64, required=False)
                    twitter: Any = parse_twitter(row["twitter"]) if row.get("twitter") else ...
                    verified = parse_bool(row["verified"], "verified") if row.get("verified") else None
                    await self.set_wallet(row.get("address", ""), row.get("chain", ""), label=label,
                                          twitter=twitter, verified=verified)
                except Invalid as exc:
                    report.rejected.append(Rejection(line, row.get("address") or None, exc.field, exc.reason))
                    continue
                report.accepted += 1
            return report
        raise Invalid("header", "needs the columns address,chain (wallets) or id,wallet,chain,symbol,side,"
                                "usd_value,pnl_usd,ts (trades)")

    # Alert queue (the worker in processing/whale_alerts sends) ------------------------------------

    async def due_alert_users(self, now: datetime, window: timedelta) -> list[int]:
        """Users whose oldest pending alert has waited a full batching window (or whose claimed batch
        was abandoned by a dead worker)."""
        async with self.db.session() as session:
            pending = select(WhaleAlert.user_id).where(
                WhaleAlert.status == "pending").group_by(WhaleAlert.user_id).having(
                func.min(WhaleAlert.queued_at) <= now - window)
            stale = select(WhaleAlert.user_id).where(WhaleAlert.status == "sending",
                                                     WhaleAlert.lease_until < now).distinct()
            users = set(await session.scalars(pending)) | set(await session.scalars(stale))
        return sorted(users)

    async def claim_alerts(self, user_id: int, now: datetime, lease: timedelta
                           ) -> list[tuple[WhaleAlert, WhaleTrade, WhaleWallet]]:
        """Claim every pending (or abandoned) alert of the user with one conditional update."""
        async with self.db.transaction() as session:
            claimable = (WhaleAlert.status == "pending") | (
                (WhaleAlert.status == "sending") & (WhaleAlert.lease_until < now))
            ids = list(await session.scalars(select(WhaleAlert.id).where(WhaleAlert.user_id == user_id, claimable)))
            if not ids:
                return []
            until = now + lease
            await session.execute(update(WhaleAlert).where(WhaleAlert.id.in_(ids), claimable)
                                  .values(status="sending", lease_until=until))
            # Only what this claim took (a concurrent worker may have taken some rows first).
            rows = await session.execute(
                select(WhaleAlert, WhaleTrade, WhaleWallet)
                .join(WhaleTrade, WhaleTrade.id == WhaleAlert.trade_id)
                .join(WhaleWallet, WhaleWallet.id == WhaleTrade.wallet_id)
                .where(WhaleAlert.id.in_(ids), WhaleAlert.status == "sending", WhaleAlert.lease_until == until)
                .order_by(WhaleTrade.ts, WhaleTrade.id))
            return [(a, t, w) for a, t, w in rows.all()]

    async def finish_alerts(self, ids: list[int], status: str, now: datetime) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(WhaleAlert).where(
                WhaleAlert.id.in_(ids), WhaleAlert.status == "sending").values(
                status=status, sent_at=now, lease_until=None))

