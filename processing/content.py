"""Channel posts without a user: the scheduled slots, the start-up catch-up, and publishing for admins.

Every post follows one order: claim the post-log row with its unique key (the claim fails if any other run
or process took the slot), generate, send, record. No transaction spans the model or Telegram. A slot the
bot missed while it was down is posted late once if it is less than `grace` old, otherwise recorded as
skipped. With TELEGRAM_CONTENT_DRY_RUN the post goes to the admins instead of the channel.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.utils.i18n import gettext as _
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from config.settings import Settings
from db.base import utcnow
from presentation.content import with_header
from processing.notify import Notifier
from services.content import Claim, ContentService, Draft
from transport import metrics

log = logging.getLogger(__name__)

#: A slot missed by less than this is posted late (once); an older one is skipped.
LATE_GRACE = timedelta(minutes=30)
#: How far back the start-up catch-up looks for missed slots.
CATCH_UP_LOOKBACK = timedelta(hours=24)
#: A row still `claimed` after this belonged to a process that died mid-post.
CLAIM_LEASE = timedelta(minutes=15)


class PostStatus(StrEnum):
    POSTED = "posted"
    DRY_RUN = "dry_run"  # sent to the admins only (TELEGRAM_CONTENT_DRY_RUN)
    FAILED = "failed"
    TAKEN = "taken"  # another process (or an earlier run) has the slot
    SKIPPED = "skipped"  # a missed slot, logged and not posted late


@dataclass(frozen=True, slots=True)
class PostResult:
    """What became of one publish request."""

    status: PostStatus
    kind: str | None = None
    topic: str | None = None
    message_id: int | None = None
    fallback_used: bool = False
    error: str | None = None
    post_id: int | None = None


class ContentPublisher:
    def __init__(self, bot: Bot, content: ContentService, notifier: Notifier, settings: Settings, *,
                 clock: Callable[[], datetime] = utcnow, grace: timedelta = LATE_GRACE) -> None:
        self.bot, self.content, self.notifier, self.settings = bot, content, notifier, settings
        self.clock, self.grace = clock, grace

    # ----------------------------------------------------------------- scheduling

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        """One cron job per slot in TIMEZONE, plus a catch-up run now."""
        for slot in self.content.slot_times():
            scheduler.add_job(self.run_slot, CronTrigger(hour=slot.hour, minute=slot.minute, timezone=self.settings.tz),
                              args=(slot,), id=f"content_{slot:%H%M}",
                              misfire_grace_time=int(self.grace.total_seconds()))
        scheduler.add_job(self.catch_up, id="content_catch_up", next_run_time=self.clock())
        if self.settings.telegram_chat_id is None and not self.settings.telegram_content_dry_run:
            log.warning("TELEGRAM_CONTENT_ENABLED but TELEGRAM_CHAT_ID is not set: posts will fail")

    async def run_slot(self, slot: time) -> PostResult | None:
        """The cron job: the latest occurrence of `slot` (today's, normally)."""
        now = self.clock()
        due = self.content.slots_between(now - timedelta(days=1, minutes=1), now)
        matching = [at for at in due if at.astimezone(self.settings.tz).time() == slot]
        if not matching:
            return None
        return await self.publish_slot(matching[-1])

    async def catch_up(self) -> list[PostResult]:
        """At start-up: mark dead claims, then post or skip slots missed in the last day."""
        if interrupted := await self.content.interrupt_stale(CLAIM_LEASE):
            log.warning("content: %s post(s) were interrupted by a stop; not retried", interrupted)
        now = self.clock()
        # Nothing was missed before the post log began (on the very first start: beyond the grace window).
        began = await self.content.log_began()
        since = max(now - CATCH_UP_LOOKBACK, began) if began else now - self.grace
        due = self.content.slots_between(since, now)
        known = await self.content.known([self.content.slot_key(at) for at in due])
        results = []
        for at in due:
            if self.content.slot_key(at) not in known:
                results.append(await self.publish_slot(at))
        return results

    async def publish_slot(self, slot_at: datetime) -> PostResult:
        """Post the slot at `slot_at` unless it is taken; skip it (logged) if it is older than the grace."""
        key = self.content.slot_key(slot_at)
        late = self.clock() - slot_at
        if late > self.grace:
            if await self.content.skip(key, slot_at, f"missed by {_minutes(late)} min (grace {_minutes(self.grace)})"):
                log.warning("content slot %s missed by %s min: skipped", key, _minutes(late))
                metrics.CONTENT_POSTS.labels(status=PostStatus.SKIPPED).inc()
                return PostResult(PostStatus.SKIPPED)
            return PostResult(PostStatus.TAKEN)
        claim = await self.content.claim(key, slot_at, "schedule")
        if claim is None:
            log.info("content slot %s is already taken", key)
            return PostResult(PostStatus.TAKEN)
        if late > timedelta(minutes=1):
            log.info("content slot %s posted %s min late", key, _minutes(late))
        return await self._generate_and_send(claim)

    # ----------------------------------------------------------------- admins

    async def post_now(self, key: str, kind: str | None = None) -> PostResult:
        """/post_now: a manual post under its own unique key (a redelivered command posts once)."""
        claim = await self.content.claim(f"manual:{key}", self.clock(), "manual", kind)
        if claim is None:
            return PostResult(PostStatus.TAKEN)
        return await self._generate_and_send(claim)

    async def publish_draft(self, draft_id: int, kind: str, topic: str, text: str,
                            generation_id: int | None) -> PostResult:
        """A previewed draft, as it was shown."""
        claim = await self.content.claim(f"draft:{draft_id}", self.clock(), "draft", kind, topic)
        if claim is None:
            return PostResult(PostStatus.TAKEN)
        return await self._send(claim, Draft(kind, topic, text, generation_id or 0, False), generation_id)

    # ----------------------------------------------------------------- the work

    async def _generate_and_send(self, claim: Claim) -> PostResult:
        try:
            draft = await self.content.generate(claim.kind, claim.topic)
        except Exception as exc:  # the database, most likely: the claim stays failed, nothing is sent
            log.exception("content: generating %s failed", claim.slot_key)
            await self.content.finish(claim.post_id, "failed", error=f"generation: {exc!r}"[:500])
            metrics.CONTENT_POSTS.labels(status=PostStatus.FAILED).inc()
            return PostResult(PostStatus.FAILED, claim.kind, claim.topic, error=str(exc))
        metrics.CONTENT_GENERATIONS.labels(source="template" if draft.fallback_used else "model").inc()
        return await self._send(claim, draft, draft.generation_id)

    async def _send(self, claim: Claim, draft: Draft, generation_id: int | None) -> PostResult:
        s = self.settings
        result = dict(kind=claim.kind, topic=claim.topic, fallback_used=draft.fallback_used, post_id=claim.post_id)
        if s.telegram_content_dry_run:
            delivered = 0
            for admin_id in s.admin_ids:
                header = await self.notifier.render(admin_id, lambda: _(
                    "🧪 <b>Dry run</b>: this {kind} post was not sent to the channel.").format(kind=claim.kind))
                try:
                    await self.bot.send_message(admin_id, with_header(header, draft.text),
                                                disable_web_page_preview=True)
                    delivered += 1
                except TelegramAPIError as exc:
                    log.info("dry-run post not delivered to admin %s: %s", admin_id, exc.message)
            await self.content.finish(claim.post_id, "dry_run", text=draft.text, generation_id=generation_id,
                                      error=None if delivered else "no admin received the dry run")
            metrics.CONTENT_POSTS.labels(status=PostStatus.DRY_RUN).inc()
            return PostResult(PostStatus.DRY_RUN, **result)
        if s.telegram_chat_id is None:
            error = "TELEGRAM_CHAT_ID is not set"
        else:
            try:
                message = await self.bot.send_message(s.telegram_chat_id, draft.text, disable_web_page_preview=True)
            except TelegramAPIError as exc:
                error = f"Telegram refused the post: {exc.message}"
            else:
                await self.content.finish(claim.post_id, "posted", text=draft.text, generation_id=generation_id,
                                          chat_id=message.chat.id, message_id=message.message_id)
                metrics.CONTENT_POSTS.labels(status=PostStatus.POSTED).inc()
                log.info("content: %s post %s sent (message %s)", claim.kind, claim.slot_key, message.message_id)
                return PostResult(PostStatus.POSTED, message_id=message.message_id, **result)
        log.error("content: %s not posted: %s", claim.slot_key, error)
        await self.content.finish(claim.post_id, "failed", text=draft.text, generation_id=generation_id, error=error)
        metrics.CONTENT_POSTS.labels(status=PostStatus.FAILED).inc()
        if claim.source == "schedule":  # nobody is watching: tell the admins
            await self.notifier.alert_admins(lambda: _(
                "⚠️ The scheduled {kind} post ({slot}) was not published: {error}").format(
                kind=claim.kind, slot=html.escape(claim.slot_key), error=html.escape(error)))
        return PostResult(PostStatus.FAILED, error=error, **result)


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
