"""Datasets for sale (issue #17): exports of the signal history with its events, the whale trades and the
whale rankings (7d / 30d / all), as CSV or Parquet.

* **Sources.** A dataset is a `Source` in `SOURCES`: its id, title, columns and how it counts and reads
  its rows up to a `Cut`. Market data plugs in later as one more `Source` (e.g. candles read from their
  table); the catalogue, pricing, exports, purchases, links, /data and the API pick it up.
* **Cuts.** "live" ends now; "delayed" ends `DELAY` (7 days) ago. A purchase fixes its content: the cut's
  end time and the highest row id of every table it reads at that moment (`bounds`), so later rows,
  back-filled trades included, never enter it and every download gives the same file.
* **Price** (exact Decimal, whole cents; the brief's "dynamic pricing based on data freshness"):
  ``base × blocks × freshness``, where base = `API_PRICES["datasets"]` ($0.50), blocks = started blocks
  of `ROWS_PER_BLOCK` (10,000) rows (at least one) and freshness = 2 for "live", 1 for "delayed";
  rounded up to a whole cent. E.g. 25,000 rows live: $0.50 × 3 × 2 = $3.00; delayed: $1.50.
* **Buying**: through the payment core (`DatasetShop` places an order with the quote in its details;
  `DatasetFulfiller` turns the paid order into a purchase, once) or with API credit (`buy_with_credit`:
  the purchase row and its ledger charge, cause ("dataset", ref), in one transaction: never twice, never
  below zero).
* **Delivery**: a link signed with HMAC-SHA256 over (purchase id, format, expiry), valid `LINK_TTL`
  (24 h). The key is HMAC-SHA256(TELEGRAM_BOT_TOKEN, "datasets"): every replica derives the same key and
  links outlive restarts; a new bot token voids the links (a fresh one is a tap in /data). With an
  S3-compatible store (DATASETS_S3_*; services.dataset_store) the links are presigned GET URLs instead,
  valid LINK_TTL: each format's export is uploaded once under `object_key` (fixed by the purchase) before
  its first link is given, and a refund deletes the objects (S3 cannot revoke a single presigned URL).
* **Export** never blocks the event loop: rows are read in batches (`BATCH` rows) and encoded in a worker
  thread; CSV streams batch by batch, Parquet is written to a spooled temporary file (one row group per
  batch) and then streamed. Decimal amounts are exported as their exact text.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import io
import math
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from aiogram.utils.i18n import lazy_gettext as __
from sqlalchemy import and_, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import utcnow
from db.engine import Database
from db.models import Order
from db.models_datasets import DatasetPurchase
from db.models_signals import Signal, SignalEvent
from db.models_whales import WhaleTrade, WhaleWallet
from services.dataset_store import DatasetStore
from services.ledger import Cause, LedgerService
from services.orders import OrderService, Status
from services.products import Command, Delivery, MenuEntry, Product, TakenBack, Text, text
from services.whale_rankings import MIN_TRADES, PERIODS, WEIGHTS

if TYPE_CHECKING:
    from config.settings import Settings
    from services.products import ProductParts

PRODUCT = "dataset"
ROWS_PER_BLOCK = 10_000
DELAY = timedelta(days=7)
FRESHNESS: dict[str, Decimal] = {"live": Decimal(2), "delayed": Decimal(1)}  # price factor per cut
CUTS: dict[str, timedelta] = {"live": timedelta(0), "delayed": DELAY}  # how long before now a cut ends
FORMATS: dict[str, str] = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
LINK_TTL = timedelta(hours=24)
BATCH = 5_000
CATALOGUE_TTL = 60.0  # seconds the listing's counts are reused (a purchase always counts afresh)
CENT = Decimal("0.01")

Row = tuple[Any, ...]
Column = tuple[str, pa.DataType]


def price_of(base: Decimal, rows: int, cut: str) -> Decimal:
    """`base` × started blocks of ROWS_PER_BLOCK rows (at least one) × the cut's freshness factor, rounded
    up to a whole cent."""
    blocks = max(1, math.ceil(rows / ROWS_PER_BLOCK))
    return (base * blocks * FRESHNESS[cut]).quantize(CENT, rounding=ROUND_CEILING)


@dataclass(frozen=True, slots=True)
class Cut:
    """A dataset's content: rows up to `end` (their time) and up to `bounds` (highest id per table)."""

    end: datetime
    bounds: Mapping[str, int]


class Source(Protocol):
    """One dataset. `columns` are (name, Arrow type); `rows` yields tuples in that order, in a fixed
    order, in batches; both read only what `cut` holds."""

    id: str
    title: Text
    description: Text
    columns: tuple[Column, ...]

    async def bounds(self, session: AsyncSession) -> dict[str, int]: ...

    async def count(self, session: AsyncSession, cut: Cut) -> int: ...

    def rows(self, db: Database, cut: Cut) -> AsyncIterator[list[Row]]: ...


async def _max_id(session: AsyncSession, column) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(column), 0))) or 0)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _usd(cents: int) -> str:
    return format(Decimal(cents) / 100, "f")


TS = pa.timestamp("us", tz="UTC")


class SignalHistory:
    """Every signal and its events, one row each: a signal's row has event "signal" (its entry as price,
    its receive time as time); its events (tp_hit with level, sl_hit, closed) follow it in time order, with the
    time the sender claims the price was reached (`claimed_at`, empty when it did not say; hashed when given)."""

    id = "signals"
    title = __("Signal history with events")
    description = __("Every signal (entry, targets, stop) and what happened to it (targets hit, stop hit, "
                     "closed), with prices, times and the hash chain.")
    columns: tuple[Column, ...] = (
        ("signal_id", pa.int64()), ("external_id", pa.string()), ("ecosystem", pa.string()),
        ("symbol", pa.string()), ("side", pa.string()), ("entry", pa.string()), ("take_profits", pa.string()),
        ("stop_loss", pa.string()), ("timeframe", pa.string()), ("event", pa.string()), ("level", pa.int32()),
        ("price", pa.string()), ("at", TS), ("hash", pa.string()), ("claimed_at", TS))

    async def bounds(self, session: AsyncSession) -> dict[str, int]:
        return {"signals": await _max_id(session, Signal.id), "signal_events": await _max_id(session, SignalEvent.id)}

    @staticmethod
    def _signals(cut: Cut):
        return and_(Signal.id <= cut.bounds.get("signals", 0), Signal.received_at <= cut.end,
                    Signal.provider_id.is_(None))  # the house's signals: a provider's are its subscribers'

    @staticmethod
    def _events(cut: Cut):
        return and_(SignalEvent.id <= cut.bounds.get("signal_events", 0), SignalEvent.received_at <= cut.end)

    async def count(self, session: AsyncSession, cut: Cut) -> int:
        signals = await session.scalar(select(func.count()).select_from(Signal).where(self._signals(cut)))
        events = await session.scalar(select(func.count()).select_from(SignalEvent).join(
            Signal, Signal.id == SignalEvent.signal_id).where(self._signals(cut), self._events(cut)))
        return int(signals or 0) + int(events or 0)

    async def rows(self, db: Database, cut: Cut) -> AsyncIterator[list[Row]]:
        after = 0
        while True:
            async with db.session() as session:
                signals = list((await session.scalars(
                    select(Signal).where(self._signals(cut), Signal.id > after).order_by(Signal.id)
                    .limit(BATCH))).all())
                if not signals:
                    return
                events: dict[int, list[SignalEvent]] = {}
                for event in (await session.scalars(
                        select(SignalEvent).where(SignalEvent.signal_id.in_([s.id for s in signals]),
                                                  self._events(cut))
                        .order_by(SignalEvent.received_at, SignalEvent.id))).all():
                    events.setdefault(event.signal_id, []).append(event)
            batch: list[Row] = []
            for s in signals:
                head = (s.id, s.external_id, s.ecosystem, s.symbol, s.side, _text(s.entry),
                        ";".join(str(tp) for tp in s.take_profits), _text(s.stop_loss), s.timeframe)
                batch.append((*head, "signal", 0, _text(s.entry), s.received_at, s.hash, None))
                batch.extend((*head, e.type, e.level, _text(e.price), e.received_at, e.hash, e.claimed_at)
                             for e in events.get(s.id, ()))
            yield batch
            after = signals[-1].id


class WhaleTrades:
    """Every whale trade (wallet address and chain, not the label an admin may change later)."""

    id = "whale_trades"
    title = __("Whale trades")
    description = __("Every whale trade: wallet, chain, symbol, side, USD value, realised P/L and time.")
    columns: tuple[Column, ...] = (
        ("trade_id", pa.int64()), ("external_id", pa.string()), ("chain", pa.string()), ("wallet", pa.string()),
        ("symbol", pa.string()), ("side", pa.string()), ("usd_value", pa.string()), ("pnl_usd", pa.string()),
        ("ts", TS))

    async def bounds(self, session: AsyncSession) -> dict[str, int]:
        return {"whale_trades": await _max_id(session, WhaleTrade.id)}

    @staticmethod
    def _where(cut: Cut):
        return and_(WhaleTrade.id <= cut.bounds.get("whale_trades", 0), WhaleTrade.ts <= cut.end)

    async def count(self, session: AsyncSession, cut: Cut) -> int:
        return int(await session.scalar(select(func.count()).select_from(WhaleTrade).where(self._where(cut))) or 0)

    async def rows(self, db: Database, cut: Cut) -> AsyncIterator[list[Row]]:
        after = 0
        while True:
            async with db.session() as session:
                found = (await session.execute(
                    select(WhaleTrade.id, WhaleTrade.external_id, WhaleWallet.chain, WhaleWallet.address,
                           WhaleTrade.symbol, WhaleTrade.side, WhaleTrade.usd_value, WhaleTrade.pnl_usd, WhaleTrade.ts)
                    .join(WhaleWallet, WhaleWallet.id == WhaleTrade.wallet_id)
                    .where(self._where(cut), WhaleTrade.id > after).order_by(WhaleTrade.id).limit(BATCH))).all()
            if not found:
                return
            yield [(r[0], r[1], r[2], r[3], r[4], r[5], _text(r[6]), _text(r[7]), r[8]) for r in found]
            after = found[-1][0]


class WhaleRanking:
    """The whale ranking of a period as it stood at the cut's end, computed from the trades the cut holds
    with the leaderboard's rules (services.whale_rankings: at least MIN_TRADES trades, composite score of
    percentile ranks), best score first."""

    columns: tuple[Column, ...] = (
        ("rank", pa.int32()), ("chain", pa.string()), ("wallet", pa.string()), ("trades", pa.int32()),
        ("realised_pnl_usd", pa.string()), ("volume_usd", pa.string()), ("win_rate", pa.float64()),
        ("roi", pa.float64()), ("score", pa.float64()))

    def __init__(self, period: str, title: Text) -> None:
        self.period, self.id, self.title = period, f"whale_rankings_{period}", title
        self.description = __("Whale wallets ranked by composite score (P/L, ROI, win rate, volume), with "
                               "their figures; wallets with at least 5 trades in the period.")

    async def bounds(self, session: AsyncSession) -> dict[str, int]:
        return {"whale_trades": await _max_id(session, WhaleTrade.id)}

    def _aggregate(self, cut: Cut):
        where = [WhaleTrade.id <= cut.bounds.get("whale_trades", 0), WhaleTrade.ts <= cut.end]
        span = PERIODS[self.period]
        if span is not None:  # as the boards: "7d" is the end's UTC day and the six before it
            first = cut.end.date() - span + timedelta(days=1)
            where.append(WhaleTrade.ts >= datetime(first.year, first.month, first.day, tzinfo=cut.end.tzinfo))
        realised = WhaleTrade.pnl_cents.is_not(None)
        return (select(WhaleTrade.wallet_id, func.count().label("trades"),
                       func.sum(case((realised, 1), else_=0)).label("closed"),
                       func.sum(case((WhaleTrade.pnl_cents > 0, 1), else_=0)).label("wins"),
                       func.sum(WhaleTrade.usd_cents).label("volume"),
                       func.sum(func.coalesce(WhaleTrade.pnl_cents, 0)).label("pnl"),
                       func.sum(case((realised, WhaleTrade.usd_cents - WhaleTrade.pnl_cents), else_=0)).label("cost"))
                .where(*where).group_by(WhaleTrade.wallet_id).having(func.count() >= MIN_TRADES))

    async def count(self, session: AsyncSession, cut: Cut) -> int:
        return int(await session.scalar(select(func.count()).select_from(self._aggregate(cut).subquery())) or 0)

    async def rows(self, db: Database, cut: Cut) -> AsyncIterator[list[Row]]:
        agg = self._aggregate(cut).subquery()
        async with db.session() as session:
            found = (await session.execute(
                select(agg, WhaleWallet.chain, WhaleWallet.address).join(WhaleWallet, WhaleWallet.id == agg.c.wallet_id)
            )).all()
        if found:  # PostgreSQL sums bigints as numeric: make every figure an int
            yield await asyncio.to_thread(ranked, [(*(int(v) for v in r[:7]), r[7], r[8]) for r in found])


def _percent_ranks(values: list[float]) -> list[float]:
    """SQL PERCENT_RANK over ascending `values`: (rank - 1) / (n - 1), ties sharing the lowest rank."""
    n = len(values)
    ordered = sorted(values)
    first: dict[float, int] = {}
    for i, value in enumerate(ordered):
        first.setdefault(value, i)
    return [0.0 if n == 1 else first[v] / (n - 1) for v in values]


def ranked(rows: list[tuple]) -> list[Row]:
    """Ranking rows from (wallet_id, trades, closed, wins, volume, pnl, cost, chain, address) aggregates:
    the composite score as the leaderboard computes it, ordered by score, then P/L, then wallet id."""
    win_rates = [r[3] / r[2] if r[2] else None for r in rows]
    rois = [r[5] / r[6] if r[6] > 0 else None for r in rows]
    sortable = {"pnl": [float(r[5]) for r in rows], "volume": [float(r[4]) for r in rows],
                "winrate": [-1.0 if w is None else w for w in win_rates],
                "roi": [-1e18 if x is None else x for x in rois]}
    ranks = {name: _percent_ranks(values) for name, values in sortable.items()}
    scores = [100.0 if len(rows) == 1 else 100 * sum(WEIGHTS[n] * ranks[n][i] for n in WEIGHTS)
              for i in range(len(rows))]
    order = sorted(range(len(rows)), key=lambda i: (-scores[i], -rows[i][5], rows[i][0]))
    return [(rank, rows[i][7], rows[i][8], int(rows[i][1]), _usd(int(rows[i][5])), _usd(int(rows[i][4])),
             win_rates[i], rois[i], round(scores[i], 4)) for rank, i in enumerate(order, start=1)]


SOURCES: dict[str, Source] = {source.id: source for source in (
    SignalHistory(), WhaleTrades(), WhaleRanking("7d", __("Whale ranking, 7 days")),
    WhaleRanking("30d", __("Whale ranking, 30 days")), WhaleRanking("all", __("Whale ranking, all time")))}
"""The datasets on sale, in listing order. Market data: add its Source here."""


# Exports ------------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _csv_chunk(rows: Iterable[Row], header: list[str] | None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue().encode()


def _table(schema: pa.Schema, rows: list[Row]) -> pa.Table:
    return pa.Table.from_arrays([pa.array([row[i] for row in rows], type=field.type)
                                 for i, field in enumerate(schema)], schema=schema)


async def export(db: Database, source: Source, cut: Cut, fmt: str, *, chunk: int = 256 * 1024
                 ) -> AsyncIterator[bytes]:
    """The dataset's bytes in `fmt`, in pieces; encoding runs in a worker thread."""
    if fmt == "csv":
        header: list[str] | None = [name for name, _type in source.columns]
        async for rows in source.rows(db, cut):
            yield await asyncio.to_thread(_csv_chunk, rows, header)
            header = None
        if header is not None:  # no rows: the header alone
            yield await asyncio.to_thread(_csv_chunk, [], header)
        return
    schema = pa.schema([pa.field(name, kind) for name, kind in source.columns])
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as sink:
        writer = pq.ParquetWriter(sink, schema)
        try:
            async for rows in source.rows(db, cut):
                await asyncio.to_thread(lambda rows=rows: writer.write_table(_table(schema, rows)))
        finally:
            await asyncio.to_thread(writer.close)
        sink.seek(0)
        while piece := await asyncio.to_thread(sink.read, chunk):
            yield piece


# Signed links -----------------------------------------------------------------------------------------


def link_key(bot_token: str) -> bytes:
    """The links' HMAC key: derived from the bot token, so every replica agrees and restarts keep links."""
    return hmac.new(bot_token.encode(), b"datasets", hashlib.sha256).digest()


class LinkRefused(Exception):
    """A download link that serves nothing: `status` 403 (tampered or malformed) or 410 (expired or
    refunded), with a problem title and detail."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class LinkSigner:
    """Tokens ``<purchase id>.<format>.<expiry, unix seconds>.<signature>``; the signature is URL-safe
    base64 of HMAC-SHA256 over the first three parts."""

    def __init__(self, key: bytes, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.key, self.clock = key, clock

    def _sign(self, payload: str) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.key, payload.encode(), hashlib.sha256).digest()
                                        ).rstrip(b"=").decode()

    def token(self, purchase_id: int, fmt: str, expires: datetime) -> str:
        payload = f"{purchase_id}.{fmt}.{int(expires.timestamp())}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> tuple[int, str]:
        """(purchase id, format) of a genuine, unexpired token; LinkRefused otherwise."""
        parts = token.split(".")
        tampered = LinkRefused(403, "Invalid download link",
                               "This link is not valid. Open /data in the bot for a new one.")
        if len(parts) != 4 or not parts[0].isdigit() or parts[1] not in FORMATS or not parts[2].isdigit():
            raise tampered
        if not hmac.compare_digest(self._sign(".".join(parts[:3])), parts[3]):
            raise tampered
        if int(parts[2]) < self.clock().timestamp():
            raise LinkRefused(410, "Download link expired",
                              "This link has expired (links last 24 hours). Open /data in the bot for a new one.")
        return int(parts[0]), parts[1]


# Catalogue, purchases ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """A dataset at one cut, priced now."""

    dataset: str
    cut: str
    end: datetime
    bounds: dict[str, int]
    rows: int
    price: Decimal

    def as_dict(self) -> dict[str, Any]:
        """The quote as JSON values (for `GET /api/v1/datasets`)."""
        return {"id": self.dataset, "cut": self.cut, "ends_at": self.end.isoformat(), "rows": self.rows,
                "price_usd": str(self.price), "formats": list(FORMATS)}


class DatasetProblem(StrEnum):
    """Why a dataset was not sold."""

    UNKNOWN = "unknown_dataset"
    EMPTY = "empty"
    INSUFFICIENT_CREDIT = "insufficient_credit"
    KEY_REUSED = "key_reused"  # the idempotency key bought another dataset or cut


@dataclass(frozen=True, slots=True)
class CreditPurchase:
    """The answer to buying with API credit: the purchase (None when refused) and why not."""

    purchase: DatasetPurchase | None = None
    problem: DatasetProblem | None = None
    charged: bool = False  # False: the same ref was bought before (nothing charged again)
    price: Decimal | None = None  # what it costs (also when the credit did not cover it)


class DatasetService:
    """Quotes, purchases and their downloads. `public_url(path)` makes a link absolute."""

    def __init__(self, db: Database, ledger: LedgerService, *, base_price: Decimal, link_key: bytes,
                 public_url: Callable[[str], str], clock: Callable[[], datetime] = utcnow,
                 sources: Mapping[str, Source] | None = None, store: DatasetStore | None = None) -> None:
        self.db, self.ledger, self.base_price, self.clock = db, ledger, base_price, clock
        self.public_url, self.store = public_url, store
        self.sources = dict(SOURCES if sources is None else sources)
        self.signer = LinkSigner(link_key, clock=clock)
        self._listing: tuple[float, list[Quote]] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, ledger: LedgerService) -> DatasetService:
        """Priced at API_PRICES["datasets"], links signed with the key derived from the bot token and made
        absolute with PUBLIC_BASE_URL (without it: this machine's WEB_PORT); presigned URLs to the object
        store instead when DATASETS_S3_* name one."""
        base = settings.http_base_url or "http://127.0.0.1"
        token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
        return cls(db, ledger, base_price=settings.api_prices["datasets"], link_key=link_key(token),
                   public_url=lambda path: f"{base}{path}", store=DatasetStore.from_settings(settings))

    def source(self, dataset: str) -> Source | None:
        return self.sources.get(dataset)

    async def quote(self, dataset: str, cut: str, *, session: AsyncSession | None = None) -> Quote | None:
        """`dataset` at `cut` as it stands now (None: no such dataset or cut)."""
        source = self.sources.get(dataset)
        if source is None or cut not in CUTS:
            return None
        if session is None:
            async with self.db.session() as own:
                return await self.quote(dataset, cut, session=own)
        bounds = await source.bounds(session)
        content = Cut(self.clock() - CUTS[cut], bounds)
        rows = await source.count(session, content)
        return Quote(dataset, cut, content.end, bounds, rows, price_of(self.base_price, rows, cut))

    async def catalogue(self) -> list[Quote]:
        """Every dataset at every cut, priced (counts reused for CATALOGUE_TTL seconds)."""
        now = time.monotonic()
        if self._listing is not None and now - self._listing[0] < CATALOGUE_TTL:
            return self._listing[1]
        listing = []
        async with self.db.session() as session:
            for dataset in self.sources:
                for cut in CUTS:
                    listing.append(await self.quote(dataset, cut, session=session))
        self._listing = (now, listing)
        return listing

    @staticmethod
    def _insert(session: AsyncSession):
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        return dialect.insert(DatasetPurchase.__table__)

    async def _record(self, session: AsyncSession, *, ref: str, user_id: int, dataset: str, cut: str,
                      end: datetime, bounds: Mapping[str, int], rows: int, price: Decimal, paid_with: str,
                      order_id: int | None = None) -> tuple[DatasetPurchase, bool]:
        """The purchase under `ref`, inserted unless it exists; True when inserted now."""
        new_id = await session.scalar(
            self._insert(session).values(
                ref=ref, user_id=user_id, dataset=dataset, cut=cut, cutoff_at=end, bounds=dict(bounds), rows=rows,
                price=price, paid_with=paid_with, order_id=order_id, created_at=self.clock())
            .on_conflict_do_nothing(index_elements=["ref"]).returning(DatasetPurchase.id))
        purchase = await session.scalar(select(DatasetPurchase).where(DatasetPurchase.ref == ref))
        return purchase, new_id is not None

    async def buy_with_credit(self, user_id: int, dataset: str, cut: str, key: str) -> CreditPurchase:
        """Buy `dataset` at `cut` now, paid from the user's API credit. `key` (the client's idempotency
        key, up to 64 characters) names the purchase: the same key buys once and is charged once, however
        often and concurrently it is sent (another dataset or cut under a used key: "key_reused"). The
        content is counted and priced in a read first (its bounds fix it), so the write transaction only
        records the purchase and its charge, together or neither (too little credit: "insufficient_credit",
        nothing written)."""
        ref = f"credit:{user_id}:{key}"
        async with self.db.session() as session:
            existing = await session.scalar(select(DatasetPurchase).where(DatasetPurchase.ref == ref))
            quote = None if existing is not None else await self.quote(dataset, cut, session=session)
        if existing is not None:
            return self._again(existing, dataset, cut)
        if quote is None:
            return CreditPurchase(problem=DatasetProblem.UNKNOWN)
        if quote.rows == 0:
            return CreditPurchase(problem=DatasetProblem.EMPTY)
        try:
            async with self.db.transaction() as session:
                purchase, inserted = await self._record(
                    session, ref=ref, user_id=user_id, dataset=dataset, cut=cut, end=quote.end,
                    bounds=quote.bounds, rows=quote.rows, price=quote.price, paid_with="credit")
                if not inserted:  # a concurrent call with the same key won
                    return self._again(purchase, dataset, cut)
                if not await self.ledger.charge_in(session, user_id, quote.price, Cause("dataset", ref)):
                    raise _NoCredit
        except _NoCredit:
            return CreditPurchase(problem=DatasetProblem.INSUFFICIENT_CREDIT, price=quote.price)
        return CreditPurchase(purchase, charged=True, price=quote.price)

    @staticmethod
    def _again(purchase: DatasetPurchase, dataset: str, cut: str) -> CreditPurchase:
        """A key used before: its purchase when it named the same dataset and cut, else refused."""
        if (purchase.dataset, purchase.cut) != (dataset, cut):
            return CreditPurchase(problem=DatasetProblem.KEY_REUSED)
        return CreditPurchase(purchase, price=purchase.price)

    async def purchase(self, purchase_id: int) -> DatasetPurchase | None:
        async with self.db.session() as session:
            return await session.get(DatasetPurchase, purchase_id)

    async def purchases(self, user_id: int, limit: int = 10) -> list[DatasetPurchase]:
        """The user's datasets still downloadable, newest first."""
        async with self.db.session() as session:
            return list((await session.scalars(
                select(DatasetPurchase).where(DatasetPurchase.user_id == user_id, DatasetPurchase.revoked_at.is_(None))
                .order_by(DatasetPurchase.id.desc()).limit(limit))).all())

    async def links(self, purchase: DatasetPurchase) -> dict[str, str]:
        """Download links of the purchase, one per format, valid LINK_TTL from now: signed links to
        GET /data/{token}, or with an object store presigned URLs to its uploaded exports (uploaded here the
        first time; StoreUnavailable when the store cannot be reached)."""
        if self.store is None:
            expires = self.clock() + LINK_TTL
            return {fmt: self.public_url(f"/data/{self.signer.token(purchase.id, fmt, expires)}") for fmt in FORMATS}
        source = self.sources.get(purchase.dataset)
        links = {}
        for fmt, content_type in FORMATS.items():
            key = self.object_key(purchase, fmt)
            if source is not None:
                await self.store.put_once(key, self.export(purchase, fmt, source), content_type)
            links[fmt] = self.store.presign(key, self.filename(purchase, fmt), LINK_TTL)
        return links

    @classmethod
    def object_key(cls, purchase: DatasetPurchase, fmt: str) -> str:
        """Where a purchase's export lives in the object store: one key per purchase (its cut) and format."""
        return f"datasets/{cls.filename(purchase, fmt)}"

    async def receipt(self, purchase: DatasetPurchase) -> dict[str, Any]:
        """A purchase as JSON values with fresh links (for the API's answer to a credit purchase)."""
        return {"purchase_id": purchase.id, "id": purchase.dataset, "cut": purchase.cut,
                "ends_at": purchase.cutoff_at.isoformat(), "rows": purchase.rows,
                "price_usd": str(purchase.price.quantize(CENT)),
                "links": await self.links(purchase), "links_expire_at": (self.clock() + LINK_TTL).isoformat()}

    async def open(self, token: str) -> tuple[DatasetPurchase, str, Source]:
        """What a link serves: (purchase, format, source); LinkRefused for a bad, expired or refunded one."""
        purchase_id, fmt = self.signer.verify(token)
        purchase = await self.purchase(purchase_id)
        source = self.sources.get(purchase.dataset) if purchase is not None else None
        if purchase is None or source is None:
            raise LinkRefused(410, "Dataset not available", "This dataset is no longer available.")
        if purchase.revoked_at is not None:
            raise LinkRefused(410, "Dataset refunded", "This purchase was refunded; its links no longer work.")
        return purchase, fmt, source

    def export(self, purchase: DatasetPurchase, fmt: str, source: Source) -> AsyncIterator[bytes]:
        return export(self.db, source, Cut(purchase.cutoff_at, purchase.bounds), fmt)

    @staticmethod
    def filename(purchase: DatasetPurchase, fmt: str) -> str:
        return f"{purchase.dataset}-{purchase.cut}-{purchase.cutoff_at:%Y%m%dT%H%M%SZ}-{purchase.id}.{fmt}"

    async def from_order(self, order: Order) -> DatasetPurchase:
        """The purchase a paid order bought (made once; the quote in the order's details fixes its content)."""
        d = order.details or {}
        async with self.db.transaction() as session:
            purchase, _new = await self._record(
                session, ref=f"order:{order.id}", user_id=order.user_id, dataset=d["dataset"], cut=d["cut"],
                end=datetime.fromisoformat(d["ends_at"]), bounds=d["bounds"], rows=int(d["rows"]),
                price=Decimal(d["price_usd"]), paid_with="order", order_id=order.id)
        return purchase

    async def revoke_order(self, order_id: int) -> bool:
        """Switch off the downloads of an order's purchase; True if it exists (revoked now or before). With
        an object store its objects are deleted too (after the commit; StoreUnavailable makes the refund's
        take-back retry, and deleting again is harmless)."""
        async with self.db.transaction() as session:
            await session.execute(update(DatasetPurchase).where(
                DatasetPurchase.order_id == order_id, DatasetPurchase.revoked_at.is_(None)
            ).values(revoked_at=self.clock()))
            purchase = await session.scalar(select(DatasetPurchase).where(DatasetPurchase.order_id == order_id))
        if purchase is not None and self.store is not None:
            await self.store.delete([self.object_key(purchase, fmt) for fmt in FORMATS])
        return purchase is not None


class _NoCredit(Exception):
    """Rolls back a credit purchase whose charge was refused."""


# The product (payment core) ---------------------------------------------------------------------------


class DatasetShop:
    def __init__(self, datasets: DatasetService, orders: OrderService, *, ttl: timedelta) -> None:
        self.datasets, self.orders, self.ttl = datasets, orders, ttl

    async def place(self, user_id: int, dataset: str, cut: str) -> tuple[Order | None, DatasetProblem | None]:
        """The pending order for `dataset` at `cut`, priced and cut now; or why not ("unknown_dataset",
        "empty")."""
        quote = await self.datasets.quote(dataset, cut)
        if quote is None:
            return None, DatasetProblem.UNKNOWN
        if quote.rows == 0:
            return None, DatasetProblem.EMPTY
        order = await self.orders.create(
            user_id=user_id, product=PRODUCT, product_ref=f"{dataset}:{cut}", ttl=self.ttl,
            amount_cents=int(quote.price * 100), title=f"{text(self.datasets.sources[dataset].title)} · {cut}",
            details={"dataset": dataset, "cut": cut, "ends_at": quote.end.isoformat(), "bounds": quote.bounds,
                     "rows": quote.rows, "price_usd": str(quote.price)})
        return order, None


class DatasetWording(Protocol):
    """How the fulfiller's results are put to people (presentation.datasets.DatasetTexts), in the reader's
    locale."""

    def delivered(self, purchase: DatasetPurchase, links: dict[str, str]) -> str: ...

    def link_label(self) -> str: ...

    def takes_back(self) -> str: ...

    def taken_back(self, had: bool) -> str: ...

    def order_line(self) -> str:
        """An /orders line under a fulfilled dataset order (plain text)."""
        ...


class DatasetFulfiller:
    """A paid order becomes a purchase (once per order) and its links are sent; a refund stops its links."""

    product = PRODUCT

    def __init__(self, datasets: DatasetService, wording: DatasetWording) -> None:
        self.datasets, self.wording = datasets, wording

    async def fulfil(self, order: Order) -> Delivery:
        purchase = await self.datasets.from_order(order)
        links = await self.datasets.links(purchase)  # an unreachable store fails the job: fulfilment retries
        return Delivery(text=lambda: self.wording.delivered(purchase, links),
                        record={"purchase_id": purchase.id, "rows": purchase.rows},
                        link=lambda: (self.wording.link_label(), links["csv"]))

    def takes_back(self, order: Order) -> str:
        return self.wording.takes_back()

    async def revoke(self, order: Order) -> TakenBack:
        had = await self.datasets.revoke_order(order.id)
        return TakenBack(lambda: self.wording.taken_back(had), {"links_off": had})


def dataset_product(parts: ProductParts, datasets: DatasetService, wording: DatasetWording) -> Product:
    """Datasets as the app sells them, told in `wording` (handlers: handlers/user/data.py)."""

    async def order_lines(orders: list[Order]) -> dict[int, list[str]]:
        return {o.id: [wording.order_line()] for o in orders if o.product == PRODUCT and o.status == Status.FULFILLED}

    return Product(
        id=PRODUCT, name=__("Dataset"), fulfiller=DatasetFulfiller(datasets, wording), order_lines=order_lines,
        menu=MenuEntry("data", __("📦 Datasets")),
        commands=(Command("data", __("Datasets: signal history, whale trades and rankings"),
                          help=__("/data — datasets for sale (CSV and Parquet) and your downloads")),))
