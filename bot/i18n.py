"""Translations: aiogram's gettext I18n with catalogues in bot/locales (English msgids)."""

from __future__ import annotations

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
        if info is not None and info.language in self.i18n.available_locales:
            return info.language
        return self.i18n.default_locale
