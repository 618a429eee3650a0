"""Ratings of signal providers: 1–5 stars and a short review, one per user per provider (rating again edits it),
allowed once the user has been subscribed for `MIN_DAYS` (paid time already elapsed, so a refunded month's
unused part does not count); the provider may reply to each once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from db.base import utcnow
from db.engine import Database
from db.models_marketplace import Provider, ProviderSubscription
from db.models_ratings import ProviderRating
from services.text import strip_invisible_or_none

MIN_DAYS = 7
MAX_REVIEW = 300


class Problem(StrEnum):
    TOO_SOON = "too_soon"  # subscribed for less than MIN_DAYS (days_left says how long)
    OWN = "own"  # a provider rating itself
    STARS = "star_count"  # not 1 to 5
    TEXT = "text"  # empty, or longer than MAX_REVIEW
    NO_RATING = "no_rating"  # a review (or a reply) for a rating that does not exist
    REPLIED = "replied"  # the provider has replied to this rating already
    NOT_YOURS = "not_yours"  # a reply to another provider's rating


class RatingRefused(Exception):
    def __init__(self, problem: Problem, days_left: int = 0) -> None:
        super().__init__(problem.value)
        self.problem, self.days_left = problem, days_left


@dataclass(frozen=True, slots=True)
class Summary:
    average: Decimal | None  # one decimal; None: no ratings yet
    count: int
    latest: list[ProviderRating]


def parse_text(value: str | None) -> str:
    text = " ".join((strip_invisible_or_none(value) or "").split())
    if not 1 <= len(text) <= MAX_REVIEW:
        raise RatingRefused(Problem.TEXT)
    return text


class RatingService:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.clock = database, clock

    async def subscribed_for(self, user_id: int, provider_id: int) -> timedelta:
        """How long the user has been subscribed to the provider so far (paid time already elapsed)."""
        now = self.clock()
        async with self.db.session() as session:
            periods = (await session.execute(select(ProviderSubscription.starts_at, ProviderSubscription.ends_at)
                                             .where(ProviderSubscription.user_id == user_id,
                                                    ProviderSubscription.provider_id == provider_id))).all()
        return sum((min(end, now) - start for start, end in periods if start < now and end > start), timedelta(0))

    async def check(self, user_id: int, provider_id: int) -> None:
        """Whether the user may rate the provider now: raises RatingRefused (own provider, too soon)."""
        async with self.db.session() as session:
            owner = await session.scalar(select(Provider.user_id).where(Provider.id == provider_id))
        if owner == user_id:
            raise RatingRefused(Problem.OWN)
        elapsed = await self.subscribed_for(user_id, provider_id)
        if elapsed < timedelta(days=MIN_DAYS):
            left = timedelta(days=MIN_DAYS) - elapsed
            raise RatingRefused(Problem.TOO_SOON, days_left=max(1, left.days + (1 if left.seconds else 0)))

    async def rate(self, user_id: int, provider_id: int, stars: int) -> tuple[ProviderRating, bool]:
        """Record or change the user's stars for the provider: (the rating, True if it is new). Raises
        RatingRefused."""
        if not 1 <= stars <= 5:
            raise RatingRefused(Problem.STARS)
        await self.check(user_id, provider_id)
        for _attempt in range(2):  # a concurrent first rating by the same user: the second try edits it
            try:
                return await self._rate(user_id, provider_id, stars)
            except IntegrityError:
                continue
        return await self._rate(user_id, provider_id, stars)

    async def _rate(self, user_id: int, provider_id: int, stars: int) -> tuple[ProviderRating, bool]:
        now = self.clock()
        async with self.db.transaction() as session:
            done = await session.execute(update(ProviderRating).where(
                ProviderRating.provider_id == provider_id, ProviderRating.user_id == user_id)
                .values(stars=stars, updated_at=now))
            if done.rowcount == 1:
                return await self._mine(session, user_id, provider_id), False
            session.add(ProviderRating(provider_id=provider_id, user_id=user_id, stars=stars, created_at=now,
                                       updated_at=now))
            await session.flush()
            return await self._mine(session, user_id, provider_id), True

    @staticmethod
    async def _mine(session, user_id: int, provider_id: int) -> ProviderRating:
        return await session.scalar(select(ProviderRating).where(
            ProviderRating.provider_id == provider_id, ProviderRating.user_id == user_id)
            .execution_options(populate_existing=True))

    async def review(self, user_id: int, provider_id: int, text: str) -> ProviderRating:
        """Set (or replace) the review of the user's rating. Raises RatingRefused."""
        review = parse_text(text)
        async with self.db.transaction() as session:
            done = await session.execute(update(ProviderRating).where(
                ProviderRating.provider_id == provider_id, ProviderRating.user_id == user_id)
                .values(review=review, updated_at=self.clock()))
            if done.rowcount != 1:
                raise RatingRefused(Problem.NO_RATING)
            return await self._mine(session, user_id, provider_id)

    async def mine(self, user_id: int, provider_id: int) -> ProviderRating | None:
        async with self.db.session() as session:
            return await self._mine(session, user_id, provider_id)

    async def reply(self, provider_user_id: int, rating_id: int, text: str) -> ProviderRating:
        """The provider's one reply to a rating of theirs. Raises RatingRefused."""
        reply = parse_text(text)
        async with self.db.transaction() as session:
            rating = await session.get(ProviderRating, rating_id)
            if rating is None:
                raise RatingRefused(Problem.NO_RATING)
            owner = await session.scalar(select(Provider.user_id).where(Provider.id == rating.provider_id))
            if owner != provider_user_id:
                raise RatingRefused(Problem.NOT_YOURS)
            done = await session.execute(update(ProviderRating).where(
                ProviderRating.id == rating_id, ProviderRating.reply.is_(None))
                .values(reply=reply, replied_at=self.clock()))
            if done.rowcount != 1:
                raise RatingRefused(Problem.REPLIED)
            return await session.get(ProviderRating, rating_id, populate_existing=True)

    async def get(self, rating_id: int) -> ProviderRating | None:
        async with self.db.session() as session:
            return await session.get(ProviderRating, rating_id)

    async def summary(self, provider_id: int, latest: int = 3) -> Summary:
        async with self.db.session() as session:
            total, count = (await session.execute(
                select(func.coalesce(func.sum(ProviderRating.stars), 0), func.count())
                .where(ProviderRating.provider_id == provider_id))).one()
            rows = list(await session.scalars(select(ProviderRating).where(ProviderRating.provider_id == provider_id)
                                              .order_by(ProviderRating.updated_at.desc(), ProviderRating.id.desc())
                                              .limit(latest)))
        average = (Decimal(total) / count).quantize(Decimal("0.1"), ROUND_HALF_UP) if count else None
        return Summary(average, count, rows)
