"""Whale rankings and wallet cards: metrics per wallet and period, aggregated in SQL from the rollups.

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
  comparable and stop one extreme value from dominating. A wallet ranked alone scores 100 (it tops a
  board of one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Float, case, cast, func, literal, select

from db.base import utcnow
from db.engine import Database
from db.models_whales import WhaleDay, WhaleTotal, WhaleTrade, WhaleWallet

MIN_TRADES = 5
PAGE_SIZE = 10
FREE_TOP = 5
PERIODS: dict[str, timedelta | None] = {"7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
METRICS = ("score", "pnl", "roi", "winrate", "volume")
WEIGHTS = {"pnl": 0.40, "roi": 0.25, "winrate": 0.25, "volume": 0.10}


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



class WhaleRankings:
    """Boards and cards; the ranking of each period is cached for `ranking_ttl` seconds."""

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow,
                 min_trades: int = MIN_TRADES, ranking_ttl: float = 0) -> None:
        self.db, self.clock, self.min_trades, self.ranking_ttl = database, clock, min_trades, ranking_ttl
        self._cache: dict[str, tuple[datetime, list[tuple]]] = {}
        self._sorted: dict[tuple[str, str], list[tuple]] = {}


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
        # PERCENT_RANK of a lone row is 0: a wallet ranked alone tops its board rather than scoring 0
        score = case((func.count().over() == 1, literal(100.0)), else_=score)
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
