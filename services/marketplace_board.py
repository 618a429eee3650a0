"""/market's board and a provider's card, from the stored signals and events (the platform's arrival times):
the ranking (services.marketplace_ranking) of every approved provider, sorted and filtered, and a provider's
figures for 30 / 90 days / all time with its equity curve and integrity flags (services.marketplace_integrity).

The board is computed for all providers at once from each one's kept record (services.marketplace_rollups: a
row per provider, kept in step as its signals arrive and close, and what its subscribers got, kept by the last
ranking while the record is unchanged), so a recompute reads a few thousand rows, not every signal. Each
computed board is also kept in the database (MarketBoardSnapshot), so a process that has just started (or
whose own board expired) serves the leader's board while it is younger than `ttl`. It is served from memory
for `ttl` seconds, like the whale boards (services.whale_rankings): a scheduler job recomputes it before it
expires, and views meanwhile are served the previous one; sorted orders are kept per sort key, so a page is a
filter and a slice. A change to a provider's row (approved, suspended, renamed, repriced) has the next view
redo that provider's entry only; the others keep the figures of the board's time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from db import changes
from db.base import utcnow
from db.engine import Database
from db.models_marketplace import Provider, ProviderSubscription
from db.models_provider_records import MarketBoardSnapshot
from db.models_signals import Signal, SignalEvent
from services import marketplace_integrity, marketplace_ranking, marketplace_rollups, track_record
from services.marketplace import State
from services.marketplace_ranking import Closed, PeriodFigures, Score

SORTS = ("score", "price", "winrate", "drawdown")
PRICE_CAPS: tuple[int | None, ...] = (None, 1000, 2500, 5000, 10000)  # cents a month
WIN_FLOORS: tuple[Decimal | None, ...] = (None, Decimal("0.5"), Decimal("0.6"), Decimal("0.7"))
DRAWDOWN_CAPS: tuple[Decimal | None, ...] = (None, Decimal("0.1"), Decimal("0.2"), Decimal("0.3"))
PAGE_SIZE = 10
log = logging.getLogger(__name__)
WAIT_FOR_FRESH = 2.0  # seconds a view waits for a board being recomputed before it gets the previous one


@dataclass(frozen=True, slots=True)
class Entry:
    """A provider on the board: all-time figures and its score (None while not ranked). `ecosystems`: the
    markets it declared and those of the signals it published."""

    provider_id: int
    name: str
    price_cents: int
    ecosystems: tuple[str, ...]
    subscribers: int
    score: Score
    closed: int
    win_rate: Decimal | None
    max_drawdown: Decimal
    cumulative_return: Decimal


@dataclass(frozen=True, slots=True)
class View:
    """What the reader chose: indexes into SORTS, PRICE_CAPS, WIN_FLOORS, DRAWDOWN_CAPS; "" for any market."""

    sort: int = 0
    ecosystem: str = ""
    price: int = 0
    win: int = 0
    drawdown: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[Entry]
    total: int  # matching the filters
    offset: int
    ecosystems: list[str]  # every approved provider's markets, for the filter


@dataclass(frozen=True, slots=True)
class Card:
    figures: dict[str, PeriodFigures]  # "30d", "90d", "all"
    equity: tuple[Decimal, ...]
    score: Score
    subscribers: int


def _ranked(e: Entry) -> tuple:
    return e.score.score is None, -(e.score.score or 0)


def _sort_key(name: str) -> Callable[[Entry], tuple]:
    """Best first; within equal values, the better score, then the name."""
    ranked = _ranked
    keys: dict[str, Callable[[Entry], tuple]] = {
        "score": lambda e: (*ranked(e), e.name.lower(), e.provider_id),
        "price": lambda e: (e.price_cents, *ranked(e), e.provider_id),
        "winrate": lambda e: (e.win_rate is None, -(e.win_rate or 0), *ranked(e), e.provider_id),
        "drawdown": lambda e: (e.closed == 0, e.max_drawdown, *ranked(e), e.provider_id),
    }
    return keys[name]


def matches(entry: Entry, view: View) -> bool:
    cap, floor, worst = PRICE_CAPS[view.price], WIN_FLOORS[view.win], DRAWDOWN_CAPS[view.drawdown]
    return ((not view.ecosystem or view.ecosystem in entry.ecosystems)
            and (cap is None or entry.price_cents <= cap)
            and (floor is None or (entry.win_rate is not None and entry.win_rate >= floor))
            and (worst is None or (entry.closed > 0 and entry.max_drawdown <= worst)))


def closed_of(signals: Sequence, events: Sequence) -> list[Closed]:
    """A chain's closed signals (track_record's rule), with the time each arrived."""
    by_signal: dict[int, list] = defaultdict(list)
    for event in events:
        by_signal[event.signal_id].append(event)
    found = []
    for signal in signals:
        trade = track_record.outcome(signal, by_signal.get(signal.id, ()))
        if trade is not None:
            found.append(Closed(signal.received_at, trade.closed_at, trade.ret, trade.r_multiple))
    return found


def _entry(row, score: Score, markets: Sequence[str], subscribers: int) -> Entry:
    figures = score.figures
    return Entry(row.id, row.name, row.price_cents, tuple(sorted(set(row.ecosystems or ()) | set(markets))),
                 subscribers, score, figures.trades, figures.win_rate, figures.max_drawdown,
                 figures.cumulative_return)


async def _read_records(session, kept: dict, starts: Sequence, now: datetime) -> tuple[dict, dict, list]:
    """What each subscriber got (from the kept sums, or the day rows), the history of the providers whose last
    close is later than `now` (ranked from their signals), and the sums to keep."""
    late = {pid for pid, record in kept.items() if record.last_closed_at is not None and record.last_closed_at > now}
    sums, to_keep = await marketplace_rollups.kept_sums(
        session, kept, [(pid, start) for pid, start in starts if pid in kept and pid not in late])
    raw = await marketplace_rollups.histories(session, sorted(late)) if late else {}
    return sums, raw, to_keep


_APPROVED = (select(Provider.id, Provider.name, Provider.price_cents, Provider.ecosystems)
             .where(Provider.status == State.APPROVED.value).order_by(Provider.id))


def _subscribers(now: datetime, provider_ids: Sequence[int] | None = None):
    """Per provider (all, or these) and subscriber: their start (their first period's, not refunded whole) and
    whether a period of theirs runs now."""
    query = (select(ProviderSubscription.provider_id, func.min(ProviderSubscription.starts_at),
                    func.max(ProviderSubscription.ends_at) > now)
             .where(ProviderSubscription.ends_at > ProviderSubscription.starts_at,
                    ProviderSubscription.starts_at <= now)
             .group_by(ProviderSubscription.provider_id, ProviderSubscription.user_id))
    return query if provider_ids is None else query.where(ProviderSubscription.provider_id.in_(provider_ids))


def _line_up(providers: Sequence) -> list[list]:
    return [[row.id, row.name, row.price_cents, list(row.ecosystems or ())] for row in providers]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _number(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _dump(entry: Entry) -> dict:
    """An entry as JSON, every Decimal as its exact text (the equity curve, which the board does not show, left
    out)."""
    score, figures = entry.score, entry.score.figures
    return dict(
        provider_id=entry.provider_id, name=entry.name, price_cents=entry.price_cents,
        ecosystems=list(entry.ecosystems), subscribers=entry.subscribers, score=_text(score.score),
        unranked=score.unranked.value if score.unranked else None,
        parts={name: str(part) for name, part in score.parts.items()}, monthly_return=str(score.monthly_return),
        subscribers_return=_text(score.subscribers_return),
        figures=[figures.trades, figures.wins, _text(figures.win_rate), _text(figures.avg_r),
                 str(figures.cumulative_return), str(figures.max_drawdown), _text(figures.sharpe)])


def _load(data: dict) -> Entry:
    trades, wins, win_rate, avg_r, cumulative, drawdown, sharpe = data["figures"]
    figures = track_record.Figures(trades, wins, _number(win_rate), _number(avg_r), Decimal(cumulative),
                                   Decimal(drawdown), _number(sharpe), ())
    score = Score(_number(data["score"]), marketplace_ranking.Unranked(data["unranked"]) if data["unranked"] else None,
                  {name: Decimal(part) for name, part in data["parts"].items()}, Decimal(data["monthly_return"]),
                  _number(data["subscribers_return"]), figures)
    return Entry(data["provider_id"], data["name"], data["price_cents"], tuple(data["ecosystems"]),
                 data["subscribers"], score, figures.trades, figures.win_rate, figures.max_drawdown,
                 figures.cumulative_return)


def _rank(providers: Sequence, kept: dict, starts: Sequence, sums: dict, raw: dict, counts: dict[int, int],
          now: datetime) -> list[Entry]:
    """The board's entries: from the records, or from the signals (`raw`) for a provider closed after `now`."""
    by_provider: dict[int, list[datetime]] = defaultdict(list)
    for pid, start in starts:
        by_provider[pid].append(start)
    entries = []
    for row in providers:
        mine = by_provider.get(row.id, [])
        if row.id in raw:
            history = raw[row.id]
            closed = [trade for _id, trade in history.closed]
            score = marketplace_ranking.score(closed, first_signal_at=history.first_signal_at,
                                              last_signal_at=history.last_signal_at, subscriber_starts=mine,
                                              now=now)
            entries.append(_entry(row, score, history.markets, counts.get(row.id, 0)))
            continue
        record = kept.get(row.id)
        standing = marketplace_rollups.standing_of(record if record is not None
                                                   else marketplace_rollups.new_record(row.id))
        score = marketplace_ranking.rate(standing.figures, standing.consistency,
                                         [(start, sums.get((row.id, start), Decimal(0))) for start in mine],
                                         first_signal_at=standing.first_signal_at,
                                         last_signal_at=standing.last_signal_at, now=now)
        entries.append(_entry(row, score, standing.markets, counts.get(row.id, 0)))
    return entries


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("recomputing the /market board failed", exc_info=task.exception())


class MarketBoard:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow, ttl: float = 0) -> None:
        self.db, self.clock, self.ttl = database, clock, ttl
        self._board: tuple[datetime, list[Entry]] | None = None
        self._sorted: dict[str, list[Entry]] = {}
        self._computing = asyncio.Lock()
        self._changed: set[int] | None = set()  # providers whose row changed since the board; None: any
        self._task: asyncio.Task | None = None
        # a provider approved, suspended, reinstated or repriced (here or, with REDIS_URL, on another replica:
        # services/invalidations.py): the next view redoes those providers' entries, so the board never shows a
        # stale line-up
        changes.watch(Provider, "id", self._provider_changed, database=database)

    def _provider_changed(self, ids: set | None) -> None:
        self._changed = None if ids is None or self._changed is None else self._changed | ids

    # -- the board --------------------------------------------------------------------------------------

    async def _entries(self, *, force: bool = False) -> list[Entry]:
        """The board: kept for `ttl` seconds, then replaced by a newer one the leader kept in the database if
        there is one. Providers changed meanwhile get their entries redone first (a few rows each). Expired (or
        changed in a way not told) with a board in hand and no newer kept one, a view waits up to WAIT_FOR_FRESH
        seconds for the recomputation (started once, whoever asks) and is otherwise served the previous board
        while it finishes."""
        now, board = self.clock(), self._board
        if force or self.ttl <= 0:
            return await self._recompute(now)
        if board is None or (now - board[0]).total_seconds() >= self.ttl:
            # just started, or kept here too long: the board the leader computed since, if there is one
            board = await self._restore(now) or board
        if board is None:
            return await self._recompute(now)
        if self._changed:
            board = await self._patch()
        if self._changed is not None and (now - board[0]).total_seconds() < self.ttl:
            return board[1]
        task = self._task
        if task is None or task.done():
            task = self._task = asyncio.get_running_loop().create_task(self._recompute(now))
            task.add_done_callback(_log_failure)
        try:
            return await asyncio.wait_for(asyncio.shield(task), WAIT_FOR_FRESH)
        except TimeoutError:
            return board[1]

    async def _recompute(self, asked_at: datetime) -> list[Entry]:
        async with self._computing:  # one computation at a time; who waited for it takes its result
            if self._board is not None and self._board[0] >= asked_at and self._changed == set():
                return self._board[1]
            now, self._changed = self.clock(), set()
            try:
                providers, entries = await self._compute(now)
            except BaseException:
                self._changed = None
                raise
            self._board, self._sorted = (now, entries), {}
            if self.ttl > 0:
                await self._save(now, providers, entries)
            return entries

    async def _patch(self) -> tuple[datetime, list[Entry]]:
        """The board in hand with the changed providers' entries redone (now) and those no longer approved left
        out; the others keep the figures of the board's time."""
        async with self._computing:
            changed, board = self._changed, self._board
            if not changed:  # done meanwhile, or a full recomputation is due
                return board
            self._changed = set()
            try:
                _providers, fresh = await self._compute(self.clock(), only=sorted(changed))
            except BaseException:
                self._changed = None if self._changed is None else self._changed | changed
                raise
            kept = [entry for entry in board[1] if entry.provider_id not in changed]
            self._board = (board[0], sorted([*kept, *fresh], key=lambda entry: entry.provider_id))
            self._sorted = {}
            return self._board

    async def _compute(self, now: datetime, *, only: Sequence[int] | None = None) -> tuple[list, list[Entry]]:
        """The approved providers (or only those of these) and their entries, from their kept records
        (services.marketplace_rollups): two rows per provider and one per subscriber (plus a day row for a
        subscriber whose sum is not kept yet), not the signals. Stale records are recomputed first; a provider
        whose last close is later than `now` (another replica's clock) is ranked from its signals."""
        async with self.db.session() as session:
            conn = await session.connection()
            providers = (await conn.execute(
                _APPROVED if only is None else _APPROVED.where(Provider.id.in_(only)))).all()
            subscribers = (await conn.execute(_subscribers(now, only))).all()
            starts = [(pid, start) for pid, start, _active in subscribers]
            counts = Counter(pid for pid, _start, active in subscribers if active)
            kept = await marketplace_rollups.records(session, [row.id for row in providers])
            stale = [pid for pid, record in kept.items() if record.stale]
            if not stale:
                sums, raw, to_keep = await _read_records(session, kept, starts, now)
        if stale:  # after the upgrade that added the records (once), or a close that came out of order
            await marketplace_rollups.rebuild_stale(self.db, stale)
            async with self.db.session() as session:
                kept = await marketplace_rollups.records(session, [row.id for row in providers])
                sums, raw, to_keep = await _read_records(session, kept, starts, now)
        if to_keep:
            await marketplace_rollups.keep_sums(self.db, to_keep)
        # the arithmetic in a worker thread: the event loop keeps serving meanwhile
        return providers, await asyncio.to_thread(_rank, providers, kept, starts, sums, raw, counts, now)

    async def page(self, view: View, *, offset: int = 0, limit: int = PAGE_SIZE) -> Page:
        entries = await self._entries()
        sort = SORTS[view.sort]
        ordered = self._sorted.get(sort)
        if ordered is None:
            ordered = self._sorted[sort] = sorted(entries, key=_sort_key(sort))
        chosen = [e for e in ordered if matches(e, view)]
        ecosystems = sorted({name for e in entries for name in e.ecosystems})
        return Page(chosen[offset:offset + limit], len(chosen), offset, ecosystems)

    async def refresh(self) -> bool:
        """Recompute the board (the leader's scheduler job, so views rarely pay for it) and keep it in the
        database for processes that start meanwhile; the old board is served until the new one is ready."""
        await self._entries(force=True)
        return True

    async def _save(self, now: datetime, providers: Sequence, entries: list[Entry]) -> None:
        """Keep the board computed at `now` for processes that start (unless a later one is kept already)."""
        values = dict(computed_at=now, line_up=_line_up(providers), entries=[_dump(e) for e in entries])
        table = MarketBoardSnapshot.__table__
        try:
            async with self.db.transaction() as session:
                await session.execute(self.db.insert(table).values(id=1, **values).on_conflict_do_update(
                    index_elements=["id"], set_=values, where=table.c.computed_at < now))
        except Exception:  # a view still gets its board; the next computation keeps one
            log.exception("keeping the /market board failed")

    async def _restore(self, now: datetime) -> tuple[datetime, list[Entry]] | None:
        """The kept board, if younger than `ttl` and newer than the one here (taken in its place); the providers
        whose row differs from the one it was computed for (approved, suspended, renamed, repriced since) are
        marked changed, so their entries are redone."""
        def wanted(computed_at: datetime | None) -> bool:
            return (computed_at is not None and 0 <= (now - computed_at).total_seconds() < self.ttl
                    and (self._board is None or computed_at > self._board[0]))

        async with self.db.session() as session:  # its time first: the board itself only when it will be taken
            if not wanted(await session.scalar(select(MarketBoardSnapshot.computed_at)
                                               .where(MarketBoardSnapshot.id == 1))):
                return None
            kept = await session.get(MarketBoardSnapshot, 1)
            providers = (await (await session.connection()).execute(_APPROVED)).all()
        if kept is None or not wanted(kept.computed_at):  # replaced meanwhile, here or there
            return None
        then = {row[0]: row for row in kept.line_up}
        current = {row[0]: row for row in _line_up(providers)}
        differ = {pid for pid in then.keys() | current.keys() if then.get(pid) != current.get(pid)}
        if differ:
            self._provider_changed(differ)
        self._board, self._sorted = (kept.computed_at, [_load(e) for e in kept.entries]), {}
        return self._board

    # -- a provider --------------------------------------------------------------------------------------

    async def card(self, provider_id: int) -> Card:
        """A provider's figures for 30 / 90 days / all time, its equity curve (all time) and its score, from its
        signals read as plain rows."""
        now = self.clock()
        async with self.db.session() as session:
            history = (await marketplace_rollups.histories(session, [provider_id]))[provider_id]
            found = (await session.execute(_subscribers(now, [provider_id]))).all()
        starts, subscribers = [start for _pid, start, _active in found], sum(1 for *_, active in found if active)
        closed = [trade for _id, trade in history.closed]
        figures = marketplace_ranking.card_figures(closed, history.times, now)
        score = marketplace_ranking.score(closed, first_signal_at=history.first_signal_at,
                                          last_signal_at=history.last_signal_at, subscriber_starts=starts, now=now)
        return Card(figures, figures["all"].figures.equity, score, subscribers)

    async def flags(self, provider_ids: Sequence[int]) -> dict[int, list[marketplace_integrity.Flag]]:
        """Integrity flags of these providers (the admins' /providers), from one read of their records."""
        if not provider_ids:
            return {}
        async with self.db.session() as session:
            signals = list(await session.scalars(select(Signal).where(Signal.provider_id.in_(provider_ids))))
            events = list(await session.scalars(select(SignalEvent)
                                                .where(SignalEvent.provider_id.in_(provider_ids))))
        by_signals: dict[int, list] = defaultdict(list)
        by_events: dict[int, list] = defaultdict(list)
        for signal in signals:
            by_signals[signal.provider_id].append(signal)
        for event in events:
            by_events[event.provider_id].append(event)
        return {pid: marketplace_integrity.flags(by_signals[pid], by_events[pid]) for pid in provider_ids}
