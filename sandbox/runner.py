"""`run.py --sandbox`: start the local stand-ins and point the bot's settings at them."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from sandbox.telegram import TelegramStandIn
from services.settings import Settings

SANDBOX_TOKEN = "1234567890:SANDBOX-not-a-real-token-000000"
SANDBOX_ADMIN_ID = 1000
SANDBOX_DB = Path("data/sandbox.db")


class Sandbox:
    def __init__(self) -> None:
        self.telegram = TelegramStandIn()
        self.base_url = ""

    async def start(self, settings: Settings, *, host: str = "127.0.0.1", port: int = 0) -> Settings:
        """Start the stand-ins; return the settings the bot should run with."""
        self.base_url = await self.telegram.start(host, port)
        overrides: dict = {
            "telegram_bot_token": SecretStr(SANDBOX_TOKEN),
            "telegram_api_url": self.base_url,
            "telegram_webhook_url": None,
            "admin_ids": settings.admin_ids or [SANDBOX_ADMIN_ID],
        }
        if "DATABASE_URL" not in os.environ:  # a fresh database each time, unless told otherwise
            overrides["database_url"] = fresh_sqlite(SANDBOX_DB)
        return settings.model_copy(update=overrides)

    @property
    def chat_url(self) -> str:
        return self.base_url

    async def stop(self) -> None:
        await self.telegram.stop()


def fresh_sqlite(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"
