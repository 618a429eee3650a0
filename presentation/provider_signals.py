"""Wording of the guided `/signal` form (handlers/user/provider_signals.py): a marketplace provider publishes a
signal step by step and reports a target hit, a stop or a close on an open one. Prices in the reader's way of
writing numbers; what subscribers receive is presentation/signals.py's message."""

from __future__ import annotations

import html
from datetime import tzinfo
from decimal import Decimal

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from babel.numbers import get_decimal_symbol

from db.models_signals import Signal
from presentation.formatting import current_locale, datetime_text, decimal_text, validation_reason
from presentation.signals import pnl_percent, signed_percent
from services.provider_signals import AMBIGUOUS, STEPS, OpenSignal
from services.signals import SignalIn


def _e(value: str | None) -> str:
    return html.escape(value or "", quote=False)


def _price(value: Decimal | str) -> str:
    return decimal_text(Decimal(value))


def decimal_comma() -> bool:
    """Whether the reader writes decimals with a comma ("142,5"): then a comma inside a number is not a
    separator between prices."""
    return get_decimal_symbol(current_locale()) == ","


# ------------------------------------------------------------------------------------------ who may publish

def not_provider() -> str:
    return _("📈 /signal is where signal providers publish to their subscribers. Want to sell your signals? "
             "Apply with /provider.")


def pending() -> str:
    return _("⏳ Your provider application is under review; you can publish once it is approved (/provider).")


def suspended(reason: str | None) -> str:
    return _("⛔ Your provider account is suspended, so publishing is closed: {reason}").format(
        reason=_e(reason or "—"))


# ------------------------------------------------------------------------------------------ the first screen

def home(name: str, opened: list[Signal], shown: int) -> str:
    lines = [_("📈 <b>Publish as {name}</b>").format(name=_e(name)), "",
             _("A new signal goes to your subscribers at once and onto your hash-chained track record; it cannot "
               "be edited or deleted afterwards.")]
    if opened:
        lines += ["", _("Tap an open signal to report a target hit, the stop or a close.")]
        if len(opened) >= shown:
            lines.append(_("Showing your {n} newest open signals.").format(n=shown))
    else:
        lines += ["", _("You have no open signals.")]
    return "\n".join(lines)


def new_label() -> str:
    return _("➕ New signal")


def side_label(side: str) -> str:
    return _("🟢 Long") if side == "long" else _("🔴 Short")


def open_label(signal: Signal) -> str:
    return _("#{id} {pair} {side} · entry {entry}").format(
        id=signal.id, pair=signal.symbol, side=side_name(signal.side), entry=_price(signal.entry))


def side_name(side: str) -> str:
    return _("Long") if side == "long" else _("Short")


def cancel_label() -> str:
    return _("Cancel")


def skip_label() -> str:
    return _("Skip ⏭")


def back_label() -> str:
    return _("⬅️ Back")


def timeframe_label(timeframe: str) -> str:
    """"4h" as the reader writes it ("4h" / "4 ч")."""
    count, unit = timeframe[:-1], timeframe[-1]
    units = {"s": _("{n}s"), "m": _("{n}m"), "h": _("{n}h"), "d": _("{n}d"), "w": _("{n}w"), "M": _("{n}mo")}
    return units[unit].format(n=count) if unit in units and count.isdigit() else timeframe


# ------------------------------------------------------------------------------------------ the questions

def ask(step: str, *, side: str | None = None, entry: str | None = None) -> str:
    """The question of one step (services.provider_signals.STEPS)."""
    head = _("Step {n} of {total}.").format(n=STEPS.index(step) + 1, total=len(STEPS))
    example = _price("142.5")
    questions = {
        "ecosystem": _("Which market is it for?"),
        "symbol": _("The pair, such as SOL/USDT or BTC/USDT:"),
        "side": _("Long or short?"),
        "entry": _("The entry price, such as {example}:").format(example=example),
        "take_profits": _("The take-profit price, or several separated by spaces, such as {a} {b}:").format(
            a=_price("150"), b=_price("158.5")),
        "stop_loss": _("The stop loss price:"),
        "timeframe": _("The timeframe (or type one, such as <code>30m</code>), or Skip:"),
        "note": _("A short note for your subscribers (up to 500 characters), or Skip:"),
    }
    text = f"{head} {questions[step]}"
    if step in ("take_profits", "stop_loss") and side and entry:
        hints = {("take_profits", "long"): _("For a long, targets go above the entry ({entry})."),
                 ("take_profits", "short"): _("For a short, targets go below the entry ({entry})."),
                 ("stop_loss", "long"): _("For a long, the stop goes below the entry ({entry})."),
                 ("stop_loss", "short"): _("For a short, the stop goes above the entry ({entry}).")}
        if (step, side) in hints:
            text += "\n" + hints[step, side].format(entry=_price(entry))
    return text


def field_name(field: str) -> str:
    return {"ecosystem": _("Market"), "symbol": _("Pair"), "side": _("Side"), "entry": _("Entry price"),
            "take_profits": _("Take-profit"), "stop_loss": _("Stop loss"), "timeframe": _("Timeframe"),
            "note": _("Note"), "price": _("Price"), "level": _("Target")}.get(field.split(".")[0], field)


def wrong(field: str, reason: str) -> str:
    """Why an answer was refused (the API's reason, in the reader's language); the question follows."""
    reason = _("is ambiguous: write decimals with a dot and separate prices with spaces, such as {example}").format(
        example=f"{_price('150')} {_price('158.5')}") if reason == AMBIGUOUS else validation_reason(reason)
    return _("❌ {field}: {reason}").format(field=field_name(field), reason=html.escape(reason))


def press_a_button() -> str:
    return _("Please tap one of the buttons, or Cancel.")


def answer_with_text() -> str:
    return _("Please answer with text, or tap Cancel.")


def preview(signal: SignalIn, subscribers: int) -> str:
    lines = [_("Check your signal:"), "",
             f"<b>{_e(signal.symbol)}</b> · {side_name(signal.side)} · {_e(signal.ecosystem)}",
             _("Entry: {price}").format(price=_price(signal.entry)),
             _("Take-profit: {prices}").format(prices=" · ".join(_price(tp) for tp in signal.take_profits)),
             _("Stop loss: {price}").format(price=_price(signal.stop_loss))]
    if signal.timeframe:
        lines.append(_("Timeframe: {timeframe}").format(timeframe=timeframe_label(signal.timeframe)))
    if signal.note:
        lines.append(f"<i>{_e(signal.note)}</i>")
    lines += ["", ngettext("Publish sends it to your {n} subscriber now; it cannot be edited afterwards.",
                           "Publish sends it to your {n} subscribers now; it cannot be edited afterwards.",
                           subscribers).format(n=subscribers)]
    return "\n".join(lines)


def publish_label() -> str:
    return _("📣 Publish")


def published(signal_id: int, recipients: int) -> str:
    return ngettext("✅ Signal #{id} published: on its way to {n} subscriber.",
                    "✅ Signal #{id} published: on its way to {n} subscribers.", recipients).format(
        id=signal_id, n=recipients)


def already_published(signal_id: int) -> str:
    return _("This signal is already published (#{id}); nothing was sent twice.").format(id=signal_id)


def stale() -> str:
    return _("This form is no longer open: start again with /signal.")


# ------------------------------------------------------------------------------------------ events

def signal_card(found: OpenSignal, tz: tzinfo | None) -> str:
    signal = found.signal
    targets = [("✅ " if level in found.hit else "") + _price(tp)
               for level, tp in enumerate(signal.take_profits, 1)]
    lines = [f"<b>#{signal.id} {_e(signal.symbol)}</b> · {side_name(signal.side)} · {_e(signal.ecosystem)}",
             _("Published {when}").format(when=datetime_text(signal.received_at, tz)),
             _("Entry: {price}").format(price=_price(signal.entry)),
             _("Take-profit: {prices}").format(prices=" · ".join(targets)),
             _("Stop loss: {price}").format(price=_price(signal.stop_loss)), ""]
    lines.append(_("This signal is closed.") if found.closed else
                 _("What happened? Your subscribers get it at once, and it goes on your track record."))
    return "\n".join(lines)


def tp_label(level: int, price: str) -> str:
    return _("🎯 Target {level} hit · {price}").format(level=level, price=_price(price))


def sl_label(price: Decimal) -> str:
    return _("🛑 Stop hit · {price}").format(price=_price(price))


def close_label() -> str:
    return _("🏁 Close at a price…")


def ask_close_price(signal: Signal) -> str:
    return _("The price #{id} {pair} closed at (entry {entry}):").format(
        id=signal.id, pair=_e(signal.symbol), entry=_price(signal.entry))


def confirm_event(signal: Signal, type_: str, level: int, price: Decimal) -> str:
    pair, shown = _e(signal.symbol), _price(price)
    if type_ == "tp_hit":
        what = _("#{id} {pair}: target {level} reached at {price}").format(id=signal.id, pair=pair, level=level,
                                                                             price=shown)
    elif type_ == "sl_hit":
        what = _("#{id} {pair}: stop reached at {price}").format(id=signal.id, pair=pair, price=shown)
    else:
        what = _("#{id} {pair}: closed at {price}").format(id=signal.id, pair=pair, price=shown)
    pnl = _("P/L from the entry: {pnl}").format(pnl=signed_percent(pnl_percent(signal, price)))
    return "\n".join([_("Report this to your subscribers?"), "", f"<b>{what}</b>", pnl])


def confirm_label() -> str:
    return _("✅ Confirm")


def event_recorded(recipients: int) -> str:
    return ngettext("✅ Recorded on your track record; on its way to {n} subscriber.",
                    "✅ Recorded on your track record; on its way to {n} subscribers.", recipients).format(
        n=recipients)


def event_duplicate() -> str:
    return _("This was already reported; nothing was sent twice.")


def event_closed() -> str:
    return _("This signal is already closed: nothing more can be reported on it.")


def not_yours() -> str:
    return _("That is not one of your signals.")


def wrong_level(count: int) -> str:
    return ngettext("This signal has {n} target.", "This signal has {n} targets.", count).format(n=count)
