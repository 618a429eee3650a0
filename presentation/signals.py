"""Signals as Telegram messages: the Cornix-parsable signal and its later events (HTML; pair, note,
timeframe and ecosystem escaped)."""

from __future__ import annotations

import html
from decimal import ROUND_HALF_UP, Decimal

from aiogram.utils.i18n import gettext as _

from db.models_signals import Signal, SignalEvent
from presentation.formatting import decimal_text, percent
from services.money import plain


def _price(value: Decimal | str) -> str:
    return plain(Decimal(value))


def render_signal(signal: Signal) -> str:
    """Cornix-parsable: full pair, the Entry, Take-Profit and Stop keywords, one price per line.
    Those keywords stay English in every language (they are a format parsers read, not prose)."""
    side = "Long" if signal.side == "long" else "Short"
    lines = [f"<b>#{html.escape(signal.symbol)}</b> {side}", "",
             f"Entry: {_price(signal.entry)}", "", "Take-Profit Targets:"]
    lines += [f"{i}) {_price(tp)}" for i, tp in enumerate(signal.take_profits, 1)]
    lines += ["", f"Stop: {_price(signal.stop_loss)}"]
    extra = []
    if signal.timeframe:
        extra.append(_("Timeframe: {timeframe}").format(timeframe=html.escape(signal.timeframe)))
    if signal.note:
        extra.append(f"<i>{html.escape(signal.note)}</i>")
    if signal.provider_id is not None and signal.provider is not None:  # a marketplace provider's
        extra.append(_("Signal #{id} · {ecosystem} · 📡 {provider}").format(
            id=signal.id, ecosystem=html.escape(signal.ecosystem), provider=html.escape(signal.provider.name)))
    else:
        extra.append(_("Signal #{id} · {ecosystem}").format(id=signal.id,
                                                            ecosystem=html.escape(signal.ecosystem)))
    return "\n".join([*lines, "", *extra])


def pnl_percent(signal: Signal, price: Decimal) -> Decimal:
    """Profit or loss from entry to `price` in percent of the entry, for the signal's direction (exact)."""
    entry, price = Decimal(signal.entry), Decimal(price)
    move = price - entry if signal.side == "long" else entry - price
    return move * 100 / entry


def signed_percent(value: Decimal) -> str:
    """'+12.35%', '-3.1%', '0%' / '+12,35 %': two decimals at most, half up."""
    shown = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return ("+" if shown > 0 else "") + percent(shown / 100, digits=2, trim=True)


def render_event(event: SignalEvent, signal: Signal) -> str:
    pair = html.escape(signal.symbol)
    price = decimal_text(Decimal(event.price))  # an event is prose: the reader's decimal comma
    if event.type == "tp_hit":
        return _("🎯 #{pair} Take-Profit target {level} reached at {price}").format(
            pair=pair, level=event.level, price=price)
    if event.type == "sl_hit":
        return _("🛑 #{pair} Stop reached at {price}").format(pair=pair, price=price)
    return _("🏁 #{pair} closed at {price} · P/L {pnl}").format(
        pair=pair, price=price, pnl=signed_percent(pnl_percent(signal, event.price)))
