"""Channel content: what to post next, how to ask the model, and the logs.

* Kinds rotate through `TELEGRAM_CONTENT_ROTATION` in order, counted over the post log; each kind takes the
  topic of `TELEGRAM_CONTENT_TOPICS` it used least recently, so every kind meets every topic.
* Prompts carry our own live data: `feeders` maps a fact's name to an async callable that returns one line
  of text, or None when it has nothing (plan prices are built in; the track record and the week's top
  whale are plugged in by their features). A feeder that fails is skipped.
* The post itself is written by a `PostFormat` (presentation.content.ChannelPosts: Telegram HTML): the
  model's answer made safe, at most 4,096 characters (UTF-16 units, as Telegram counts), never blank; when
  every attempt fails, or no key is set, its template per kind; then the promo links this service chooses.
  Every generation is logged.
* The post log has one row per slot with a unique key, inserted *before* anything is generated or sent, so a
  slot posts once however many processes try. Preview drafts are rows an admin's buttons act on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from config.settings import CONTENT_KINDS, Settings
from db.base import utcnow
from db.engine import Database
from db.models_content import ContentDraft, ContentGeneration, ContentPost
from services.deepseek import DeepSeekClient, GenerationFailed
from services.money import usd
from services.plans import PLANS

log = logging.getLogger(__name__)

KINDS = CONTENT_KINDS
MAX_POST_CHARS = 4096
#: Characters asked of the model (it is told; the sanitiser enforces MAX_POST_CHARS).
TARGET_CHARS = 900
DEFAULT_TOPIC = "the crypto market"
#: Posts that did not reach the channel do not advance the rotation.
NOT_POSTED = ("skipped", "failed", "interrupted")
DRAFT_TTL = timedelta(hours=24)

Feeder = Callable[[], Awaitable[str | None]]
#: Which facts each kind's prompt (and template) is fed.
KIND_FACTS: dict[str, tuple[str, ...]] = {
    "market": ("track_record", "top_whale"),
    "tip": (),
    "promo": ("plans", "track_record"),
    "community": ("top_whale",),
}
KIND_LABELS = {"market": "market update", "tip": "trading tip", "promo": "promo",
               "community": "community question"}
KIND_BRIEFS = {
    "market": "Give a short, concrete market update on the topic: what to watch and why.",
    "tip": "Give one practical, concrete trading tip on the topic that a reader can apply today.",
    "promo": "Invite readers to try our bot (signals, whale leaderboards, AI tools; open it with /start). "
             "Friendly, not pushy; mention the plan prices if given.",
    "community": "Ask the channel one engaging question about the topic and invite replies.",
}
SYSTEM_PROMPT = (
    "You write posts for a Telegram channel about crypto and trading. Write in English. Format with "
    "Telegram HTML only: <b>, <i>, <u>, <s>, <code>, <blockquote>. No Markdown, no other tags, no links. "
    "At most {chars} characters, a title line with one emoji, short paragraphs, one or two hashtags at the "
    "end. Be useful and concrete. Never promise profits or give personal financial advice. Use only the "
    "facts you are given; do not invent numbers."
)


# --------------------------------------------------------------------------- writing

def u16(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    label: str


class PostFormat(Protocol):
    """How posts are written out (presentation.content.ChannelPosts: Telegram HTML). Lengths are UTF-16
    units, as Telegram counts them."""

    def clean(self, answer: str, limit: int) -> str:
        """The model's answer made safe to post, at most `limit` long; '' when nothing readable is left."""
        ...

    def template(self, kind: str, topic: str, facts: list[str], limit: int) -> str:
        """The kind's own post on `topic` with `facts`, for when the model gives none; at most `limit`."""
        ...

    def links(self, links: list[Link]) -> str:
        """The block that ends a post with `links` ('' for none)."""
        ...


# --------------------------------------------------------------------------- data feeders

async def plan_prices() -> str | None:
    paid = [p for p in sorted(PLANS.values(), key=lambda p: p.rank) if p.is_paid]
    if not paid:
        return None
    prices = ", ".join(f"{p.name} {usd(p.monthly_cents)}/month" for p in paid)
    return f"Signal plans: {prices}; a year costs 10 months."


# --------------------------------------------------------------------------- the service

@dataclass(frozen=True, slots=True)
class Draft:
    kind: str
    topic: str
    text: str
    generation_id: int
    fallback_used: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    post_id: int
    slot_key: str
    source: str  # schedule, manual, draft
    kind: str
    topic: str


class ContentService:
    def __init__(self, db: Database, client: DeepSeekClient, settings: Settings, posts: PostFormat, *,
                 clock: Callable[[], datetime] = utcnow, feeders: dict[str, Feeder] | None = None) -> None:
        self.db, self.client, self.settings, self.posts, self.clock = db, client, settings, posts, clock
        #: name -> async callable returning one line of live data or None. Features add theirs here.
        self.feeders: dict[str, Feeder] = {"plans": plan_prices, **(feeders or {})}

    # ----------------------------------------------------------------- choosing

    @property
    def topics(self) -> list[str]:
        return list(self.settings.telegram_content_topics) or [DEFAULT_TOPIC]

    async def next_kind(self, session) -> str:
        rotation = self.settings.telegram_content_rotation
        posted = await session.scalar(
            select(func.count()).select_from(ContentPost).where(ContentPost.status.not_in(NOT_POSTED)))
        return rotation[(posted or 0) % len(rotation)]

    async def next_topic(self, session, kind: str) -> str:
        last_used = dict((await session.execute(
            select(ContentPost.topic, func.max(ContentPost.id))
            .where(ContentPost.kind == kind, ContentPost.status.not_in(NOT_POSTED))
            .group_by(ContentPost.topic))).all())
        topics = self.topics
        return min(topics, key=lambda t: (last_used.get(t, 0), topics.index(t)))

    async def choose(self, kind: str | None = None) -> tuple[str, str]:
        """The next post's kind (`kind` if given) and topic, from the post log."""
        async with self.db.session() as session:
            kind = kind or await self.next_kind(session)
            return kind, await self.next_topic(session, kind)

    # ----------------------------------------------------------------- generating

    async def facts(self, kind: str) -> list[str]:
        lines = []
        for name in KIND_FACTS.get(kind, ()):
            feeder = self.feeders.get(name)
            if feeder is None:
                continue
            try:
                line = await feeder()
            except Exception:
                log.exception("content fact %r failed; the post goes without it", name)
                continue
            if line and line.strip():
                lines.append(line.strip())
        return lines

    def prompt(self, kind: str, topic: str, facts: list[str]) -> list[dict]:
        user = f"Write a {KIND_LABELS[kind]} post. Topic: {topic}.\n{KIND_BRIEFS[kind]}"
        if facts:
            user += "\nFacts you may use:\n" + "\n".join(f"- {fact}" for fact in facts)
        return [{"role": "system", "content": SYSTEM_PROMPT.format(chars=TARGET_CHARS)},
                {"role": "user", "content": user}]

    def promo_links(self, kind: str) -> list[Link]:
        """The links a post of `kind` ends with (we add them ourselves, so they are always there and always
        right): a promo's are the operator's GMGN and forex community links."""
        if kind != "promo":
            return []
        s = self.settings
        return [Link(url, label) for url, label in
                ((s.gmgn_promo_link, "Trade on GMGN"), (s.forex_community_link, "Forex community")) if url]

    async def generate(self, kind: str, topic: str) -> Draft:
        """A post for `kind` and `topic`: the model's, sanitised, or the template. Always logged."""
        facts = await self.facts(kind)
        messages = self.prompt(kind, topic, facts)
        links = self.posts.links(self.promo_links(kind))
        budget = MAX_POST_CHARS - u16(links)
        row = ContentGeneration(kind=kind, topic=topic, prompt=json.dumps(messages, ensure_ascii=False),
                                model=self.client.model, attempts=0, fallback_used=False)
        text = ""
        try:
            completion = await self.client.complete(messages)
        except GenerationFailed as exc:
            row.output, row.error, row.attempts, row.latency_ms = exc.output, str(exc), exc.attempts, exc.latency_ms
        else:
            row.output, row.model, row.attempts = completion.text, completion.model, completion.attempts
            row.prompt_tokens, row.completion_tokens = completion.prompt_tokens, completion.completion_tokens
            row.total_tokens, row.latency_ms = completion.total_tokens, completion.latency_ms
            text = self.posts.clean(completion.text, budget)
            if not text:
                row.error, text = "nothing left of the model's post after cleaning", ""
        if not text:
            row.fallback_used = True
            text = self.posts.template(kind, topic, facts, budget)
            log.warning("content: %s post on %r uses the template (%s)", kind, topic, row.error)
        row.text = text + links
        async with self.db.transaction() as session:
            session.add(row)
        return Draft(kind, topic, row.text, row.id, row.fallback_used, row.error)

    # ----------------------------------------------------------------- the post log

    async def claim(self, slot_key: str, slot_at: datetime, source: str, kind: str | None = None,
                    topic: str | None = None) -> Claim | None:
        """Insert the slot's row, choosing its kind and topic unless given; None when the slot is already taken."""
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                kind = kind or await self.next_kind(session)
                topic = topic or await self.next_topic(session, kind)
                row = ContentPost(slot_key=slot_key, slot_at=slot_at, source=source, kind=kind, topic=topic,
                                  status="claimed", created_at=now, updated_at=now)
                session.add(row)
                await session.flush()
                return Claim(row.id, slot_key, source, kind, topic)
        except IntegrityError:
            return None

    async def finish(self, post_id: int, status: str, *, text: str | None = None, generation_id: int | None = None,
                     chat_id: int | None = None, message_id: int | None = None, error: str | None = None) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(ContentPost).where(ContentPost.id == post_id, ContentPost.status == "claimed").values(
                    status=status, text=text, generation_id=generation_id, chat_id=chat_id,
                    message_id=message_id, error=error, updated_at=self.clock()))

    async def skip(self, slot_key: str, slot_at: datetime, reason: str) -> bool:
        """Record a slot that will not be posted; False if it was already in the log."""
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                session.add(ContentPost(slot_key=slot_key, slot_at=slot_at, source="schedule", kind="-", topic="-",
                                        status="skipped", error=reason, created_at=now, updated_at=now))
        except IntegrityError:
            return False
        return True

    async def interrupt_stale(self, older_than: timedelta) -> int:
        """Posts claimed by a process that died before recording the result: marked `interrupted`, not retried
        (it may have been sent; a duplicate in the channel is worse than a gap)."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(ContentPost).where(ContentPost.status == "claimed",
                                          ContentPost.updated_at < self.clock() - older_than)
                .values(status="interrupted", error="the bot stopped while posting", updated_at=self.clock()))
        return result.rowcount or 0

    async def known(self, slot_keys: list[str]) -> set[str]:
        async with self.db.session() as session:
            rows = await session.scalars(select(ContentPost.slot_key).where(ContentPost.slot_key.in_(slot_keys)))
            return set(rows)

    async def log_began(self) -> datetime | None:
        async with self.db.session() as session:
            return await session.scalar(select(func.min(ContentPost.created_at)))

    async def recent(self, limit: int = 10) -> list[ContentPost]:
        async with self.db.session() as session:
            return list(await session.scalars(select(ContentPost).order_by(ContentPost.id.desc()).limit(limit)))

    # ----------------------------------------------------------------- drafts

    async def save_draft(self, admin_id: int, draft: Draft) -> int:
        async with self.db.transaction() as session:
            row = ContentDraft(admin_id=admin_id, kind=draft.kind, topic=draft.topic, text=draft.text,
                               generation_id=draft.generation_id, status="open", created_at=self.clock())
            session.add(row)
            await session.flush()
            return row.id

    async def take_draft(self, draft_id: int, admin_id: int, status: str) -> ContentDraft | None:
        """Move the admin's open, fresh draft to `status` and return it; None for anything else (another
        admin's, already used, expired, or made up)."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(ContentDraft).where(ContentDraft.id == draft_id, ContentDraft.admin_id == admin_id,
                                           ContentDraft.status == "open",
                                           ContentDraft.created_at > self.clock() - DRAFT_TTL)
                .values(status=status))
            if result.rowcount != 1:
                return None
            return await session.get(ContentDraft, draft_id)

    # ----------------------------------------------------------------- the schedule

    def slot_times(self) -> list[time]:
        return sorted({time.fromisoformat(t) for t in self.settings.telegram_content_schedules})

    def slot_key(self, slot_at: datetime) -> str:
        local = slot_at.astimezone(self.settings.tz)
        return f"{local:%Y-%m-%dT%H:%M}@{self.settings.timezone}"

    def slots_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Slot times (UTC) in (start, end], in order."""
        tz = self.settings.tz
        day: date = start.astimezone(tz).date()
        found = []
        while day <= end.astimezone(tz).date():
            for t in self.slot_times():
                at = datetime.combine(day, t, tz).astimezone(start.tzinfo)
                if start < at <= end:
                    found.append(at)
            day += timedelta(days=1)
        return found

    def upcoming(self, count: int) -> list[datetime]:
        now = self.clock()
        return self.slots_between(now, now + timedelta(days=2 + count))[:count] if self.slot_times() else []
