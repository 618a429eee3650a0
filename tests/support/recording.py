"""An aiogram session that records every Bot API call and answers like Telegram would.

In-process tests run the real dispatcher, routers, middlewares and outgoing gate; only
the network hop is replaced by this recorder.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    EditMessageText,
    GetMe,
    SendDocument,
    SendInvoice,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import Chat, Invoice, Message, MessageId, User

BOT_USER = User(id=42, is_bot=True, first_name="Test bot", username="test_bot")


@dataclass
class Call:
    method: TelegramMethod
    name: str


class RecordingSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.blocked: set[int] = set()
        self._ids = itertools.count(1000)

    async def make_request(self, bot: Bot, method: TelegramMethod, timeout: int | None = None) -> Any:
        self.calls.append(Call(method, type(method).__name__))
        chat_id = getattr(method, "chat_id", None)
        if chat_id in self.blocked:
            raise TelegramForbiddenError(method=method, message="Forbidden: bot was blocked by the user")
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, SendMessage):
            return self._message(method.chat_id, method.text, method.reply_markup)
        if isinstance(method, EditMessageText):
            return self._message(method.chat_id or 0, method.text, method.reply_markup, method.message_id)
        if isinstance(method, CopyMessage):
            return MessageId(message_id=next(self._ids))
        if isinstance(method, AnswerCallbackQuery):
            return True
        if isinstance(method, SendInvoice):
            message = self._message(method.chat_id, method.title, method.reply_markup)
            return message.model_copy(update={"text": None, "invoice": Invoice(
                title=method.title, description=method.description, start_parameter="",
                currency=method.currency, total_amount=sum(p.amount for p in method.prices))})
        if isinstance(method, SendPhoto | SendDocument):
            return self._message(method.chat_id, method.caption or "", method.reply_markup)
        return True

    def _message(self, chat_id: Any, text: str, markup: Any, message_id: int | None = None) -> Message:
        return Message(
            message_id=message_id or next(self._ids),
            date=datetime.now(UTC),
            chat=Chat(id=int(chat_id), type="private"),
            from_user=BOT_USER,
            text=text,
            reply_markup=markup,
        )

    async def close(self) -> None:
        pass

    async def stream_content(self, url: str, headers: dict | None = None, timeout: int = 30,
                             chunk_size: int = 65536, raise_for_status: bool = True
                             ) -> AsyncGenerator[bytes, None]:  # pragma: no cover - unused
        yield b""

    # Queries used by tests ---------------------------------------------------

    def of(self, name: str) -> list[TelegramMethod]:
        return [c.method for c in self.calls if c.name == name]

    def texts_to(self, chat_id: int) -> list[str]:
        return [c.method.text for c in self.calls
                if c.name in ("SendMessage", "EditMessageText") and c.method.chat_id == chat_id]

    def clear(self) -> None:
        self.calls.clear()
