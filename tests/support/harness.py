"""Drive the real app in-process: the same wiring as run.py, fed updates, with a recording session
in place of the network."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from aiogram.types import CallbackQuery, Chat, Message, MessageEntity, Update, User

from bot.app import App
from bot.middlewares import ThrottleMiddleware
from config.settings import Settings
from db import migrate
from tests.support.recording import RecordingSession


class Harness:
    def __init__(self, settings: Settings, *, throttle: ThrottleMiddleware | None = None):
        self.session = RecordingSession()
        self.app = App(settings, session=self.session, throttle=throttle or ThrottleMiddleware(limit=1000))
        self.settings, self.db, self.users, self.bot, self.dp = settings, self.app.db, self.app.users, \
            self.app.bot, self.app.dp
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    async def start(self) -> Harness:
        await migrate.upgrade(self.db)
        return self

    async def close(self) -> None:
        await self.app.close_resources()

    @staticmethod
    def user(user_id: int, *, first_name: str = "Alice", username: str | None = None,
             language_code: str | None = "en") -> User:
        return User(id=user_id, is_bot=False, first_name=first_name, username=username,
                    language_code=language_code)

    async def send(self, user: User | int, text: str) -> None:
        user = self.user(user) if isinstance(user, int) else user
        entities = None
        if text.startswith("/"):
            entities = [MessageEntity(type="bot_command", offset=0, length=len(text.split()[0]))]
        message = Message(message_id=next(self._message_ids), date=datetime.now(UTC),
                          chat=Chat(id=user.id, type="private"), from_user=user, text=text, entities=entities)
        await self.dp.feed_update(self.bot, Update(update_id=next(self._update_ids), message=message))

    async def press(self, user: User | int, data: str, *, message_id: int = 1, text: str = "menu") -> None:
        user = self.user(user) if isinstance(user, int) else user
        message = Message(message_id=message_id, date=datetime.now(UTC), chat=Chat(id=user.id, type="private"),
                          from_user=self.user(42), text=text)
        query = CallbackQuery(id=str(next(self._update_ids)), from_user=user, chat_instance="ci",
                              message=message, data=data)
        await self.dp.feed_update(self.bot, Update(update_id=next(self._update_ids), callback_query=query))
