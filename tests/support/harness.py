"""Drive the real dispatcher in-process: build updates, feed them, read what the bot sent."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.types import CallbackQuery, Chat, Message, MessageEntity, Update, User

from bot.factory import create_dispatcher
from bot.gate import OutgoingGate
from bot.i18n import build_i18n
from bot.middlewares import ThrottleMiddleware
from db.engine import Database
from services.settings import Settings
from services.users import UserService
from tests.support.recording import RecordingSession


class Harness:
    def __init__(self, database: Database, settings: Settings, *, throttle: ThrottleMiddleware | None = None):
        self.db = database
        self.settings = settings
        self.users = UserService(database)
        self.session = RecordingSession()
        self.gate = OutgoingGate(1000, on_blocked=self.users.mark_blocked)
        self.session.middleware(self.gate)
        self.bot = Bot("42:TEST-TOKEN-abcdefghijklmnopqrstuv", session=self.session,
                       default=DefaultBotProperties(parse_mode=ParseMode.HTML))
        self.i18n = build_i18n()
        self.dp: Dispatcher = create_dispatcher(
            settings, users=self.users, i18n=self.i18n, db=database,
            throttle=throttle or ThrottleMiddleware(limit=1000),
        )
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    @staticmethod
    def user(user_id: int, *, first_name: str = "Alice", username: str | None = None,
             language_code: str | None = "en") -> User:
        return User(id=user_id, is_bot=False, first_name=first_name, username=username,
                    language_code=language_code)

    async def send(self, user: User | int, text: str) -> None:
        user = self.user(user) if isinstance(user, int) else user
        entities = None
        if text.startswith("/"):
            length = len(text.split()[0])
            entities = [MessageEntity(type="bot_command", offset=0, length=length)]
        message = Message(
            message_id=next(self._message_ids), date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"), from_user=user, text=text, entities=entities,
        )
        await self.dp.feed_update(self.bot, Update(update_id=next(self._update_ids), message=message))

    async def press(self, user: User | int, data: str, *, message_id: int = 1, text: str = "menu") -> None:
        user = self.user(user) if isinstance(user, int) else user
        message = Message(message_id=message_id, date=datetime.now(UTC), chat=Chat(id=user.id, type="private"),
                          from_user=self.user(42), text=text)
        query = CallbackQuery(id=str(next(self._update_ids)), from_user=user, chat_instance="ci",
                              message=message, data=data)
        await self.dp.feed_update(self.bot, Update(update_id=next(self._update_ids), callback_query=query))
