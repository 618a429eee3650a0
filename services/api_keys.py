"""Developer API keys: created, listed, rolled and revoked in the bot, checked by the HTTP API.

A key is `sck_` + 32 random base62 characters + 6 base62 characters of the CRC32 of those 32 (like
GitHub's tokens): secret scanners recognise the prefix, and a mistyped or truncated key fails its
checksum and is refused without a database lookup. Only the key's SHA-256 is stored (a key is 190 bits
of randomness, so a fast hash is enough), with its first characters for display; the key itself is
shown once. "Last used" is kept in memory and written in batches (`flush_usage`), not once per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import string
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from db import changes
from db.base import utcnow
from db.engine import Database
from db.models import User
from db.models_api import ApiKey
from db.models_subscriptions import Subscription
from services.subscriptions import Current, best_plan

log = logging.getLogger(__name__)

PREFIX = "sck_"
BODY_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH
SHOWN_CHARS = 8  # "sck_AbCd": enough to tell keys apart, far too little to guess one
MAX_KEYS = 10  # live keys per user (rolled keys in their grace period are not counted)
MAX_NAME = 64
USAGE_FLUSH_SECONDS = 60
#: A checked key is answered from memory this long: every write to keys, plans and bans forgets what it changed
#: at its commit, in this process and (REDIS_URL) on every replica (services/invalidations.py), so revocations
#: and plan changes still apply at once.
REMEMBER_SECONDS = 60.0
REMEMBER_MAX = 10_000
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_CHARS = frozenset(ALPHABET)


def _base62(number: int, width: int) -> str:
    digits = []
    for _position in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)  # 62**6 > 2**32: always fits


def new_key() -> str:
    body = "".join(secrets.choice(ALPHABET) for _char in range(BODY_LENGTH))
    return PREFIX + body + checksum(body)


def well_formed(raw: str) -> bool:
    """Prefix, length, alphabet and checksum: what can be told without the database."""
    if len(raw) != KEY_LENGTH or not raw.startswith(PREFIX) or not set(raw[len(PREFIX):]) <= _CHARS:
        return False
    body = raw[len(PREFIX):len(PREFIX) + BODY_LENGTH]
    return secrets.compare_digest(checksum(body), raw[-CHECKSUM_LENGTH:])


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiCaller:
    key_id: int
    user_id: int
    current: Current  # the owner's plan at the moment the key was checked
    banned: bool


def _log_failure(done: asyncio.Future) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("could not record API keys' last use (kept for the next write): %s", done.exception())


@dataclass(frozen=True, slots=True)
class _Known:
    until: float  # monotonic time this answer is trusted until
    key_id: int
    user_id: int
    grace_until: datetime | None
    banned: bool
    periods: tuple[tuple[str, datetime], ...]  # (plan, ends_at) of the owner's periods that had not ended


class TooManyKeys(Exception):
    """The user already has MAX_KEYS live keys."""


class ApiKeyService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow,
                 flush_every: timedelta = timedelta(seconds=USAGE_FLUSH_SECONDS),
                 remember_seconds: float = REMEMBER_SECONDS, shared: Callable[[], bool] | None = None) -> None:
        """`remember_seconds`: how long a checked key is answered from memory (0: never). `shared` (several
        replicas): whether the other replicas' invalidations are being heard now; while it says no, nothing is
        answered from memory."""
        self.db, self.clock, self.flush_every = database, clock, flush_every
        self._used: dict[int, datetime] = {}  # key id -> last use not yet written
        self._flushed_at: datetime | None = None
        self.remember_seconds, self.shared = remember_seconds, shared
        self._known: dict[str, _Known] = {}  # key hash -> what the database said
        self._looking: dict[tuple[str, int], asyncio.Future[_Known | None]] = {}
        self._flushing: asyncio.Future | None = None  # the background write of last uses (kept referenced)
        self._generation = 0  # bumped by every forget: a lookup that overlapped one is not remembered
        if remember_seconds > 0:  # this process's writes to keys, plans and bans forget what they change
            changes.watch(ApiKey, "id", self._forget, database=database)
            changes.watch(Subscription, "user_id", self._forget_users, database=database)
            changes.watch(User, "id", self._forget_users, database=database)

    def _forget(self, _rows: set | None) -> None:
        self._generation += 1
        self._known.clear()  # keys change rarely (roll, revoke): start afresh

    def _forget_users(self, user_ids: set | None) -> None:
        self._generation += 1
        if user_ids is None:
            self._known.clear()
        else:
            self._known = {h: k for h, k in self._known.items() if k.user_id not in user_ids}

    def _trusted(self) -> bool:
        """Is memory to be used now (always in one process; with replicas, while invalidations are heard)?"""
        return self.shared is None or self.shared()

    def usable(self, key: ApiKey, now: datetime | None = None) -> bool:
        now = now or self.clock()
        return key.revoked_at is None and (key.grace_until is None or key.grace_until > now)

    async def create(self, user_id: int, name: str) -> tuple[ApiKey, str]:
        """A new key named `name`: its row and the key itself (shown once, kept nowhere). Raises
        TooManyKeys at MAX_KEYS live keys."""
        raw = new_key()
        async with self.db.transaction() as session:
            await session.execute(select(User.id).where(User.id == user_id).with_for_update())  # one at a time
            live = await session.scalar(select(func.count()).select_from(ApiKey).where(
                ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None), ApiKey.grace_until.is_(None)))
            if live >= MAX_KEYS:
                raise TooManyKeys(user_id)
            key = ApiKey(user_id=user_id, name=name.strip()[:MAX_NAME], key_hash=key_hash(raw),
                         prefix=raw[:SHOWN_CHARS], permissions=[], created_at=self.clock())
            session.add(key)
        return key, raw

    async def roll(self, user_id: int, key_id: int, grace: timedelta) -> tuple[ApiKey, str] | None:
        """Replace a live key with a new one of the same name and permissions; the old key keeps working
        for `grace` (zero: not at all). None: no such live key of this user."""
        raw = new_key()
        now = self.clock()
        async with self.db.transaction() as session:
            old = await session.scalar(select(ApiKey).where(
                ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None),
                ApiKey.grace_until.is_(None)).with_for_update())
            if old is None:
                return None
            done = await session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.grace_until.is_(None))
                                         .values(grace_until=now + max(grace, timedelta(0))))
            if done.rowcount != 1:
                return None
            key = ApiKey(user_id=user_id, name=old.name, key_hash=key_hash(raw), prefix=raw[:SHOWN_CHARS],
                         permissions=list(old.permissions or []), created_at=now, rolled_from_id=old.id)
            session.add(key)
        return key, raw

    async def revoke(self, user_id: int, key_id: int) -> bool:
        """Switch a key off at once (a rolled key in its grace period too). False: not this user's, or
        already off."""
        now = self.clock()
        async with self.db.transaction() as session:
            done = await session.execute(update(ApiKey).where(
                ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None),
                or_(ApiKey.grace_until.is_(None), ApiKey.grace_until > now)).values(revoked_at=now))
        self._used.pop(key_id, None)
        return done.rowcount == 1

    async def revoke_any(self, key_id: int, *, user_id: int | None = None) -> ApiKey | None:
        """An admin switches a user's key off at once (a rolled key in its grace period too): the key as it
        now is, or None when there is no such usable key (of `user_id`, when given)."""
        now = self.clock()
        async with self.db.transaction() as session:
            usable = (ApiKey.id == key_id, ApiKey.revoked_at.is_(None),
                      or_(ApiKey.grace_until.is_(None), ApiKey.grace_until > now),
                      *((ApiKey.user_id == user_id,) if user_id is not None else ()))
            key = await session.scalar(select(ApiKey).where(*usable).with_for_update())
            if key is None:
                return None
            done = await session.execute(update(ApiKey).where(*usable).values(revoked_at=now))
            if done.rowcount != 1:
                return None
        self._used.pop(key_id, None)
        return key

    async def keys(self, user_id: int) -> list[ApiKey]:
        """The user's usable keys (rolled ones still in their grace period included), oldest first, with
        their last use up to now."""
        await self.flush_usage()
        now = self.clock()
        async with self.db.session() as session:
            rows = await session.scalars(select(ApiKey).where(
                ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None),
                or_(ApiKey.grace_until.is_(None), ApiKey.grace_until > now)).order_by(ApiKey.id))
            return list(rows)

    async def get(self, user_id: int, key_id: int) -> ApiKey | None:
        """One usable key of this user."""
        return next((k for k in await self.keys(user_id) if k.id == key_id), None)

    async def authenticate(self, raw: str) -> ApiCaller | None:
        """The caller of a presented key; None for a malformed, unknown, revoked or past-grace key (no
        database lookup for a malformed one)."""
        if not well_formed(raw):
            return None
        now = self.clock()
        digest = key_hash(raw)
        known = self._known.get(digest) if self._trusted() else None
        if known is None or known.until < time.monotonic():
            known = await self._shared_look_up(digest, now)
            if known is None:
                return None
        if known.grace_until is not None and known.grace_until <= now:
            return None
        self._used[known.key_id] = now
        if self._flushed_at is None or now - self._flushed_at >= self.flush_every:
            self._flushed_at = now  # written in the background: no request waits for it
            self._flushing = asyncio.ensure_future(self.flush_usage())
            self._flushing.add_done_callback(_log_failure)
        current = best_plan((plan, ends) for plan, ends in known.periods if ends > now)
        return ApiCaller(key_id=known.key_id, user_id=known.user_id, current=current, banned=known.banned)

    async def _shared_look_up(self, digest: str, now: datetime) -> _Known | None:
        """One query for every request that presents this key at the same moment; asked again when a key, a
        plan or a ban changed while it ran (its answer may predate the change)."""
        while True:
            generation = self._generation
            pending = self._looking.get((digest, generation))
            if pending is None:
                pending = self._looking[(digest, generation)] = asyncio.ensure_future(self._look_up(digest, now))
                pending.add_done_callback(lambda _done, k=(digest, generation): self._looking.pop(k, None))
            known = await asyncio.shield(pending)
            if known is None or generation == self._generation:
                return known

    async def _look_up(self, digest: str, now: datetime) -> _Known | None:
        """The key, its owner's ban and plan periods: one query; remembered for `remember_seconds`."""
        generation = self._generation
        async with self.db.session() as session:
            rows = (await session.execute(
                select(ApiKey.id, ApiKey.user_id, ApiKey.grace_until, User.is_banned, Subscription.plan,
                       Subscription.ends_at)
                .join(User, User.id == ApiKey.user_id)
                .outerjoin(Subscription, (Subscription.user_id == ApiKey.user_id) & (Subscription.ends_at > now))
                .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None),
                       or_(ApiKey.grace_until.is_(None), ApiKey.grace_until > now)))).all()
        if not rows:
            return None
        key_id, user_id, grace_until, banned = rows[0][:4]
        known = _Known(time.monotonic() + self.remember_seconds, key_id, user_id, grace_until, bool(banned),
                       tuple((plan, ends) for *_key, plan, ends in rows if plan is not None))
        if self.remember_seconds > 0 and generation == self._generation and self._trusted():
            if len(self._known) >= REMEMBER_MAX:
                self._known.clear()
            self._known[digest] = known
        return known

    async def flush_usage(self) -> int:
        """Write the remembered last uses in one transaction; how many keys were written."""
        self._flushed_at = self.clock()
        if not self._used:
            return 0
        used, self._used = dict(sorted(self._used.items())), {}  # in id order: replicas never deadlock
        try:
            await self._write_usage(used)
        except Exception:
            for key_id, at in used.items():  # kept for the next write
                self._used[key_id] = max(at, self._used.get(key_id, at))
            raise
        return len(used)

    async def _write_usage(self, used: dict[int, datetime]) -> None:
        keys = ApiKey.__table__.c  # a table-level update: a last use changes no key (db.changes does not see it)
        async with self.db.transaction() as session:
            for key_id, at in used.items():
                await session.execute(update(ApiKey.__table__).where(
                    keys.id == key_id, or_(keys.last_used_at.is_(None), keys.last_used_at < at))
                    .values(last_used_at=at))
