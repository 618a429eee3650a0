"""Wording of a marketplace subscription's renewal reminder, and its "Renew" button (which places a new order
for the provider, as the card's subscribe button does: handlers.user.marketplace.buy)."""

from __future__ import annotations

import html

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from presentation.formatting import usd
from services.plan_notices import REMIND_1D


class RenewProvider(CallbackData, prefix="mkb"):
    """The same button data as the provider card's subscribe button (handlers.user.marketplace.MarketBuy; a
    test keeps them equal): a tap places a month's order and offers the payment methods."""

    id: int


def reminder_text(kind: str, provider: str, ends: str) -> str:
    name = html.escape(provider)
    if kind == REMIND_1D:
        text = _("⏰ Your subscription to <b>{provider}</b> ends within a day, on {ends}.")
    else:
        text = _("⏰ Your subscription to <b>{provider}</b> ends in 3 days, on {ends}.")
    return text.format(provider=name, ends=ends) + "\n" + _(
        "Renew to keep their signals: the new month is added to what's left.")


def renew_markup(provider_id: int, price_cents: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🔁 Renew · {price}").format(price=usd(price_cents)),
                   callback_data=RenewProvider(id=provider_id))
    return builder.as_markup()
