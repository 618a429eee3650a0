"""Inline keyboards and their callback-data schemes. Built per call so labels follow the locale."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import TelegramId


class Menu(CallbackData, prefix="menu"):
    section: str


class Lang(CallbackData, prefix="lang"):
    code: str


class SupportReply(CallbackData, prefix="sup"):
    user_id: TelegramId


MENU_SECTIONS = ("tokens", "plans", "whales", "orders", "settings", "help")


def main_menu() -> InlineKeyboardMarkup:
    labels = {
        "tokens": _("🤖 AI tokens"),
        "plans": _("📈 Signal plans"),
        "whales": _("🐋 Whale leaderboard"),
        "orders": _("🧾 My orders"),
        "settings": _("⚙️ Settings"),
        "help": _("❓ Help"),
    }
    builder = InlineKeyboardBuilder()
    for section in MENU_SECTIONS:
        builder.button(text=labels[section], callback_data=Menu(section=section))
    builder.adjust(2)
    return builder.as_markup()


def back_to_menu() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))
    return builder.as_markup()


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
