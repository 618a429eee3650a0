"""Apply Alembic migrations programmatically (at start-up and in tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from db.engine import Database

ROOT = Path(__file__).resolve().parent.parent


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
        await connection.run_sync(lambda sync_conn: action(alembic_config(sync_conn)))
        await connection.commit()
