"""Bounded number types for button data (aiogram `CallbackData` fields).

A button's data comes back from the client and can be forged. A field typed with one of these
fails to unpack when its number cannot be real (a 23-digit order id, a page of -5), so the
button's filter does not match, no handler runs, nothing reaches the database, and the fallback
router answers "This button is no longer active"."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: A row id of one of our tables (INTEGER on PostgreSQL); 0 means "none" where a field has a default.
RowId = Annotated[int, Field(ge=0, le=2**31 - 1)]
#: A Telegram user or chat id (at most 52 significant bits).
TelegramId = Annotated[int, Field(ge=-(2**52), le=2**52)]
#: A page number, list position or choice index (-1 for "not chosen yet" where a field uses it).
Index = Annotated[int, Field(ge=-1, le=100_000)]
#: A count a button carries (tokens in a package).
Count = Annotated[int, Field(ge=0, le=10**12)]
