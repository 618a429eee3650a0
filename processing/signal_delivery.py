"""The fan-out worker: sends signals, their events and broadcasts from the outbox (db.models_signals.Outbox).

* Claim: one conditional UPDATE takes a batch of due rows (`queued` and due, or `sending` with an expired
  lease) and stamps them with this claim's token; only rows carrying the token are sent. While the worker
  runs, a heartbeat renews the lease (30 s) of every row it claimed and has not recorded yet, guarded by the
  token (services/leases.py), so a slow fan-out keeps its rows and another replica takes them over only
  after this one stopped renewing (died).
* Send: inside `with bulk():` through the app's bot (so the outgoing gate spaces them at
  TELEGRAM_RATE_LIMIT, keeps 1 s per chat, pauses everything on 429, marks users blocked on 403),
  a bounded number in flight. Sends run on across batches, and the next batch is claimed while this one
  is half way out, so the gate never waits for the database.
* Record: each result is written as soon as Telegram answers (results that arrive together are committed
  together), guarded by the claim token. On SQLite a "sent" answer is first appended to a local journal
  (processing/sent_journal.py) that the next start applies; elsewhere a send keeps its slot until its result
  is committed. Either way at most `concurrency` rows are sent but unknown to a restart. `sent` keeps the
  message id, so an event is sent as a reply to that recipient's own copy of its signal.
* Restart: rows left `sending` by a dead process are queued again at start (a single process, without
  REDIS_URL) or taken over when their lease runs out (several replicas). A request Telegram accepted whose
  answer the dead process never learnt of is the only thing that can be sent twice: at most the
  `concurrency` sends in flight.
* Blocked users (403, or `users.is_blocked`) are marked `blocked`/`skipped` and never tried again;
  cancelled broadcasts' rows are not sent: a batch re-reads its broadcasts' status every `recheck_every`
  sends, so a cancel also stops rows already claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import ReplyParameters
from aiogram.utils.i18n import I18n
from sqlalchemy import bindparam, or_, select, update

from bot.tasks import spawn
from db.base import utcnow
from db.engine import Database
from db.models import User
from db.models_signals import Broadcast, Outbox, Signal, SignalEvent
from presentation.signals import render_event, render_signal
from processing.sent_journal import journal_for
from services.leases import LEASE, heartbeat
from transport import metrics
from transport.gate import bulk

log = logging.getLogger(__name__)
RECORD_RETRY_DELAYS = (0.2, 1.0, 3.0)  # when the last results cannot be written at once


@dataclass(slots=True)
class Job:
    id: int
    kind: str
    item_id: int
    chat: str
    user_id: int | None
    parent_id: int | None
    attempts: int
    claim: str
    language: str | None
    user_blocked: bool


@dataclass(slots=True)
class Batch:
    """Claimed rows with everything needed to send them, loaded before the first send."""

    jobs: list[Job]
    signals: dict[int, Signal]
    events: dict[int, SignalEvent]
    parents: dict[int, tuple[str, int | None, datetime]]
    broadcasts: dict[int, Broadcast]


@dataclass(slots=True)
class Result:
    id: int
    claim: str
    status: str
    message_id: int | None = None
    error: str | None = None
    next_at: datetime | None = None


def chat_ref(chat: str) -> int | str:
    return int(chat) if chat.lstrip("-").isdigit() else chat


class SignalDelivery:
    def __init__(self, database: Database, bot: Bot, i18n: I18n, *, clock: Callable[[], datetime] = utcnow,
                 batch: int = 1000, concurrency: int = 8, lease: timedelta = LEASE,
                 idle_wait: float = 1.0, max_attempts: int = 5, base_delay: float = 2.0,
                 recheck_every: int = 50) -> None:
        self.db, self.bot, self.i18n, self.clock = database, bot, i18n, clock
        self.batch, self.concurrency, self.lease, self.idle_wait = batch, concurrency, lease, idle_wait
        self.max_attempts, self.base_delay, self.recheck_every = max_attempts, base_delay, recheck_every
        self._wake = asyncio.Event()
        self._stopping = False
        self._pending: list[Result] = []
        self._flush_lock = asyncio.Lock()
        #: SQLite: "sent" answers are journalled at once (see processing/sent_journal.py); PostgreSQL: a send
        #: keeps its slot until its result is committed. Either way a kill repeats at most `concurrency` sends.
        self._journal = journal_for(database.url.database, database.is_sqlite)
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._held: dict[str, set[int]] = {}  # claim token -> rows claimed and not yet recorded (renewed)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def recover(self) -> int:
        """At start: rows a dead process left `sending` go back to the queue, except those its journal shows
        Telegram accepted (recorded as sent)."""
        if self._journal is not None and (entries := self._journal.read()):
            self._pending.extend(Result(row_id, claim, "sent", message_id=message_id)
                                 for row_id, claim, message_id in entries)
            await self._record()
            log.warning("recorded %s deliveries the previous process sent but had not written", len(entries))
        if self._journal is not None:
            self._journal.clear()
        async with self.db.transaction() as session:
            result = await session.execute(update(Outbox).where(Outbox.status == "sending")
                                           .values(status="queued", claim=None, lease_until=None))
        if result.rowcount:
            log.warning("requeued %s deliveries left in flight by the previous process", result.rowcount)
        return result.rowcount

    async def run(self) -> None:
        async with heartbeat(self._renew, self.lease, what="signal deliveries"):
            await self._run()

    async def _run(self) -> None:
        ahead: asyncio.Task[Batch | None] | None = None  # the next batch, claimed while this one goes out
        try:
            while not self._stopping or ahead is not None:
                try:
                    batch = await ahead if ahead is not None else await self._prepare()
                except Exception:
                    log.exception("signal delivery claim failed")
                    batch = None
                ahead = None
                if batch is not None:
                    ahead = await self._start_batch(batch, look_ahead=not self._stopping)
                elif not self._stopping:
                    await self._settle()  # results of the last batch are recorded before the queue looks empty
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_wait)
            await self._settle()
        finally:  # on a kill: claimed rows stay `sending` and are requeued at the next start
            if ahead is not None:
                ahead.cancel()
            for task in self._in_flight:
                task.cancel()

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many rows were handled."""
        async with heartbeat(self._renew, self.lease, what="signal deliveries"):
            batch = await self._prepare()
            if batch is None:
                return 0
            await self._start_batch(batch, look_ahead=False)
            await self._settle()
            return len(batch.jobs)

    async def _start_batch(self, batch: Batch, *, look_ahead: bool) -> asyncio.Task[Batch | None] | None:
        """Start a send for every job, `concurrency` in flight across batches; returns once the last one has
        started, with the claim of the next batch begun halfway (so database work overlaps the sends and the
        gate never waits for it)."""
        ahead = None
        half = len(batch.jobs) // 2
        with bulk():  # the send tasks inherit bulk mode
            for index, job in enumerate(batch.jobs):
                await self._slots.acquire()
                if batch.broadcasts and index and index % self.recheck_every == 0:
                    batch.broadcasts = await self._broadcasts(batch.jobs)  # cancelled meanwhile?
                if index == half and look_ahead:
                    ahead = spawn(self._prepare(), name="signal_delivery.claim")
                task = spawn(self._send_one(job, batch), name="signal_delivery.send")
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
        return ahead

    async def _send_one(self, job: Job, batch: Batch) -> None:
        held = True
        try:
            try:
                result = await self._deliver(job, batch)
            except Exception:  # a bug, not Telegram: the lease (no longer renewed) brings the row back
                log.exception("delivering outbox row %s failed", job.id)
                self._release(job.claim, (job.id,))
                return
            if self._journal is not None:
                if result.status == "sent":
                    self._journal.append(result.id, result.claim, result.message_id)
                held = False
                self._slots.release()
            try:
                await self._record(result)
            except Exception as exc:  # kept in _pending: the next group commit (or _settle) writes it
                log.warning("recording delivery results failed (%r); they are written with the next ones", exc)
        finally:
            if held:  # without a journal a slot covers the send *and* its record
                self._slots.release()

    async def _settle(self) -> None:
        """Wait until every started send has been recorded."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        for delay in (*RECORD_RETRY_DELAYS, None):
            if not self._pending:
                return
            try:
                await self._record()
            except Exception as exc:
                if delay is None:
                    break
                log.warning("recording delivery results failed (%r); retrying in %g s", exc, delay)
                await asyncio.sleep(delay)
        if self._pending:  # their rows stay `sending` until the lease runs out, then are retried
            log.error("%s delivery results could not be recorded", len(self._pending))
            for result in self._pending:
                self._release(result.claim, (result.id,))
            self._pending = []
        elif self._journal is not None and not self._in_flight:
            self._journal.clear()  # everything it holds is committed

    async def _prepare(self) -> Batch | None:
        jobs = await self._claim()
        if not jobs:
            return None
        signals, events = await self._load(jobs)
        return Batch(jobs, signals, events, await self._parents(jobs), await self._broadcasts(jobs))

    # -- claim ----------------------------------------------------------------------------------------

    def _due(self, now: datetime):
        return or_((Outbox.status == "queued") & (Outbox.next_attempt_at <= now),
                   (Outbox.status == "sending") & (Outbox.lease_until < now))

    async def _claim(self) -> list[Job]:
        now, token = self.clock(), uuid.uuid4().hex
        due = select(Outbox.id).where(self._due(now)).order_by(Outbox.id).limit(self.batch).scalar_subquery()
        async with self.db.transaction() as session:
            claimed = await session.execute(update(Outbox).where(Outbox.id.in_(due), self._due(now)).values(
                status="sending", claim=token, lease_until=now + self.lease, attempts=Outbox.attempts + 1))
            if not claimed.rowcount:
                return []
            rows = (await session.execute(
                select(Outbox.id, Outbox.kind, Outbox.item_id, Outbox.chat, Outbox.user_id, Outbox.parent_id,
                       Outbox.attempts, User.language, User.is_blocked)
                .outerjoin(User, User.id == Outbox.user_id)
                .where(Outbox.status == "sending", Outbox.claim == token).order_by(Outbox.id))).all()
        self._held[token] = {r[0] for r in rows}
        return [Job(r[0], r[1], r[2], r[3], r[4], r[5], r[6], token, r[7], bool(r[8])) for r in rows]

    def _release(self, claim: str, ids) -> None:
        """These rows are recorded (or given up): renewals no longer cover them."""
        held = self._held.get(claim)
        if held is not None:
            held.difference_update(ids)
            if not held:
                del self._held[claim]

    async def _renew(self) -> bool:
        """The heartbeat: extend the lease of every row claimed and not yet recorded, while it still carries
        our token and is `sending` (a row taken over after an expired lease is not taken back)."""
        if not self._held:
            return True
        now = self.clock()
        async with self.db.transaction() as session:
            for token, ids in list(self._held.items()):
                renewed = await session.execute(update(Outbox).where(
                    Outbox.claim == token, Outbox.status == "sending", Outbox.id.in_(sorted(ids)))
                    .values(lease_until=now + self.lease))
                if not renewed.rowcount and self._held.get(token) is ids:
                    log.warning("outbox rows of claim %s are no longer ours (taken over?)", token)
                    del self._held[token]
        return True  # the worker's heartbeat runs on for the next claims

    async def _load(self, jobs: list[Job]) -> tuple[dict[int, Signal], dict[int, SignalEvent]]:
        event_ids = {j.item_id for j in jobs if j.kind == "event"}
        async with self.db.session() as session:
            events = await session.scalars(select(SignalEvent).where(SignalEvent.id.in_(event_ids)))
            events_by_id = {event.id: event for event in events}
            signal_ids = {j.item_id for j in jobs if j.kind == "signal"} | {e.signal_id for e in events_by_id.values()}
            signals = await session.scalars(select(Signal).where(Signal.id.in_(signal_ids)))
            return {signal.id: signal for signal in signals}, events_by_id

    async def _parents(self, jobs: list[Job]) -> dict[int, tuple[str, int | None, datetime]]:
        ids = {j.parent_id for j in jobs if j.parent_id is not None}
        if not ids:
            return {}
        async with self.db.session() as session:
            rows = (await session.execute(select(Outbox.id, Outbox.status, Outbox.message_id, Outbox.next_attempt_at)
                                          .where(Outbox.id.in_(ids)))).all()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    async def _broadcasts(self, jobs: list[Job]) -> dict[int, Broadcast]:
        ids = {j.item_id for j in jobs if j.kind == "broadcast"}
        if not ids:
            return {}
        async with self.db.session() as session:
            return {b.id: b for b in await session.scalars(select(Broadcast).where(Broadcast.id.in_(ids)))}

    # -- send -----------------------------------------------------------------------------------------

    def _text(self, job: Job, batch: Batch) -> str | None:
        locale = job.language or self.i18n.default_locale
        with self.i18n.context(), self.i18n.use_locale(locale):
            if job.kind == "signal":
                signal = batch.signals.get(job.item_id)
                return render_signal(signal) if signal else None
            event = batch.events.get(job.item_id)
            signal = batch.signals.get(event.signal_id) if event else None
            return render_event(event, signal) if event and signal else None

    async def _deliver(self, job: Job, batch: Batch) -> Result:
        now = self.clock()
        if self._stopping:  # let the next process take it; nothing was sent
            return Result(job.id, job.claim, "queued", next_at=now)
        if job.user_blocked:
            return Result(job.id, job.claim, "skipped", error="user has blocked the bot")
        reply_to = None
        if job.kind == "event":
            status, message_id, due = batch.parents.get(job.parent_id, ("gone", None, now))
            if status in ("queued", "sending"):  # the copy to reply to is not out yet
                return Result(job.id, job.claim, "queued", next_at=max(due, now) + timedelta(seconds=2))
            if status != "sent" or message_id is None:
                return Result(job.id, job.claim, "skipped", error=f"signal copy is {status}")
            reply_to = message_id
        broadcast = None
        if job.kind == "broadcast":
            broadcast = batch.broadcasts.get(job.item_id)
            if broadcast is None:
                return Result(job.id, job.claim, "failed", error="item is gone")
            if broadcast.status == "cancelled":
                return Result(job.id, job.claim, "cancelled")
        try:
            if broadcast is not None:
                sent = await self.bot.copy_message(chat_ref(job.chat), broadcast.from_chat_id, broadcast.message_id)
            else:
                text = self._text(job, batch)
                if text is None:
                    return Result(job.id, job.claim, "failed", error="item is gone")
                reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
                sent = await self.bot.send_message(chat_ref(job.chat), text, reply_parameters=reply)
        except TelegramForbiddenError as exc:
            return Result(job.id, job.claim, "blocked", error=exc.message[:300])
        except TelegramRetryAfter as exc:  # the gate already waited and retried; come back later
            return Result(job.id, job.claim, "queued", error="flood control",
                          next_at=now + timedelta(seconds=exc.retry_after))
        except (TelegramBadRequest, TelegramNotFound) as exc:
            return Result(job.id, job.claim, "failed", error=exc.message[:300])
        except Exception as exc:  # network trouble, 5xx: retry with backoff, then give up
            error = f"{type(exc).__name__}: {exc}"[:300]
            if job.attempts >= self.max_attempts:
                return Result(job.id, job.claim, "failed", error=error)
            delay = self.base_delay * 2 ** (job.attempts - 1)
            return Result(job.id, job.claim, "queued", error=error, next_at=now + timedelta(seconds=delay))
        return Result(job.id, job.claim, "sent", message_id=sent.message_id)

    # -- record ---------------------------------------------------------------------------------------

    async def _record(self, result: Result | None = None) -> None:
        """Group commit: whoever holds the lock writes every result that has arrived meanwhile. If the write
        fails, the results stay pending for the next one (and the error is raised)."""
        if result is not None:
            self._pending.append(result)
        async with self._flush_lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            now = self.clock()
            params = [{"b_id": r.id, "b_claim": r.claim, "b_status": r.status, "b_message_id": r.message_id,
                       "b_error": r.error, "b_next": r.next_at or now,
                       "b_sent_at": now if r.status == "sent" else None} for r in batch]
            table = Outbox.__table__
            statement = (update(table).where(table.c.id == bindparam("b_id"), table.c.claim == bindparam("b_claim"),
                                             table.c.status == "sending")
                         .values(status=bindparam("b_status"), message_id=bindparam("b_message_id"),
                                 last_error=bindparam("b_error"), next_attempt_at=bindparam("b_next"),
                                 sent_at=bindparam("b_sent_at"), lease_until=None, claim=None))
            try:
                async with self.db.transaction() as session:
                    await session.execute(statement, params)
            except Exception:
                self._pending[:0] = batch
                raise
            for r in batch:
                self._release(r.claim, (r.id,))
                metrics.OUTBOX_RESULTS.labels(status=r.status).inc()
