"""The outbound-webhook worker: POSTs the queued deliveries of services/api_webhooks.py.

* Claim: one conditional UPDATE takes a batch of due rows (`queued` and due, or `sending` whose lease ran
  out: a crashed worker's) and stamps them with this claim's token and a lease (30 s), renewed by a heartbeat
  while the batch is posted (services/leases.py); only rows carrying the token are posted, renewed and
  recorded, so two workers never post the same delivery at once, and a dead worker's batch is taken over
  once its lease ran out.
* Post: the URL is checked again (SSRF) and connected through a resolver that refuses private addresses (a
  host re-pointed between the check and the connection is caught); 10 s per POST, no redirects followed;
  any 2xx is success. The body and signature are the same on every retry (`X-Webhook-Id` for dedup).
* Record: the status code and a short error (never the secret or the receiver's body); a failure is retried
  1 min, 2 min, 4 min ... at most an hour apart, for 24 h after it was queued. A hook whose deliveries have
  failed for a day with no success since is switched off, its queue cancelled, and its owner told in the bot.
* Plan: a user whose plan no longer includes webhooks (Free) gets nothing: the row is `skipped`; so does a
  marketplace provider's signal or event for a user no longer subscribed to that provider.
* Log: finished rows are the user's delivery log for `KEEP_LOG`, then pruned (by `run`, hourly).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from pydantic import TypeAdapter
from sqlalchemy import case, delete, or_, select, update

from db.base import utcnow
from db.engine import Database
from db.models_marketplace import ProviderSubscription
from db.models_signals import Signal, SignalEvent
from db.models_subscriptions import Subscription
from db.models_webhooks import ApiWebhook, ApiWebhookDelivery
from presentation import api as words
from processing.ingest_auth import sign
from processing.notify import Notifier
from services.api_schema import event_out, signal_out
from services.api_webhooks import (
    DISABLE_AFTER,
    RETRY_FOR,
    SIGNAL_CREATED,
    WebhookRefused,
    WebhookService,
    address_refused,
    retry_delay,
)
from services.leases import LEASE, heartbeat
from services.plans import PLANS

log = logging.getLogger(__name__)
USER_AGENT = "SignalBot-Webhooks/1.0"
TIMEOUT_SECONDS = 10.0
KEEP_LOG = timedelta(days=30)
PRUNE_EVERY = timedelta(hours=1)
_TIME = TypeAdapter(datetime)


class GuardedResolver(AbstractResolver):
    """The system resolver, refusing a host any of whose addresses a webhook may not reach."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if any(address_refused(item["host"]) for item in found):
            raise OSError(f"{host} resolves to an address webhooks may not reach")
        return found

    async def close(self) -> None:
        await self._inner.close()


@dataclass(slots=True)
class Job:
    id: int
    public_id: str
    webhook_id: int
    user_id: int
    kind: str
    item_id: int
    attempts: int
    due: datetime
    created_at: datetime
    claim: str


@dataclass(slots=True)
class Outcome:
    job: Job
    status: str  # delivered / retry / skipped / cancelled
    code: int | None = None
    error: str | None = None


class WebhookWorker:
    def __init__(self, database: Database, webhooks: WebhookService, notifier: Notifier, *,
                 clock: Callable[[], datetime] = utcnow, batch: int = 32, concurrency: int = 8,
                 lease: timedelta = LEASE, timeout: float = TIMEOUT_SECONDS,
                 idle_wait: float = 2.0) -> None:
        self.db, self.webhooks, self.notifier, self.clock = database, webhooks, notifier, clock
        self.batch, self.lease, self.timeout, self.idle_wait = batch, lease, timeout, idle_wait
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False
        self._http: aiohttp.ClientSession | None = None
        self._pruned_at: datetime | None = None

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def run(self) -> None:
        """Deliver until stopped; sleeps `idle_wait` (or until woken) when nothing is due."""
        while not self._stopping:
            try:
                if self._pruned_at is None or self.clock() - self._pruned_at >= PRUNE_EVERY:
                    await self.prune()
                handled = await self.run_once()
            except Exception:
                log.exception("webhook delivery failed; retrying shortly")
                handled = 0
            if not handled and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_wait)

    async def run_once(self) -> int:
        """Claim one batch of due deliveries, post them and record the results; how many were handled."""
        jobs = await self._claim()
        if not jobs:
            return 0
        renew = functools.partial(self._renew, jobs[0].claim)
        async with heartbeat(renew, self.lease, what=f"webhook deliveries {jobs[0].claim}"):
            hooks, paid, bodies, unsubscribed = await self._load(jobs)
            outcomes = await asyncio.gather(*(self._deliver(job, hooks, paid, bodies, unsubscribed) for job in jobs))
            switched_off = await self._record(list(outcomes))
        for user_id, url in switched_off:
            await self.notifier.send(user_id, lambda url=url: words.webhook_disabled(url), skip_blocked=True)
        return len(jobs)

    async def prune(self) -> int:
        """Forget finished deliveries older than `KEEP_LOG`; how many."""
        now, d = self.clock(), ApiWebhookDelivery
        self._pruned_at = now
        async with self.db.transaction() as session:
            done = await session.execute(delete(d).where(d.finished_at.is_not(None), d.finished_at < now - KEEP_LOG))
        return done.rowcount

    # -- claim ----------------------------------------------------------------------------------------

    @staticmethod
    def _due(now: datetime):
        d = ApiWebhookDelivery
        return or_((d.status == "queued") & (d.next_attempt_at <= now), (d.status == "sending") & (d.lease_until < now))

    async def _claim(self) -> list[Job]:
        now, token, d = self.clock(), uuid.uuid4().hex, ApiWebhookDelivery
        due = select(d.id).where(self._due(now)).order_by(d.id).limit(self.batch).scalar_subquery()
        async with self.db.transaction() as session:
            claimed = await session.execute(update(d).where(d.id.in_(due), self._due(now)).values(
                status="sending", claim=token, lease_until=now + self.lease, attempts=d.attempts + 1))
            if not claimed.rowcount:
                return []
            rows = (await session.execute(
                select(d.id, d.public_id, d.webhook_id, d.user_id, d.kind, d.item_id, d.attempts, d.next_attempt_at,
                       d.created_at).where(d.status == "sending", d.claim == token).order_by(d.id))).all()
        return [Job(*row, claim=token) for row in rows]

    async def _renew(self, claim: str) -> bool:
        """Extend the lease of the batch's rows that still carry its token (never of rows taken over)."""
        now, d = self.clock(), ApiWebhookDelivery
        async with self.db.transaction() as session:
            renewed = await session.execute(update(d).where(d.claim == claim, d.status == "sending")
                                            .values(lease_until=now + self.lease))
        return renewed.rowcount > 0

    async def _load(self, jobs: list[Job]) -> tuple[dict[int, ApiWebhook], set[int], dict[tuple[str, int], bytes],
                                                     set[int]]:
        """The jobs' hooks, which of their users are on a paid plan now, each item's part of the body
        (`"data":...` and, for an event, `"event":...`), serialised once per item, and the jobs (ids) of a
        provider's item whose user is no longer subscribed to that provider."""
        now = self.clock()
        paid_codes = [code for code, plan in PLANS.items() if plan.is_paid]
        async with self.db.session() as session:
            hooks = {h.id: h for h in await session.scalars(
                select(ApiWebhook).where(ApiWebhook.id.in_({j.webhook_id for j in jobs})))}
            paid = set(await session.scalars(select(Subscription.user_id).distinct().where(
                Subscription.user_id.in_({j.user_id for j in jobs}), Subscription.ends_at > now,
                Subscription.plan.in_(paid_codes))))
            events = {e.id: e for e in await session.scalars(select(SignalEvent).where(
                SignalEvent.id.in_({j.item_id for j in jobs if j.kind != SIGNAL_CREATED})))}
            signal_ids = {j.item_id for j in jobs if j.kind == SIGNAL_CREATED} | {e.signal_id for e in events.values()}
            signals = {s.id: s for s in await session.scalars(select(Signal).where(Signal.id.in_(signal_ids)))}
            history: dict[int, list[SignalEvent]] = {}
            for event in await session.scalars(select(SignalEvent).where(
                    SignalEvent.signal_id.in_({e.signal_id for e in events.values()}))):
                history.setdefault(event.signal_id, []).append(event)
            users = {job.id: job.user_id for job in jobs}
            owner: dict[int, int] = {}  # job id -> the provider whose signal or event it posts
            for job in jobs:
                event = events.get(job.item_id) if job.kind != SIGNAL_CREATED else None
                signal = signals.get(job.item_id if job.kind == SIGNAL_CREATED else getattr(event, "signal_id", 0))
                if signal is not None and signal.provider_id is not None:
                    owner[job.id] = signal.provider_id
            providers = set(owner.values())
            subscribed = set() if not providers else set((await session.execute(
                select(ProviderSubscription.user_id, ProviderSubscription.provider_id).distinct().where(
                    ProviderSubscription.provider_id.in_(providers),
                    ProviderSubscription.user_id.in_({j.user_id for j in jobs}),
                    ProviderSubscription.starts_at <= now, ProviderSubscription.ends_at > now))).all())
        unsubscribed = {job_id for job_id, provider_id in owner.items()
                        if (users[job_id], provider_id) not in subscribed}
        data: dict[tuple[str, int], bytes] = {}
        for job in jobs:
            if job.kind == SIGNAL_CREATED and job.item_id in signals:
                part: dict[str, Any] = {"data": signal_out(signals[job.item_id], []).model_dump(mode="json")}
            elif job.kind != SIGNAL_CREATED and job.item_id in events:
                event = events[job.item_id]
                so_far = [e for e in history.get(event.signal_id, []) if e.id <= event.id]
                part = {"data": signal_out(signals[event.signal_id], so_far).model_dump(mode="json"),
                        "event": event_out(event).model_dump(mode="json")}
            else:
                continue
            data[(job.kind, job.item_id)] = json.dumps(part, separators=(",", ":"))[1:-1].encode()
        return hooks, paid, data, unsubscribed

    # -- post -----------------------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            resolver = None if self.webhooks.allow_private else GuardedResolver()
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver),
                                               timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._http

    @staticmethod
    def body(job: Job, part: bytes) -> bytes:
        """The posted JSON object, the same bytes on every try: the envelope, then the item's part."""
        head = json.dumps({"id": job.public_id, "type": job.kind,
                           "created_at": _TIME.dump_python(job.created_at, mode="json")}, separators=(",", ":"))
        return head[:-1].encode() + b"," + part + b"}"

    async def _deliver(self, job: Job, hooks: dict[int, ApiWebhook], paid: set[int],
                       bodies: dict[tuple[str, int], bytes], unsubscribed: set[int]) -> Outcome:
        hook = hooks.get(job.webhook_id)
        if hook is None or not hook.enabled:
            return Outcome(job, "cancelled", error="the webhook was switched off")
        if job.user_id not in paid:
            return Outcome(job, "skipped", error="the plan does not include webhooks")
        if job.id in unsubscribed:
            return Outcome(job, "skipped", error="no longer subscribed to the provider")
        data = bodies.get((job.kind, job.item_id))
        if data is None:
            return Outcome(job, "skipped", error="the signal is gone")
        secret = self.webhooks.secret_of(hook)
        if secret is None:
            return Outcome(job, "retry", error="the secret can't be read: rotate it")
        async with self._slots:  # the DNS check and the POST both within a slot and a time limit
            try:
                async with asyncio.timeout(self.timeout):
                    url = await self.webhooks.check_url(hook.url)
            except WebhookRefused as exc:
                return Outcome(job, "retry", error=f"refused: {exc}"[:200])
            except TimeoutError:
                return Outcome(job, "retry", error=f"the host name did not resolve within {self.timeout:g} s")
            body = self.body(job, data)
            timestamp = int(self.clock().timestamp())
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Webhook-Id": job.public_id,
                       "X-Timestamp": str(timestamp), "X-Signature": sign(secret, timestamp, body)}
            try:
                async with self._session().post(url, data=body, headers=headers, allow_redirects=False) as answer:
                    code = answer.status
            except TimeoutError:
                return Outcome(job, "retry", error=f"no answer within {self.timeout:g} s")
            except Exception as exc:  # refused, unreachable, TLS, a malformed answer: retried like a 5xx
                return Outcome(job, "retry", error=f"{type(exc).__name__}: {exc}"[:200])
        if 200 <= code < 300:
            return Outcome(job, "delivered", code=code)
        return Outcome(job, "retry", code=code, error=f"HTTP {code}")

    # -- record ---------------------------------------------------------------------------------------

    async def _record(self, outcomes: list[Outcome]) -> list[tuple[int, str]]:
        """Write the outcomes (guarded by the claim); returns (user, url) of each hook switched off now."""
        now, d, h = self.clock(), ApiWebhookDelivery, ApiWebhook
        switched_off: list[tuple[int, str]] = []
        async with self.db.transaction() as session:
            for o in outcomes:
                job = o.job
                mine = (d.id == job.id, d.claim == job.claim, d.status == "sending")
                final = o.status != "retry" or now - job.created_at >= RETRY_FOR
                status = {"retry": "failed"}.get(o.status, o.status) if final else "queued"
                next_at = now + retry_delay(job.attempts) if not final else now
                done = await session.execute(update(d).where(*mine).values(
                    status=status, status_code=o.code, last_error=o.error, next_attempt_at=next_at,
                    finished_at=now if final else None, lease_until=None, claim=None))
                if not done.rowcount:  # another worker took it over after our lease ran out
                    continue
                if o.status == "delivered":
                    await session.execute(update(h).where(h.id == job.webhook_id)
                                          .values(failing_since=None, last_success_at=now))
                elif o.status == "retry":
                    since = case((h.last_success_at > job.due, h.last_success_at), else_=job.due)
                    await session.execute(update(h).where(h.id == job.webhook_id, h.failing_since.is_(None))
                                          .values(failing_since=since))  # when it was due, not after a success
                    off = await session.execute(
                        update(h).where(h.id == job.webhook_id, h.enabled.is_(True),
                                        h.failing_since <= now - DISABLE_AFTER)
                        .values(enabled=False, disabled_at=now).returning(h.user_id, h.url))
                    for user_id, url in off.all():
                        switched_off.append((user_id, url))
                        await session.execute(update(d).where(d.webhook_id == job.webhook_id, d.status == "queued")
                                              .values(status="cancelled", finished_at=now,
                                                      last_error="the webhook was switched off"))
        for user_id, _url in switched_off:
            log.warning("webhook of user %s switched off after a day of failed deliveries", user_id)
        return switched_off
