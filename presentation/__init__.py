"""Shared wording and formatting, below both handlers/ and processing/.

Imports only services data types, aiogram i18n and the standard library; returns HTML strings for
Telegram's HTML parse mode (user and external text escaped here)."""
