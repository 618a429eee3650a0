"""Numbers, money, percentages and dates as the reader writes them (Babel, the reader's locale).

Every function formats for the locale of the update being handled (aiogram's i18n context, which the
workers also set per recipient: processing/notify.py, processing/signal_delivery.py) or for an explicit
`locale=`; outside any context it is English. English keeps the bot's long-standing forms ("$9.99",
"25,000", "2026-12-03 14:05"); Russian reads "9,99 $", "25 000", "03.12.2026 14:05", "03 дек.".
Russian groups digits with a no-break space (U+00A0, Babel's CLDR data), never a comma.

services/money.py stays locale-neutral for what is not shown to a reader (invoice payloads, logs, exports)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import cache
from typing import Any

from aiogram.utils.i18n import get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, get_day_names
from babel.numbers import format_compact_decimal, format_currency, format_decimal, format_percent
from babel.support import LazyProxy

from db.models import Order
from services.datasets import DELAY, SOURCES
from services.money import plain
from services.plans import PLANS
from services.products import text

__all__ = ["amount_text", "compact", "current_locale", "date_text", "datetime_text", "decimal_text",
           "language_name", "later", "money_text", "month_day", "number", "order_title", "percent", "signal_field",
           "signed_usd", "usd", "usd_whole", "validation_reason", "weekday_names", "weekday_time"]

DEFAULT = "en"
# Date patterns per language (CLDR's defaults would change the English the bot has always shown).
DATE = {"en": "yyyy-MM-dd", "ru": "dd.MM.yyyy"}


def current_locale() -> str:
    """The language of the update (or recipient) being handled; English outside any i18n context."""
    try:
        return get_i18n().current_locale or DEFAULT
    except LookupError:
        return DEFAULT


def _locale(locale: str | None) -> str:
    return locale or current_locale()


@cache
def _pattern(locale: str, kind: str, fraction: str) -> str:
    """The locale's own currency or percent pattern with the fraction digits we want ("0.00##")."""
    loc = Locale.parse(locale)
    pattern = (loc.currency_formats["standard"] if kind == "currency" else loc.percent_formats[None]).pattern
    pattern = pattern.split(";")[0]
    if "0.00" in pattern:
        return pattern.replace("0.00", fraction, 1)
    return pattern.replace("#,##0", "#,##0" + (("." + fraction.split(".")[1]) if "." in fraction else ""), 1)


def number(value: int | Decimal, *, locale: str | None = None) -> str:
    """A whole number with the locale's grouping: '25,000' / '25 000'."""
    return format_decimal(value, format="#,##0", locale=_locale(locale))


def decimal_text(value: Decimal | float | int, *, digits: int | None = None, locale: str | None = None) -> str:
    """A decimal as written in the locale: exact digits kept ('142.5' / '142,5', '0.00021' / '0,00021'),
    or rounded to `digits` places ('2.10' / '2,10')."""
    value = Decimal(str(value))
    if digits is not None:
        return format_decimal(value, format="0." + "0" * digits if digits else "0", locale=_locale(locale))
    return format_decimal(Decimal(plain(value)), locale=_locale(locale), decimal_quantization=False,
                          group_separator=False)


def usd(cents: int, *, locale: str | None = None) -> str:
    """USD from integer cents: '$9.99', '-$1,234.50' / '9,99 $'."""
    return format_currency(Decimal(cents) / 100, "USD", locale=_locale(locale))


def signed_usd(cents: int, *, locale: str | None = None) -> str:
    """A gain with its plus sign: '+$5.00', '-$3.00', '$0.00'."""
    return ("+" if cents > 0 else "") + usd(cents, locale=locale)


def usd_whole(amount: int | Decimal, *, locale: str | None = None) -> str:
    """Whole dollars: '$1,200' / '1 200 $'."""
    loc = _locale(locale)
    return format_currency(Decimal(amount), "USD", format=_pattern(loc, "currency", "0"), currency_digits=False,
                           locale=loc)


def money_text(amount: Decimal, *, locale: str | None = None) -> str:
    """A USD amount that may hold fractions of a cent, exact to 1/100 cent: '$0.075', '$12.50' / '0,075 $'."""
    loc = _locale(locale)
    return format_currency(amount.quantize(Decimal("0.0001")), "USD", format=_pattern(loc, "currency", "0.00##"),
                           currency_digits=False, locale=loc)


def amount_text(amount: Decimal, asset: str, *, locale: str | None = None) -> str:
    """A provider amount as people read it: '12.5 USDT' / '12,5 USDT', '770 ⭐', USD as money."""
    if asset == "XTR":
        return f"{int(amount)} ⭐"
    if asset == "USD":
        return usd(int((amount * 100).to_integral_value()), locale=locale)
    return f"{decimal_text(amount, locale=locale)} {asset}"


def percent(ratio: Decimal | float | None, *, digits: int = 1, signed: bool = False, trim: bool = False,
            locale: str | None = None) -> str:
    """A ratio as a percentage: 0.125 → '12.5%' / '12,5 %'; None → '—'. `trim`: up to `digits`
    decimals, trailing zeros dropped ('3.1%', '0%')."""
    if ratio is None:
        return "—"
    loc = _locale(locale)
    fraction = "0." + ("#" if trim else "0") * digits if digits else "0"
    text = format_percent(Decimal(str(ratio)), format=_pattern(loc, "percent", fraction), locale=loc)
    shown_positive = (Decimal(str(ratio)) * 100).quantize(Decimal(1).scaleb(-digits)) > 0
    return ("+" + text) if signed and shown_positive else text


def compact(value: int | Decimal, *, locale: str | None = None) -> str:
    """Big round numbers in short: '1M' / '1 млн', '250K' / '250 тыс.'."""
    return format_compact_decimal(value, fraction_digits=1, locale=_locale(locale))


def _at(when: datetime, tz: tzinfo | None) -> datetime:
    return when.astimezone(tz) if tz is not None else when


def date_text(when: datetime, tz: tzinfo | None = None, *, locale: str | None = None) -> str:
    """'2026-12-03' / '03.12.2026'."""
    loc = _locale(locale)
    return format_datetime(_at(when, tz), DATE.get(loc, DATE[DEFAULT]), locale=loc)


def datetime_text(when: datetime, tz: tzinfo | None = None, *, zone: bool = False,
                  locale: str | None = None) -> str:
    """'2026-12-03 14:05' / '03.12.2026 14:05'; with `zone` the zone's abbreviation ('UTC') after it."""
    at = _at(when, tz)
    text = f"{date_text(at, locale=locale)} {at:%H:%M}"
    return f"{text} {at:%Z}" if zone and at.tzinfo is not None else text


def month_day(when: datetime, tz: tzinfo | None = None, *, time: bool = False, locale: str | None = None) -> str:
    """'03 Dec' / '03 дек.', with `time` '03 Dec 14:05'."""
    loc = _locale(locale)
    return format_datetime(_at(when, tz), "dd MMM" + (" HH:mm" if time else ""), locale=loc)


def weekday_time(when: datetime, tz: tzinfo | None = None, *, locale: str | None = None) -> str:
    """'Thu 03 Dec 14:05' / 'чт 03 дек. 14:05'."""
    loc = _locale(locale)
    return format_datetime(_at(when, tz), "EEE dd MMM HH:mm", locale=loc)


def weekday_names(*, short: bool = True, locale: str | None = None) -> list[str]:
    """Monday first: ['Mon', 'Tue', ...] / ['пн', 'вт', ...]."""
    names = get_day_names("abbreviated" if short else "wide", locale=_locale(locale))
    return [names[i] for i in range(7)]


def later(format_: Callable[..., str], *args: Any, **kwargs: Any) -> LazyProxy:
    """A value formatted only when the message is rendered, so in the recipient's locale: workers
    compute amounts once and hand the Notifier a text it renders per user (`"{got}".format(got=later(...))`)."""
    return LazyProxy(format_, *args, enable_cache=False, **kwargs)


def order_title(order: Order) -> str:
    """An order's title in the reader's language for the built-in products ("Pro plan · 1 month",
    "25,000 tokens · GPT-4o", "API credit · $5.00" / "Тариф Pro · 1 месяц", "25 000 токенов · GPT-4o");
    other products' stored title."""
    details = order.details or {}
    if order.product == "plan" and details.get("plan") in PLANS and details.get("period") in ("month", "year"):
        months = 1 if details["period"] == "month" else 12
        length = ngettext("{count} month", "{count} months", months).format(count=months)
        return _("{plan} plan · {length}").format(plan=PLANS[details["plan"]].name, length=length)
    if order.product == "ai_tokens" and isinstance(details.get("tokens"), int) and " · " in order.title:
        model = order.title.split(" · ", 1)[1]
        tokens = details["tokens"]
        return ngettext("{count} token · {model}", "{count} tokens · {model}", tokens).format(
            count=number(tokens), model=model)
    if order.product == "api_credit" and details.get("credit_usd"):
        return _("API credit · {amount}").format(amount=money_text(Decimal(details["credit_usd"])))
    if order.product == "provider_sub" and isinstance(details.get("days"), int) and " · " in order.title:
        days = details["days"]
        return ngettext("{provider} signals · {count} day", "{provider} signals · {count} days", days).format(
            provider=order.title.rsplit(" · ", 1)[0], count=days)
    if order.product == "dataset" and details.get("dataset") in SOURCES:
        return f"{text(SOURCES[details['dataset']].title)} · {cut_name(str(details.get('cut', '')))}"
    return order.title


def cut_name(cut: str) -> str:
    """A dataset's cut as the reader reads it: "live, up to now", "delayed by 7 days"."""
    return {"live": _("live, up to now"), "delayed": _("delayed by {days} days").format(days=DELAY.days)}.get(cut, cut)


def language_name(code: str | None, *, locale: str | None = None) -> str:
    """A language code as the reader names the language: 'ru' → 'Russian' / 'русский'."""
    if not code:
        return "—"
    try:
        return Locale.parse(code).get_display_name(_locale(locale)) or code
    except (ValueError, TypeError, LookupError, UnknownLocaleError):
        return code


def _reasons() -> dict[str, str]:
    return {
        'must be a decimal string such as "142.5"': _('must be a decimal number such as "142.5"'),
        'must be written with the digits 0-9, such as "142.5"': _('must be written with the digits 0-9, such as '
                                                                  '"142.5"'),
        'must be a positive decimal string such as "142.5"': _('must be a positive number such as "142.5"'),
        "not a decimal number": _("is not a decimal number"),
        "is not a decimal number": _("is not a decimal number"),
        "must be greater than 0": _("must be greater than 0"),
        "must be 1 to 128 characters": _("must be 1 to 128 characters"),
        "must be printable text": _("must be printable text"),
        'must be a short name such as "crypto"': _('must be a short name such as "crypto"'),
        'must be a pair such as "SOL/USDT"': _('must be a pair such as "SOL/USDT"'),
        "must look like 15m, 4h or 1d": _("must look like 15m, 4h or 1d"),
        "must be at most 500 characters": _("must be at most 500 characters"),
        "must not contain NUL characters": _("must not contain NUL characters"),
        "must be below the entry for a long": _("must be below the entry for a long"),
        "must be above the entry for a short": _("must be above the entry for a short"),
        "every target must be above the entry for a long": _("every target must be above the entry for a long"),
        "every target must be below the entry for a short": _("every target must be below the entry for a short"),
        "a tp_hit needs the target level, 1 or more": _("a tp_hit needs the target level, 1 or more"),
        "is required": _("is required"),
        "is missing": _("is missing"),
        "is not a known field": _("is not a known field"),
        "must be a decimal string": _("must be a decimal number"),
        "must be written with the digits 0-9": _("must be written with the digits 0-9"),
        "must be finite": _("must be finite"),
        "is implausibly large": _("is implausibly large"),
        "must be an ISO 8601 time with a zone, e.g. 2026-11-20T10:00:00Z":
            _("must be an ISO 8601 time with a zone, e.g. 2026-11-20T10:00:00Z"),
        "is not an ISO 8601 time": _("is not an ISO 8601 time"),
        "needs a time zone (Z or +00:00)": _("needs a time zone (Z or +00:00)"),
        "is out of range": _("is out of range"),
        "is in the future": _("is in the future"),
        "must be a string": _("must be a string"),
        "must not be empty": _("must not be empty"),
        "must be a short lowercase chain name like solana or ethereum":
            _("must be a short lowercase chain name like solana or ethereum"),
        "is not a wallet address": _("is not a wallet address"),
        "must be an object": _("must be an object"),
        "must be buy or sell": _("must be buy or sell"),
        "must be a handle like @name (letters, digits, _; up to 15)":
            _("must be a handle like @name (letters, digits, _; up to 15)"),
        "must be yes or no": _("must be yes or no"),
    }


def validation_reason(reason: str) -> str:
    """Why an input was refused, in the reader's language. The reasons come from services in English
    (the HTTP API answers with them as they are); one this does not know is shown as it came."""
    if reason.startswith("item ") and ": " in reason:  # "item 2: must be ..." (a list's member)
        head, _sep, rest = reason.partition(": ")
        if head[5:].isdigit():
            return _("item {n}: {reason}").format(n=head[5:], reason=validation_reason(rest))
    for pattern, wording in ((r"must be a list of 1 to (\d+) decimal strings",
                              lambda n: _("must be a list of 1 to {n} numbers").format(n=n)),
                             (r"is longer than (\d+) characters",
                              lambda n: _("is longer than {n} characters").format(n=n)),
                             (r"this signal has (\d+) targets",
                              lambda n: _("this signal has {n} targets").format(n=n))):
        if match := re.fullmatch(pattern, reason):
            return wording(match.group(1))
    return _reasons().get(reason, reason)


def signal_field(field: str) -> str:
    """A /signal argument's name as the admin reads it (the names of the command's usage line)."""
    names = {"ecosystem": _("ecosystem"), "symbol": _("symbol"), "side": _("side"), "entry": _("entry"),
             "take_profits": _("take_profits"), "stop_loss": _("stop_loss"), "timeframe": _("timeframe"),
             "note": _("note")}  # English: the field names as the HTTP API and the admin's tests name them
    return names.get(field, field)
