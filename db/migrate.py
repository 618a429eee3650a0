"""Apply Alembic migrations programmatically (at start-up and in tests).

On PostgreSQL the run first takes a transaction-level advisory lock (`MIGRATION_LOCK_KEY`), so replicas
starting at the same moment on one database migrate once: the others wait for the first one's commit,
then find the schema at head and do nothing."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.engine import Database

ROOT = Path(__file__).resolve().parent.parent
#: The advisory lock a migration run holds on PostgreSQL until its commit (a fixed signed 64-bit key).
MIGRATION_LOCK_KEY = 0x6D69_6772_6174_6531


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "db" / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    await _run(database, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(database: Database, revision: str) -> None:
    await _run(database, lambda cfg: command.downgrade(cfg, revision))


async def _run(database: Database, action) -> None:
    async with database.engine.connect() as connection:
        if connection.dialect.name == "postgresql":  # held until the commit below, released by it
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await connection.run_sync(lambda sync_conn: action(alembic_config(sync_conn)))
        await connection.commit()
