"""Developer API for admins: the API lines of /stats and of a user's card (/user), the admin's revoke
confirmation, and the notice a user gets when an admin revoked their key."""

from __future__ import annotations

import html
from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from db.models_api import ApiKey
from presentation.api import key_line
from presentation.formatting import money_text, month_day, number
from services.api_analytics import ApiFigures, ApiUsage

HUNDREDTH_CENT = Decimal("0.0001")


def credit_money(amount: Decimal) -> str:
    """API money (credit, revenue) to 1/100 of a cent, the finest a price is commonly set to, rounded half up:
    '$0.0375', '$12.50' / '12,50 $'."""
    return money_text(amount.quantize(HUNDREDTH_CENT, rounding=ROUND_HALF_UP))


def kind_name(kind: str) -> str:
    """What API credit was spent on (a ledger cause's kind)."""
    return {"api_call": _("calls"), "dataset": _("datasets")}.get(kind, kind)


def stats_lines(f: ApiFigures) -> list[str]:
    """The developer API's block of /stats (UTC days: the API's quota day)."""
    revenue = _("API revenue (credit spent): today {today} · 7 days {week} · 30 days {month}").format(
        today=credit_money(f.revenue["today"]), week=credit_money(f.revenue["7d"]),
        month=credit_money(f.revenue["30d"]))
    if f.revenue_by_kind:
        revenue += " (" + " · ".join(f"{kind_name(kind)} {credit_money(amount)}"
                                     for kind, amount in f.revenue_by_kind.items()) + ")"
    sold = _("API credit sold: today {today} · 7 days {week} · 30 days {month} · taken back on refunds (30 days) "
             "{back} · unspent now {unspent}").format(
        today=credit_money(f.sold["today"]), week=credit_money(f.sold["7d"]), month=credit_money(f.sold["30d"]),
        back=credit_money(f.taken_back), unspent=credit_money(f.unspent))
    days = [f"{month_day(datetime.combine(d.day, time()))}: {number(d.calls)} · {number(d.charged)} · "
            f"{credit_money(d.revenue)}" for d in f.days]
    return ["", _("🔌 <b>Developer API</b> (UTC days)"), revenue, sold,
            _("API per day, last 7 days (calls · charged from credit · revenue):"), *days]


def card_lines(keys: list[ApiKey], usage: ApiUsage, credit: Decimal, tz: ZoneInfo) -> list[str]:
    """A user's API keys (name and first characters only), use and credit, for the admin's user card."""
    lines = [_("🔌 API: credit {credit} · calls today {today} · last 7 days {week} (charged {charged}) · "
               "charged ever {total}").format(
        credit=credit_money(credit), today=number(usage.today), week=number(usage.week),
        charged=number(usage.charged_week), total=number(usage.charged_total))]
    lines += [key_line(key, tz) for key in keys] if keys else [_("No API keys.")]
    return lines


def revoke_label(key: ApiKey) -> str:
    """The card's button (plain text)."""
    return _("🚫 Revoke API key {name} · {prefix}…").format(name=key.name, prefix=key.prefix)


def ask_revoke(key: ApiKey, tz: ZoneInfo) -> str:
    return "\n".join([
        _("Revoke API key <b>{name}</b> <code>{prefix}…</code> of user <code>{user}</code>?").format(
            name=html.escape(key.name), prefix=key.prefix, user=key.user_id),
        key_line(key, tz),
        _("Programs using it stop working at once; this cannot be undone. The user is told.")])


def key_not_active() -> str:
    return _("That key is not active any more (revoked, or rolled and past its grace period). Nothing was "
             "changed.")


def revoked_note() -> str:
    """The admin's toast after revoking."""
    return _("Key revoked; the user has been told.")


def revoked_notice(key: ApiKey) -> str:
    """The user's message, in their language."""
    return _("🚫 An administrator revoked your API key <b>{name}</b> <code>{prefix}…</code>: it no longer works. "
             "You can create a new key in /api.").format(
        name=html.escape(key.name), prefix=key.prefix)
