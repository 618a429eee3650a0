"""Translations: aiogram's gettext I18n with catalogues in bot/locales (English msgids)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"


def build_i18n() -> I18n:
    return I18n(path=LOCALES_DIR, default_locale="en", domain=DOMAIN)


class UserLocaleMiddleware(I18nMiddleware):
    """Uses the language stored for the user (set by UserMiddleware), not the client's."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        info = data.get("user_info")
        if info is not None and info.language in self.i18n.locales:
            return info.language
        return self.i18n.default_locale

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        """What aiogram's I18nMiddleware does, with the two context variables set directly instead of
        through two generator context managers (this runs for every update)."""
        i18n = self.i18n
        locale = await self.get_locale(event, data)
        if self.i18n_key:
            data[self.i18n_key] = i18n
        if self.middleware_key:
            data[self.middleware_key] = self
        current = I18n.set_current(i18n)
        language = i18n.ctx_locale.set(locale)
        try:
            return await handler(event, data)
        finally:
            i18n.ctx_locale.reset(language)
            I18n.reset_current(current)
