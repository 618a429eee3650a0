"""Payout wording: the admins' /payouts screen and run report, a payee's notice, and a seller's payouts and
statement (in /provider)."""

from __future__ import annotations

import html
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from db.models_payouts import PayoutItem, PayoutRun
from presentation.formatting import date_text, datetime_text, money_text
from services.earnings import Balance
from services.ledger import LedgerLine
from services.payouts import FAILED, MANUAL, PAID, SENDING, RunReport, amount_of


def _e(value: str | None) -> str:
    return html.escape(value or "", quote=False)


#: Sellers listed per section of a run's report (a message holds 4,096 characters); the rest are counted.
LISTED = 15


def _listed(lines: list[str]) -> list[str]:
    if len(lines) <= LISTED:
        return lines
    return [*lines[:LISTED], _("… and {count} more").format(count=len(lines) - LISTED)]


def state_name(state: str) -> str:
    return {SENDING: _("being sent"), MANUAL: _("to be sent by hand"), PAID: _("paid"),
            FAILED: _("refused, back in the balance")}.get(state, state)


def overview(last: PayoutRun | None, due: int, total: Decimal, manual: list[PayoutItem], names: dict[str, str],
             tz: ZoneInfo) -> str:
    lines = [_("💸 <b>Payouts</b>"), ""]
    if last is None:
        lines.append(_("No payout run yet."))
    else:
        lines.append(_("Last run: {when}").format(when=datetime_text(last.started_at, tz)))
    lines.append(_("Sellers with a payable balance: {count}, {amount} in all.").format(
        count=due, amount=money_text(total)))
    lines.append(_("A run pays each of them: by transfer to their Telegram account, or listed here for you to "
                   "send by hand to their address. It runs by itself on the 1st of each month."))
    if manual:
        lines += ["", _("<b>To send by hand</b> (tap one to record its reference):")]
        lines += _listed([manual_line(item, names) for item in manual])
    return "\n".join(lines)


def manual_line(item: PayoutItem, names: dict[str, str]) -> str:
    return _("#{id} · {name}: {amount} to <code>{address}</code>").format(
        id=item.id, name=_e(names.get(item.seller, item.seller)), amount=money_text(amount_of(item)),
        address=_e(item.address))


def manual_label(item: PayoutItem) -> str:
    return _("✍️ Record #{id} ({amount})").format(id=item.id, amount=money_text(amount_of(item)))


def report(done: RunReport) -> str:
    def line(item: PayoutItem, extra: str = "") -> str:
        name = _e(done.names.get(item.seller, item.seller))
        return f"• {name}: {money_text(amount_of(item))}{extra}"

    lines = [_("💸 <b>Payout run #{id}</b>").format(id=done.run_id)]
    if not (done.paid or done.manual or done.failed or done.waiting or done.held or done.unpayable):
        lines.append(_("Nobody has a payable balance: nothing to pay."))
    if done.paid:
        lines += ["", _("✅ Paid ({count}, {amount}):").format(count=len(done.paid),
                                                            amount=money_text(done.total(done.paid)))]
        lines += _listed([line(i, f" · {_e(i.reference)}") for i in done.paid])
    if done.manual:
        lines += ["", _("✍️ To send by hand ({count}, {amount}):").format(
            count=len(done.manual), amount=money_text(done.total(done.manual)))]
        lines += _listed([line(i, f" → <code>{_e(i.address)}</code>") for i in done.manual])
    if done.waiting:
        lines += ["", _("⏳ Not answered yet, retried within the hour ({count}):").format(count=len(done.waiting))]
        lines += _listed([line(i) for i in done.waiting])
    if done.failed:
        lines += ["", _("⚠️ Refused, the amount is back in their balance ({count}):").format(count=len(done.failed))]
        lines += _listed([line(i, f" · {_e(i.error)}") for i in done.failed])
    if done.held:
        lines += ["", _("⏸ Not paid while suspended: {names}").format(
            names=", ".join(_e(done.names.get(s, s)) for s in done.held[:LISTED]))]
    if done.unpayable:
        lines += ["", _("❗ No payment provider can transfer to a Telegram account now: {names}").format(
            names=", ".join(_e(done.names.get(s, s)) for s in done.unpayable[:LISTED]))]
    return "\n".join(lines)


def progress(run_id: int, done: int, total: int | None, paid: int = 0) -> str:
    """A run's message while it goes on in the background (edited as transfers complete)."""
    head = _("💸 <b>Payout run #{id}</b>").format(id=run_id)
    if total is None:
        return head + "\n" + _("⏳ Working out who is owed what…")
    return head + "\n" + _("⏳ Transfers made: {done} of {total} ({paid} paid). This message shows the report "
                           "when the run ends.").format(done=done, total=total, paid=paid)


def already_going(run: PayoutRun) -> str:
    return _("A payout run is already going (#{id}); its message shows its progress, and nobody is paid "
             "twice.").format(id=run.id)


def ask_reference(item: PayoutItem) -> str:
    return _("Send {amount} to <code>{address}</code>, then reply with the transaction's reference (its hash or "
             "id).").format(amount=money_text(amount_of(item)), address=_e(item.address))


def bad_reference() -> str:
    return _("That does not look like a reference (6 to 200 letters, digits and : . _ / -). Try again.")


def stale() -> str:
    return _("That payout is no longer waiting to be recorded.")


def recorded(item: PayoutItem) -> str:
    return _("Recorded: #{id}, {amount}, reference {reference}.").format(
        id=item.id, amount=money_text(amount_of(item)), reference=_e(item.reference))


def payee_notice(item: PayoutItem) -> str:
    if item.method == "manual":
        return _("💸 Payout sent: {amount} to {address} (reference {reference}).").format(
            amount=money_text(amount_of(item)), address=_e(item.address), reference=_e(item.reference))
    return _("💸 Payout sent: {amount} to your Telegram wallet ({reference}).").format(
        amount=money_text(amount_of(item)), reference=_e(item.reference))


_KINDS = {"seller_release": lambda: _("share released"), "seller_refund": lambda: _("refund"),
          "seller_payout": lambda: _("payout"), "seller_payout_back": lambda: _("payout refused, returned"),
          "seller_sale": lambda: _("sale")}


def statement(balance: Balance, payouts: list[PayoutItem], lines: list[LedgerLine], tz: ZoneInfo) -> str:
    """A seller's payouts and the latest movements of the balance they are paid from."""
    out = [_("💸 <b>Payouts and statement</b>"), "",
           _("Balance {payable} · pending {pending} · paid {paid}").format(
               payable=money_text(balance.payable), pending=money_text(balance.pending),
               paid=money_text(balance.paid)), "", _("<b>Payouts</b>")]
    if not payouts:
        out.append(_("No payouts yet."))
    for item in payouts:
        when: datetime = item.paid_at or item.created_at
        ref = f" · {_e(item.reference)}" if item.reference else ""
        out.append(f"{date_text(when, tz)} · {money_text(amount_of(item))} · {state_name(item.state)}{ref}")
    out += ["", _("<b>Statement</b> (latest first)")]
    if not lines:
        out.append(_("No movements yet."))
    for row in lines:
        kind = _KINDS.get(row.kind)
        sign = "+" if row.amount > 0 else "−"
        out.append(f"{date_text(row.at, tz)} · {kind() if kind else row.kind} · {sign}{money_text(abs(row.amount))}")
    return "\n".join(out)
