"""db/changes.py: which rows a commit changed, told to the caches of the Database that made it (SQLite and
PostgreSQL). A bulk UPDATE that names its rows tells just those, so one ban does not empty every cache."""

from __future__ import annotations

from sqlalchemy import update

from db import changes
from db.engine import Database
from db.models import User
from services.users import UserService


class Heard:
    def __init__(self) -> None:
        self.calls: list[set | None] = []

    def __call__(self, values: set | None) -> None:
        self.calls.append(values)


async def test_a_commit_tells_its_own_database_watchers_the_rows_it_changed(database, database_url):
    users = UserService(database)
    for uid in (1, 2, 3):
        await users.seen(uid, username=None, first_name="U", language_code="en")
    other = Database(database_url)  # another replica's connections to the same database
    mine, theirs, forwarded = Heard(), Heard(), []
    changes.watch(User, "id", mine, database=database)
    changes.watch(User, "id", theirs, database=other)
    stop = changes.forward(database, forwarded.append)
    try:
        async with database.transaction() as session:
            await session.execute(update(User).where(User.id == 2, User.is_banned.is_(False)).values(is_banned=True))
        async with database.transaction() as session:
            await session.execute(update(User).where(User.id.in_([1, 3])).values(language="ru"))
        async with database.transaction() as session:
            await session.execute(update(User).where(User.language == "ru").values(is_blocked=True))
        async with database.transaction() as session:  # rolled back: nothing is told
            await session.execute(update(User).where(User.id == 1).values(language="en"))
            await session.rollback()
        assert mine.calls == [{2}, {1, 3}, None]  # the last names no rows: any
        assert theirs.calls == []  # not its commits (another replica hears them through Redis)
        assert forwarded == [{("users", "id"): {2}}, {("users", "id"): {1, 3}}, {("users", "id"): None}]

        changes.apply(other, "users", "id", {3})  # a message from the other replica
        assert theirs.calls == [{3}] and mine.calls[-1] is None
    finally:
        stop()
        await other.close()
