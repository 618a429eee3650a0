"""Each marketplace provider's record (db.models_provider_records), kept in step with its signals so that /market's
ranking reads one row per provider (and one per subscriber) instead of every signal and event.

* Written in the transaction that stores the signal (`record_signal`: first and last arrival, markets) or the event
  that closes it (`record_close`: the all-time figures, the week's sum, the day's sums). A retried event is refused
  before it is stored (duplicate, or already closed), and a rolled-back transaction takes its record change with
  it: each close counts exactly once. The record row is locked (FOR UPDATE on PostgreSQL; SQLite's writes are
  serial), and a provider's chain already admits one event at a time.
* The running figures repeat track_record.figures step by step in closing order (closing time, then signal id), so
  they are the very numbers a full recomputation gives. A close that does not come last in that order (clocks of
  two replicas a moment apart) marks the record stale instead; so does a close for a provider without a record.
* A stale record (every provider after the migration that added them) is recomputed from the stored signals by
  `rebuild_stale`, which the board runs before it ranks: a one-off cost after the upgrade.
* What a subscriber got since a moment (`got_since`): the exact sum of all closed returns minus the sum for the
  days before that moment's day (the day row's `before`) minus that day's signals that arrived before it. The
  ranking keeps what it worked out (`kept_sums`, a row per provider) for as long as the record is unchanged, so
  the next ranking, in this process or another, reads a row per provider instead of a day row per subscriber.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Row, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models_provider_records import (
    SLOTS,
    ProviderRecord,
    ProviderRecordDay,
    ProviderRecordWeek,
    ProviderSubscriberGains,
)
from db.models_signals import Signal, SignalEvent
from services import track_record
from services.marketplace_ranking import EXACT, Closed, consistency_of, exact_sum, week_of

log = logging.getLogger(__name__)
REBUILD_CHUNK = 20  # providers recomputed per transaction (on SQLite, writers wait for each)
LOOKUP_CHUNK = 5000  # day rows per query
EPOCH, MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class History:
    """A provider's stored signals, reduced: its closed signals in signal-id order (with their ids), its markets
    and every arrival."""

    closed: list[tuple[int, Closed]]
    markets: tuple[str, ...]
    times: list[datetime]  # every signal's arrival, in id order

    @property
    def first_signal_at(self) -> datetime | None:
        return min(self.times, default=None)

    @property
    def last_signal_at(self) -> datetime | None:
        return max(self.times, default=None)


@dataclass(frozen=True, slots=True)
class Standing:
    """What the ranking needs of a provider (marketplace_ranking.rate's inputs) besides the subscriber sums."""

    figures: track_record.Figures
    consistency: Decimal
    first_signal_at: datetime | None
    last_signal_at: datetime | None
    markets: tuple[str, ...]


def new_record(provider_id: int, *, stale: bool = False) -> ProviderRecord:
    return ProviderRecord(provider_id=provider_id, stale=stale, markets=[], closed=0, wins=0, ret_sum=Decimal(0),
                          ret_exact=Decimal(0),
                          level=Decimal(1), peak=Decimal(1), max_drawdown=Decimal(0), r_sum=Decimal(0), r_count=0,
                          weeks=0, positive_weeks=0)


def closing_order(trade: Closed, signal_id: int) -> tuple[datetime, int]:
    return trade.closed_at, signal_id


def append(record: ProviderRecord, trade: Closed, signal_id: int) -> None:
    """One more closed signal at the end of the closing order: track_record.figures' own steps."""
    record.closed += 1
    record.wins += 1 if trade.ret > 0 else 0
    record.ret_sum = record.ret_sum + trade.ret
    record.ret_exact = EXACT.add(record.ret_exact, trade.ret)
    level = record.level + trade.ret
    peak = max(record.peak, level)
    if peak > 0:
        record.max_drawdown = max(record.max_drawdown, (peak - level) / peak)
    record.level, record.peak = level, peak
    if trade.r_multiple is not None:
        record.r_sum, record.r_count = record.r_sum + trade.r_multiple, record.r_count + 1
    record.last_closed_at, record.last_closed_signal = closing_order(trade, signal_id)


def figures_of(record: ProviderRecord | Row) -> track_record.Figures:
    """track_record.figures of the record's signals, without the Sharpe ratio and the equity curve (the card's)."""
    n = record.closed
    return track_record.Figures(
        trades=n, wins=record.wins, win_rate=Decimal(record.wins) / n if n else None,
        avg_r=record.r_sum / record.r_count if record.r_count else None, cumulative_return=record.ret_sum,
        max_drawdown=record.max_drawdown, sharpe=None, equity=())


def standing_of(record: ProviderRecord | Row) -> Standing:
    return Standing(figures_of(record), consistency_of(record.positive_weeks, record.weeks),
                    record.first_signal_at, record.last_signal_at, tuple(record.markets or ()))


def micros(at: datetime) -> int:
    """Microseconds since 1970 (UTC): how a day row keeps each signal's arrival, cheap to read and compare."""
    return (at - EPOCH) // MICROSECOND


def _entry(trade: Closed) -> list:
    return [micros(trade.opened_at), str(trade.ret)]


def add_to_days(rows: Sequence, trade: Closed, make: Callable[[int, Decimal, Decimal, list], object]) -> list:
    """Add a closed signal to the day rows. `rows`: every row from the day it arrived on, in order, or when
    there is none, the last row (or nothing). Changes them in place and returns the rows to add (the gap up to
    that day is filled, so the rows stay without gaps)."""
    day, ret = trade.opened_at.date().toordinal(), trade.ret
    if not rows:
        return [make(day, Decimal(0), ret, [_entry(trade)])]
    if rows[0].day < day:  # after the last row
        last = rows[0]
        carried = EXACT.add(last.before, last.total)
        return [*(make(d, carried, Decimal(0), []) for d in range(last.day + 1, day)),
                make(day, carried, ret, [_entry(trade)])]
    new = []
    later = list(rows)
    if rows[0].day > day:  # before the first row
        new = [make(day, Decimal(0), ret, [_entry(trade)]),
               *(make(d, ret, Decimal(0), []) for d in range(day + 1, rows[0].day))]
    else:
        first = later.pop(0)
        first.total, first.trades = EXACT.add(first.total, ret), [*first.trades, _entry(trade)]
    for row in later:
        row.before = EXACT.add(row.before, ret)
    return new


def slot(provider_id: int, day: int) -> int:
    return provider_id * SLOTS + day


def day_row(provider_id: int, day: int, before: Decimal, total: Decimal, trades: list) -> ProviderRecordDay:
    return ProviderRecordDay(slot=slot(provider_id, day), provider_id=provider_id, day=day, before=before,
                             total=total, trades=trades)


def _day_row(provider_id: int) -> Callable[[int, Decimal, Decimal, list], ProviderRecordDay]:
    return lambda day, before, total, trades: day_row(provider_id, day, before, total, trades)


async def _locked(session: AsyncSession, provider_id: int) -> ProviderRecord | None:
    return await session.get(ProviderRecord, provider_id, with_for_update=True)


async def record_signal(session: AsyncSession, provider_id: int, received_at: datetime, ecosystem: str) -> None:
    """A provider's signal was stored (in this transaction)."""
    record = await _locked(session, provider_id)
    if record is None:
        record = new_record(provider_id)
        session.add(record)
    if record.first_signal_at is None or received_at < record.first_signal_at:
        record.first_signal_at = received_at
    if record.last_signal_at is None or received_at > record.last_signal_at:
        record.last_signal_at = received_at
    if ecosystem not in (record.markets or ()):
        record.markets = sorted({*(record.markets or ()), ecosystem})


async def record_close(session: AsyncSession, signal: Signal, trade: track_record.Trade) -> None:
    """`signal`, a provider's, was closed (in this transaction) as `trade`."""
    provider_id = signal.provider_id
    record = await _locked(session, provider_id)
    if record is None:  # its signals were stored without a record: recompute it all before the next ranking
        session.add(new_record(provider_id, stale=True))
        return
    closed = Closed(signal.received_at, trade.closed_at, trade.ret, trade.r_multiple)
    if record.stale:
        return
    if record.last_closed_at is not None and closing_order(closed, signal.id) <= (record.last_closed_at,
                                                                                  record.last_closed_signal):
        record.stale = True  # not last in closing order: the equity curve must be redrawn
        return
    append(record, closed, signal.id)
    week = await session.get(ProviderRecordWeek, (provider_id, week_of(closed.closed_at)))
    if week is None:
        session.add(ProviderRecordWeek(provider_id=provider_id, week=week_of(closed.closed_at), total=closed.ret))
        record.weeks += 1
        record.positive_weeks += 1 if closed.ret > 0 else 0
    else:
        was = week.total > 0
        week.total = EXACT.add(week.total, closed.ret)
        record.positive_weeks += (week.total > 0) - was
    day = closed.opened_at.date().toordinal()
    rows = list(await session.scalars(select(ProviderRecordDay).where(
        ProviderRecordDay.slot >= slot(provider_id, day), ProviderRecordDay.slot < slot(provider_id + 1, 0))
        .order_by(ProviderRecordDay.slot)))
    if not rows and record.last_day is not None:
        rows = [await session.get(ProviderRecordDay, slot(provider_id, record.last_day))]
    session.add_all(add_to_days(rows, closed, _day_row(provider_id)))
    record.first_day = day if record.first_day is None else min(record.first_day, day)
    record.last_day = day if record.last_day is None else max(record.last_day, day)


async def mark_stale(session: AsyncSession, provider_ids: Iterable[int]) -> None:
    """Signals or events were written around the services (a bulk import): recompute these records."""
    for provider_id in provider_ids:
        record = await _locked(session, provider_id)
        if record is None:
            session.add(new_record(provider_id, stale=True))
        else:
            record.stale = True


# ------------------------------------------------------------------------------------------ recomputing

def _closed(row, exit_price: Decimal, closed_at: datetime) -> Closed:
    """track_record.trade's return and R multiple, from a plain row."""
    sign = Decimal(1) if row.side == "long" else Decimal(-1)
    risk = sign * (row.entry - row.stop_loss)
    move = sign * (exit_price - row.entry)
    return Closed(row.received_at, closed_at, move / row.entry, move / risk if risk > 0 else None)


async def histories(session: AsyncSession, provider_ids: Sequence[int]) -> dict[int, History]:
    """These providers' signals, reduced (track_record.outcome's rule: the first closing event in arrival order
    closes a signal), from plain rows."""
    closing = (SignalEvent.type.in_(track_record.CLOSING)) | (SignalEvent.type == "tp_hit")
    conn = await session.connection()
    signals = (await conn.execute(
        select(Signal.id, Signal.provider_id, Signal.ecosystem, Signal.side, Signal.entry, Signal.stop_loss,
               func.json_array_length(Signal.take_profits).label("targets"), Signal.received_at)
        .where(Signal.provider_id.in_(provider_ids)))).all()
    events = (await conn.execute(
        select(SignalEvent.id, SignalEvent.signal_id, SignalEvent.type, SignalEvent.level, SignalEvent.price,
               SignalEvent.received_at)
        .where(SignalEvent.provider_id.in_(provider_ids), closing))).all()
    targets = {row.id: row.targets for row in signals}
    exit_of: dict[int, tuple] = {}
    for event in events:
        if event.type == "tp_hit" and event.level < (targets.get(event.signal_id) or 0):
            continue
        known = exit_of.get(event.signal_id)
        if known is None or (event.received_at, event.id) < known[2]:
            exit_of[event.signal_id] = (event.price, event.received_at, (event.received_at, event.id))
    by_provider: dict[int, list] = defaultdict(list)
    for row in signals:
        by_provider[row.provider_id].append(row)
    result = {}
    for provider_id in provider_ids:
        rows = sorted(by_provider.get(provider_id, ()), key=lambda r: r.id)
        closed = [(row.id, _closed(row, exit_of[row.id][0], exit_of[row.id][1])) for row in rows
                  if row.id in exit_of]
        result[provider_id] = History(closed, tuple(sorted({row.ecosystem for row in rows})),
                                      [row.received_at for row in rows])
    return result


def replay(provider_id: int, history: History) -> tuple[ProviderRecord, list[dict], list[dict]]:
    """A provider's record, and its week and day rows (as values to insert), recomputed from its history."""
    record = new_record(provider_id)
    record.first_signal_at, record.last_signal_at = history.first_signal_at, history.last_signal_at
    record.markets = list(history.markets)
    weeks: dict[int, Decimal] = defaultdict(Decimal)
    by_day: dict[int, list[Closed]] = defaultdict(list)
    for signal_id, trade in sorted(history.closed, key=lambda item: closing_order(item[1], item[0])):
        append(record, trade, signal_id)
        weeks[week_of(trade.closed_at)] = EXACT.add(weeks[week_of(trade.closed_at)], trade.ret)
        by_day[trade.opened_at.date().toordinal()].append(trade)
    record.weeks, record.positive_weeks = len(weeks), sum(1 for total in weeks.values() if total > 0)
    days = []
    if by_day:
        record.first_day, record.last_day = min(by_day), max(by_day)
        before = Decimal(0)
        for day in range(record.first_day, record.last_day + 1):
            trades = sorted(by_day.get(day, ()), key=lambda t: t.closed_at)
            total = exact_sum(t.ret for t in trades)
            days.append(dict(slot=slot(provider_id, day), provider_id=provider_id, day=day, before=before,
                             total=total, trades=[_entry(t) for t in trades]))
            before = EXACT.add(before, total)
    return record, [dict(provider_id=provider_id, week=week, total=total) for week, total in weeks.items()], days


async def rebuild(db: Database, provider_ids: Sequence[int], *, only_stale: bool = True) -> int:
    """Recompute these providers' records from their signals (those still stale, unless `only_stale` is False),
    in one transaction: the records are locked first, so a close committed meanwhile is either read here or
    applied after, on the new record."""
    async with db.transaction() as session:
        records = {r.provider_id: r for r in await session.scalars(
            select(ProviderRecord).where(ProviderRecord.provider_id.in_(provider_ids)).with_for_update())}
        chosen = [pid for pid in provider_ids if not only_stale or pid not in records or records[pid].stale]
        if not chosen:
            return 0
        found = await histories(session, chosen)
        await session.execute(delete(ProviderRecordWeek).where(ProviderRecordWeek.provider_id.in_(chosen)))
        await session.execute(delete(ProviderRecordDay).where(or_(*(
            ProviderRecordDay.slot.between(slot(pid, 0), slot(pid + 1, 0) - 1) for pid in chosen))))
        weeks, days = [], []
        for provider_id in chosen:
            record, its_weeks, its_days = replay(provider_id, found[provider_id])
            weeks += its_weeks
            days += its_days
            if provider_id in records:  # the same row, every figure replaced
                kept = records[provider_id]
                for column in ProviderRecord.__table__.columns:
                    setattr(kept, column.key, getattr(record, column.key))
            else:
                session.add(record)
        if weeks:
            await session.execute(insert(ProviderRecordWeek), weeks)
        if days:
            await session.execute(insert(ProviderRecordDay), days)
        return len(chosen)


async def rebuild_stale(db: Database, provider_ids: Sequence[int] | None = None) -> int:
    """Recompute the stale records (of these providers; by default all: after the upgrade that added them)."""
    if provider_ids is None:
        async with db.session() as session:
            stale = list(await session.scalars(select(ProviderRecord.provider_id).where(ProviderRecord.stale)
                                               .order_by(ProviderRecord.provider_id)))
    else:
        stale = sorted(provider_ids)
    done = 0
    for start in range(0, len(stale), REBUILD_CHUNK):
        done += await rebuild(db, stale[start:start + REBUILD_CHUNK])
    return done


# ------------------------------------------------------------------------------------------ reading

async def records(session: AsyncSession, provider_ids: Sequence[int]) -> dict[int, Row]:
    """These providers' records, as plain rows (what standing_of reads)."""
    if not provider_ids:
        return {}
    conn = await session.connection()
    return {r.provider_id: r for r in await conn.execute(
        select(*ProviderRecord.__table__.columns).where(ProviderRecord.provider_id.in_(provider_ids)))}


async def subscriber_sums(session: AsyncSession, kept: dict[int, Row],
                          starts: Sequence[tuple[int, datetime]]) -> dict[tuple[int, datetime], Decimal]:
    """For each (provider, start): the exact sum of the returns of its closed signals that arrived from `start`
    (closed by now: the board checks `last_closed_at`): all of them, less the days before the start's day and
    that day's signals that arrived before it. Reads one day row per subscriber at most."""
    sums: dict[tuple[int, datetime], Decimal] = {}
    pending: list[tuple[tuple[int, datetime], Decimal, int]] = []
    for provider_id, start in starts:
        record, day = kept.get(provider_id), start.date().toordinal()
        if record is None or record.first_day is None or day > record.last_day:
            sums[(provider_id, start)] = Decimal(0)
        elif day < record.first_day:
            sums[(provider_id, start)] = record.ret_exact
        else:
            pending.append(((provider_id, start), record.ret_exact, slot(provider_id, day)))
    wanted, conn = sorted({key for _, _, key in pending}), await session.connection()
    days = ProviderRecordDay.__table__.c
    rows: dict[int, Row] = {}
    for i in range(0, len(wanted), LOOKUP_CHUNK):
        for row in await conn.execute(select(days.slot, days.before, days.trades)
                                      .where(days.slot.in_(wanted[i:i + LOOKUP_CHUNK]))):
            rows[row.slot] = row
    for (provider_id, start), everything, key in pending:
        row, moment = rows[key], micros(start)
        earlier = exact_sum(Decimal(ret) for at, ret in row.trades if at < moment)  # that day, before the start
        sums[(provider_id, start)] = EXACT.subtract(EXACT.subtract(everything, row.before), earlier)
    return sums


def version_of(record: Row | ProviderRecord) -> str:
    """What a record's subscriber sums depend on (its closed signals), told apart: how many, the last in closing
    order and the exact sum of their returns. A close, a rebuild or a bulk import changes it."""
    return f"{record.closed}/{record.last_closed_signal}/{record.ret_exact}"


async def kept_sums(session: AsyncSession, kept: dict[int, Row], starts: Sequence[tuple[int, datetime]]
                    ) -> tuple[dict[tuple[int, datetime], Decimal], list[dict]]:
    """subscriber_sums, taking what an earlier ranking kept (ProviderSubscriberGains) for records still at the same
    version: only starts not kept are worked out from the day rows. Returns the sums and, for the providers that
    needed any, the rows to keep (their current starts only)."""
    providers, conn = sorted({pid for pid, _ in starts}), await session.connection()
    table = ProviderSubscriberGains.__table__.c
    stored: dict[int, dict[str, str]] = {}
    for i in range(0, len(providers), LOOKUP_CHUNK):
        for row in await conn.execute(select(table.provider_id, table.version, table.gains)
                                      .where(table.provider_id.in_(providers[i:i + LOOKUP_CHUNK]))):
            if row.version == version_of(kept[row.provider_id]):
                stored[row.provider_id] = row.gains
    sums: dict[tuple[int, datetime], Decimal] = {}
    missing = []
    for provider_id, start in starts:
        known = stored.get(provider_id, {}).get(str(micros(start)))
        if known is None:
            missing.append((provider_id, start))
        else:
            sums[(provider_id, start)] = Decimal(known)
    if not missing:
        return sums, []
    sums.update(await subscriber_sums(session, kept, missing))
    changed = {pid for pid, _ in missing}
    gains: dict[int, dict[str, str]] = defaultdict(dict)
    for provider_id, start in starts:
        if provider_id in changed:
            gains[provider_id][str(micros(start))] = str(sums[(provider_id, start)])
    return sums, [dict(provider_id=pid, version=version_of(kept[pid]), gains=gains[pid]) for pid in sorted(changed)]


async def keep_sums(db: Database, rows: list[dict]) -> None:
    """Keep kept_sums' rows for the next ranking (a later version kept meanwhile is simply replaced: the next
    ranking sees it out of date and works it out again); a failure only costs the next ranking that work."""
    insert = db.insert(ProviderSubscriberGains)
    insert = insert.on_conflict_do_update(index_elements=["provider_id"], set_=dict(
        version=insert.excluded.version, gains=insert.excluded.gains))
    try:
        async with db.transaction() as session:
            await session.execute(insert, rows)
    except Exception:
        log.exception("keeping what the subscribers got failed")
