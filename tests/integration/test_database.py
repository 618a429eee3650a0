"""Migrations (stairway), SQLite tuning, and the user service — on SQLite and PostgreSQL."""

import asyncio
from datetime import timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from db import migrate
from db.base import Base
from db.engine import Database
from db.models import User
from services.users import LAST_SEEN_RESOLUTION, UserService
from tests.support.clock import Clock


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


async def table_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_stairway_every_migration_goes_up_down_and_up(database_url):
    db = Database(database_url)
    try:
        for revision in revisions():
            await migrate.upgrade(db, revision)
            await migrate.downgrade(db, "-1")
            await migrate.upgrade(db, revision)
        assert set(Base.metadata.tables) <= await table_names(db)
        await migrate.downgrade(db, "base")
        assert await table_names(db) <= {"alembic_version"}
    finally:
        await db.close()


async def test_models_match_migrations(database):
    """Autogenerate finds nothing to do: the migrations create exactly what the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    async with database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}),
                                       Base.metadata))
    assert diff == []


async def test_sqlite_is_tuned(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'dir' / 'bot.db'}")
    try:
        async with db.session() as s:
            assert (await s.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await s.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await s.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
    finally:
        await db.close()


async def test_concurrent_read_modify_write_loses_nothing(database):
    """Twenty writers each read a counter and write it back +1: BEGIN IMMEDIATE serialises them."""
    async with database.transaction() as s:
        s.add(User(id=1, language="en"))

    async def bump() -> None:
        async with database.transaction() as s:
            user = (await s.execute(select(User).where(User.id == 1).with_for_update())).scalar_one()
            await asyncio.sleep(0)
            user.username = str(int(user.username or 0) + 1)

    await asyncio.gather(*(bump() for _ in range(20)))
    async with database.session() as s:
        assert (await s.get(User, 1)).username == "20"


async def test_health_ping_reports_a_dead_database(tmp_path):
    db = Database("postgresql+asyncpg://nobody:nothing@127.0.0.1:1/none")
    assert await db.ping() is False
    await db.close()


async def test_user_recorded_once_then_only_every_few_minutes(database):
    clock = Clock()
    users = UserService(database, clock=clock)
    first = await users.seen(7, username="al", first_name="Al", language_code="ru-RU")
    assert first.is_new and first.language == "ru"

    writes = []
    from sqlalchemy import event

    event.listen(database.engine.sync_engine, "before_cursor_execute",
                 lambda *a: writes.append(a[2]) if a[2].lstrip().upper().startswith("UPDATE") else None)
    for _ in range(50):
        clock.now += timedelta(seconds=2)
        info = await users.seen(7, username="al", first_name="Al", language_code="ru")
        assert not info.is_new
    assert writes == []  # 50 updates within five minutes: no write at all

    clock.now += LAST_SEEN_RESOLUTION
    await users.seen(7, username="al", first_name="Al", language_code="ru")
    assert len(writes) == 1
    await users.seen(7, username="al_new", first_name="Al", language_code="ru")  # renamed: written at once
    assert len(writes) == 2
    stored = await users.get(7)
    assert stored.username == "al_new" and stored.last_seen == clock.now and stored.first_seen < clock.now


async def test_blocked_user_is_unblocked_when_they_write_again(database):
    users = UserService(database)
    await users.seen(8, username=None, first_name="B", language_code="en")
    await users.mark_blocked(8)
    assert (await users.get(8)).is_blocked
    await users.seen(8, username=None, first_name="B", language_code="en")
    assert not (await users.get(8)).is_blocked


@pytest.mark.parametrize(("referrer", "expected"), [(100, True), (7, False), (555, False)])
async def test_referrer_rules(database, referrer, expected):
    users = UserService(database)
    await users.seen(100, username=None, first_name="Ref", language_code="en")
    await users.seen(7, username=None, first_name="New", language_code="en")
    assert await users.set_referrer(7, referrer) is expected
    assert (await users.get(7)).referrer_id == (referrer if expected else None)
    assert await users.set_referrer(7, 100) is (not expected)  # set at most once
