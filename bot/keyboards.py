"""Inline keyboards and their callback-data schemes. Built per call so labels follow the locale."""

from __future__ import annotations

from collections.abc import Iterable

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import TelegramId
from services.products import MenuEntry, text


class Menu(CallbackData, prefix="menu"):
    section: str


class Lang(CallbackData, prefix="lang"):
    code: str


class SupportReply(CallbackData, prefix="sup"):
    user_id: TelegramId


#: The main menu's own entries, after the products' ones (`services.products.MenuEntry`).
MENU_SECTIONS = ("whales", "orders", "settings", "help")


def main_menu(products: Iterable[MenuEntry] = ()) -> InlineKeyboardMarkup:
    """The products' entries (in catalog order), then the rest. One markup per language and list of entries,
    built once (every /start shows it; it is only serialised, never changed)."""
    products = tuple(products)
    key = (get_i18n().current_locale, tuple(entry.section for entry in products))
    markup = _MENUS.get(key)
    if markup is None:
        markup = _MENUS[key] = _build_main_menu(products)
    return markup


def _build_main_menu(products: tuple[MenuEntry, ...]) -> InlineKeyboardMarkup:
    labels = {
        "whales": _("🐋 Whale leaderboard"),
        "orders": _("🧾 My orders"),
        "settings": _("⚙️ Settings"),
        "help": _("❓ Help"),
    }
    builder = InlineKeyboardBuilder()
    for entry in products:
        builder.button(text=text(entry.label), callback_data=Menu(section=entry.section))
    for section in MENU_SECTIONS:
        builder.button(text=labels[section], callback_data=Menu(section=section))
    builder.adjust(2)
    return builder.as_markup()


def back_to_menu() -> InlineKeyboardMarkup:
    """One markup per language, built once (it is only serialised, never changed)."""
    locale = get_i18n().current_locale
    markup = _BACK.get(locale)
    if markup is None:
        builder = InlineKeyboardBuilder()
        builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))
        markup = _BACK[locale] = builder.as_markup()
    return markup


_BACK: dict[str, InlineKeyboardMarkup] = {}
_MENUS: dict[tuple[str, tuple[str, ...]], InlineKeyboardMarkup] = {}


def languages(current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code, label in (("en", "🇬🇧 English"), ("ru", "🇷🇺 Русский")):
        mark = "✓ " if code == current else ""
        builder.button(text=mark + label, callback_data=Lang(code=code))
    builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))
    builder.adjust(2, 1)
    return builder.as_markup()


def support_reply(user_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("↩️ Reply"), callback_data=SupportReply(user_id=user_id))
    return builder.as_markup()


def link_button(label: str, url: str) -> InlineKeyboardMarkup:
    """One button that opens `url` (an invite, a pay page)."""
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=label, url=url)]])
