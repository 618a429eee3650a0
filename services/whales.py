"""Whale leaderboards: the wallet registry and trade ingest (rollups, alert queueing), composed with
the rankings (services/whale_rankings.py) and the follows and alert queue (services/whale_follows.py);
item validation is services/whale_input.py. Rendering is presentation/whales.py."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, tuple_, update

from db.base import utcnow
from db.engine import Database
from db.models_whales import WhaleDay, WhaleTotal, WhaleTrade, WhaleWallet
from services.group_commit import GroupCommit
from services.text import strip_invisible
from services.whale_follows import ALERT_MAX_AGE, CHUNK, WhaleFollows
from services.whale_input import (
    Invalid,
    Rejection,
    TradeIn,
    _text,
    normalise_wallet,
    parse_bool,
    parse_trade,
    parse_twitter,
)
from services.whale_rankings import MIN_TRADES, WhaleRankings

__all__ = ["ImportReport", "IngestReport", "Invalid", "WhaleService"]

INGEST_BATCH = 10  # most trade posts stored in one transaction (group commit), each up to MAX_BATCH trades


@dataclass
class IngestReport:
    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    alerts_queued: int = 0



@dataclass
class ImportReport:
    kind: str  # "wallets" | "trades"
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)



class WhaleService(WhaleRankings, WhaleFollows):
    """Ingest and the wallet registry; boards, cards, follows and alerts come from the two bases."""

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow,
                 min_trades: int = MIN_TRADES, ranking_ttl: float = 0) -> None:
        super().__init__(database, clock=clock, min_trades=min_trades, ranking_ttl=ranking_ttl)
        self._batches: GroupCommit[list[TradeIn], tuple[set[str], int]] = GroupCommit(
            self._store, limit=INGEST_BATCH, name="whales.ingest")

    def _insert(self, table):
        return self.db.insert(table)

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
        stored, report.alerts_queued = await self._batches.submit(valid)
        report.stored = [t.id for t in valid if t.id in stored]
        report.duplicates += [t.id for t in valid if t.id not in stored]
        return report

    async def _store(self, posts: list[list[TradeIn]]) -> list[tuple[set[str], int]]:
        """Store the new trades of several posts in ONE transaction (group commit); per post, the ids it
        stored (a trade sent by two posts at once counts for the first) and the alerts it queued."""
        now = self.clock()
        trades = [t for post in posts for t in post]
        async with self.db.transaction() as session:
            wallet_ids = await self._wallet_ids(session, trades, now)
            inserted: dict[str, int] = {}  # external id -> row id, for trades recent enough to alert on
            stored: set[str] = set()
            alertable = now - ALERT_MAX_AGE
            for start in range(0, len(trades), CHUNK):
                rows = [{"external_id": t.id, "wallet_id": wallet_ids[(t.wallet, t.chain)], "symbol": t.symbol,
                         "side": t.side, "usd_value": t.usd_value, "pnl_usd": t.pnl_usd,
                         "usd_cents": t.usd_cents, "pnl_cents": t.pnl_cents, "ts": t.ts, "received_at": now}
                        for t in trades[start:start + CHUNK]]
                # executemany of one cached statement (SQLAlchemy's insertmanyvalues batches it with RETURNING)
                result = await session.execute(self._trade_insert, rows)
                for trade_id, external_id, ts in result.all():
                    stored.add(external_id)
                    if ts >= alertable:
                        inserted[external_id] = trade_id
            by_id = {t.id: t for t in trades}
            await self._roll_up(session, [(wallet_ids[(t.wallet, t.chain)], t) for t in (by_id[i] for i in stored)])
            results = []
            for post in posts:
                mine = {t.id for t in post if t.id in stored}
                stored -= mine
                alerts = [inserted[i] for i in mine if i in inserted]
                results.append((mine, await self._queue_alerts(session, alerts, now) if alerts else 0))
            return results

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

