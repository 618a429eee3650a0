"""Plan wording: dates as people read them, the activation message, what a refund takes back.
`plan_product` is the plans product's registration with this wording."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from presentation.formatting import datetime_text
from services import plan_sales
from services.plan_notices import REMIND_1D
from services.plan_sales import PlanActivated
from services.products import Product, ProductParts
from services.subscriptions import CreditBack, PlanTakenBack


def format_end(when: datetime, tz: ZoneInfo) -> str:
    """"2026-12-03 17:50 UTC" in the operator's time zone (`settings.tz`)."""
    return datetime_text(when, tz, zone=True)


def join_label() -> str:
    """The button that opens a private channel invite."""
    return _("🔑 Join the private channel")


class PlanTexts:
    """services.plan_sales.PlanWording in the reader's language (HTML), dates in `tz`."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    def activated(self, activated: PlanActivated) -> str:
        plan, ends = activated.plan, format_end(activated.ends_at, self.tz)
        if activated.starts_at:  # a lower plan bought while a higher one runs
            lines = [_("✅ <b>{plan} plan</b> bought: it starts {starts}, when your current plan's time ends, and "
                       "runs until {ends}.").format(plan=plan, starts=format_end(activated.starts_at, self.tz),
                                                    ends=ends)]
        else:
            lines = [_("✅ <b>{plan} plan active</b> until {ends}.").format(plan=plan, ends=ends)]
        if activated.invite:
            lines.append(_("🔑 Your private channel invite (one person, one use): {link}").format(
                link=activated.invite))
        elif activated.invite_failed:
            lines.append(_("The private channel invite could not be made right now; get it any time from /plans."))
        lines.append(_("Renew any time in /plans: new time is added to what's left."))
        return "\n".join(lines)

    def join_label(self) -> str:
        return join_label()

    def takes_back(self, credit: CreditBack | None) -> str:
        text = _("the plan time bought with this order ends at once (and the private channel, if no other "
                 "paid time remains)")
        if credit:
            text += _("; the credit it used is void, so the {days} days of the {plan} plan it ended resume").format(
                days=credit.days, plan=credit.plan)
        return text

    def taken_back(self, taken: PlanTakenBack) -> str:
        lines = [_("📅 The plan time bought with this order has been removed.")]
        for credit in taken.resumed:
            lines.append(_("↩️ The {days} days of your <b>{plan}</b> plan that were credited to this upgrade are "
                           "yours again: they resume now.").format(days=credit.days, plan=credit.plan))
        if taken.plan_now.is_paid:
            lines.append(_("You keep the <b>{plan}</b> plan you paid for separately.").format(
                plan=taken.plan_now.name))
        else:
            lines.append(_("You're on the Free plan now."))
            if taken.left_channel:
                lines.append(_("Your access to the private channel has ended."))
        return "\n".join(lines)


def plan_product(parts: ProductParts) -> Product:
    """The plans product (services.plan_sales.plan_product) told in these words, dates in `settings.tz`."""
    return plan_sales.plan_product(parts, PlanTexts(parts.settings.tz))


def reminder_text(kind: str, plan_name: str, ends: str) -> str:
    if kind == REMIND_1D:
        text = _("⏰ Your <b>{plan}</b> plan ends within a day, on {ends}.")
    else:
        text = _("⏰ Your <b>{plan}</b> plan ends in 3 days, on {ends}.")
    return text.format(plan=plan_name, ends=ends) + "\n" + _(
        "Renew in /plans to keep your signals: the new time is added to what's left.")


def expired_text(plan_name: str, removed: bool) -> str:
    lines = [_("Your <b>{plan}</b> plan has ended, so you're on the Free plan now.").format(plan=plan_name)]
    if removed:
        lines.append(_("Your access to the private channel has ended too."))
    lines.append(_("Renew any time in /plans: you'll get the plan and a new channel invite at once."))
    return "\n".join(lines)
