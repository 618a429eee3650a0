"""Users: who talks to the bot, in which language, who referred them, who blocked us.

`seen()` is called for every update but writes only when something changed or the
stored `last_seen` is older than `LAST_SEEN_RESOLUTION`, so a chatty user costs one
write per few minutes, not one per message. The writes that remain (first contact above all) are
group-committed: the sightings that arrive while one batch is being written go together in the next
transaction, so a burst of new users costs a few transactions, not one each (on SQLite every write
queues for the one writer, and a transaction per user capped /start at a fraction of aiogram's rate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import changes
from db.base import utcnow
from db.engine import Database
from db.models import User
from services.group_commit import GroupCommit
from services.text import strip_invisible_or_none

LAST_SEEN_RESOLUTION = timedelta(minutes=5)
SUPPORTED_LANGUAGES = ("en", "ru")
CACHE_LIMIT = 50_000
#: Most sightings written in one transaction (group commit; see `seen`).
BATCH_LIMIT = 500


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    username: str | None
    language: str
    is_blocked: bool
    is_new: bool
    written_at: datetime
    is_banned: bool = False


@dataclass(slots=True)
class _Sighting:
    """One `seen()` call waiting for its batch."""

    user_id: int
    username: str | None
    first_name: str | None
    language_code: str | None
    now: datetime
    read_first: bool


async def _load(session: AsyncSession, ids: set[int]) -> dict[int, User]:
    rows = await session.scalars(select(User).where(User.id.in_(ids)))
    return {user.id: user for user in rows}


def pick_language(code: str | None) -> str:
    """Map Telegram's `language_code` (e.g. 'ru-RU') onto a supported language."""
    base = (code or "").split("-")[0].lower()
    return base if base in SUPPORTED_LANGUAGES else "en"


class UserService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow,
                 shared: Callable[[], bool] | None = None) -> None:
        """`shared` (several replicas): whether the other replicas' changes are being heard now
        (services/invalidations.py); while it says no, sightings are read from the database, not memory."""
        self.db = database
        self.clock, self.shared = clock, shared
        self._cache: dict[int, UserInfo] = {}
        # a commit that changes users (a ban, a language, a block; here or, with REDIS_URL, on another replica)
        # drops what is kept of them, so the next update reads them again
        changes.watch(User, "id", self._forget, database=database)
        self._batches: GroupCommit[_Sighting, UserInfo] = GroupCommit(self._record, limit=BATCH_LIMIT,
                                                                      name="users.seen")
        # a fan-out meets blocked users one 403 at a time: their marks go together too
        self._blocks: GroupCommit[int, None] = GroupCommit(self._mark_blocked, limit=BATCH_LIMIT,
                                                           name="users.blocked")

    async def seen(
        self, user_id: int, *, username: str | None, first_name: str | None, language_code: str | None
    ) -> UserInfo:
        first_name = strip_invisible_or_none(first_name)  # shown to admins: no bidi or zero-width tricks
        now = self.clock()
        cached = self._cache.get(user_id) if self.shared is None or self.shared() else None
        fresh = cached and now - cached.written_at < LAST_SEEN_RESOLUTION
        if fresh and cached.username == username and not cached.is_blocked:
            return replace(cached, is_new=False)
        info = await self._batches.submit(_Sighting(user_id, username, first_name, language_code, now,
                                                    read_first=cached is None))
        self._remember(info)
        return info

    async def _record(self, batch: list[_Sighting]) -> list[UserInfo]:
        """One batch of sightings (group commit): a read first for users not seen since start, often showing
        there is nothing to write, then one write transaction for the rest."""
        infos: dict[int, UserInfo] = {}  # by position in the batch
        unread = [(i, s) for i, s in enumerate(batch) if s.read_first]
        if unread:
            async with self.db.session() as session:
                stored = await _load(session, {s.user_id for _, s in unread})
            for i, s in unread:
                user = stored.get(s.user_id)
                if (user is not None and not user.is_blocked and s.now - user.last_seen < LAST_SEEN_RESOLUTION
                        and (user.username, user.first_name) == (s.username, s.first_name)):
                    infos[i] = UserInfo(s.user_id, s.username, user.language, False, False, user.last_seen,
                                        bool(user.is_banned))
        to_write = [(i, s) for i, s in enumerate(batch) if i not in infos]
        if to_write:
            async with self.db.transaction() as session:
                stored = await _load(session, {s.user_id for _, s in to_write})
                for i, s in to_write:  # in arrival order: a user's first sighting is the one that creates them
                    user = stored.get(s.user_id)
                    is_new = user is None
                    if user is None:
                        user = stored[s.user_id] = User(
                            id=s.user_id,
                            username=s.username,
                            first_name=s.first_name,
                            language=pick_language(s.language_code),
                            first_seen=s.now,
                            last_seen=s.now,
                            is_banned=False,
                        )
                        session.add(user)
                    else:
                        user.username, user.first_name = s.username, s.first_name
                        user.last_seen = s.now
                        user.is_blocked = False  # they wrote to us, so they unblocked the bot
                    infos[i] = UserInfo(s.user_id, s.username, user.language, False, is_new, s.now,
                                        bool(user.is_banned))
        return [infos[i] for i in range(len(batch))]

    async def get(self, user_id: int) -> User | None:
        async with self.db.session() as session:
            return await session.get(User, user_id)

    async def set_language(self, user_id: int, language: str) -> str:
        if language not in SUPPORTED_LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        async with self.db.transaction() as session:
            await session.execute(update(User).where(User.id == user_id).values(language=language))
        if cached := self._cache.get(user_id):
            self._cache[user_id] = replace(cached, language=language)
        return language

    async def set_referrer(self, user_id: int, referrer_id: int) -> bool:
        """Record who referred a user: once, never themselves, only an existing user."""
        if referrer_id == user_id:
            return False
        async with self.db.transaction() as session:
            if await session.get(User, referrer_id) is None:
                return False
            result = await session.execute(
                update(User)
                .where(User.id == user_id, User.referrer_id.is_(None))
                .values(referrer_id=referrer_id)
            )
            return result.rowcount == 1

    async def set_banned(self, user_id: int, banned: bool) -> bool | None:
        """Ban or unban a user from the bot; returns the previous state (None: no such user)."""
        async with self.db.transaction() as session:
            user = await session.get(User, user_id)
            if user is None:
                return None
            before, user.is_banned = bool(user.is_banned), banned
            if banned and not before:
                user.ban_notice_at = None  # a new ban: told once again
        if cached := self._cache.get(user_id):
            self._cache[user_id] = replace(cached, is_banned=banned)
        return before

    async def take_ban_notice(self, user_id: int) -> bool:
        """True once per ban: the banned user is to be told now that access is closed (then silence)."""
        async with self.db.transaction() as session:
            result = await session.execute(update(User).where(
                User.id == user_id, User.is_banned.is_(True), User.ban_notice_at.is_(None)).values(
                ban_notice_at=self.clock()))
            return result.rowcount == 1

    async def find(self, ref: str) -> User | None:
        """A user by id or @username."""
        ref = ref.strip()
        async with self.db.session() as session:
            if ref.isdigit() and len(ref) <= 15:
                return await session.get(User, int(ref))
            name = ref.removeprefix("@")
            if not name:
                return None
            return await session.scalar(select(User).where(func.lower(User.username) == name.lower()))

    async def accept_terms(self, user_id: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(User).where(User.id == user_id, User.terms_accepted_at.is_(None))
                                  .values(terms_accepted_at=self.clock()))

    async def mark_blocked(self, user_id: int) -> None:
        await self._blocks.submit(user_id)
        if cached := self._cache.get(user_id):
            self._cache[user_id] = replace(cached, is_blocked=True)

    async def _mark_blocked(self, user_ids: list[int]) -> list[None]:
        async with self.db.transaction() as session:
            await session.execute(update(User).where(User.id.in_(user_ids)).values(is_blocked=True))
        return [None] * len(user_ids)

    def _forget(self, user_ids: set | None) -> None:
        if user_ids is None:
            self._cache.clear()
        else:
            for user_id in user_ids:
                self._cache.pop(user_id, None)

    def _remember(self, info: UserInfo) -> None:
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.pop(next(iter(self._cache)))
        self._cache[info.id] = info
