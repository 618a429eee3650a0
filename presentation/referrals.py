"""Referral wording: the invite screen, and what a referrer is told (a friend joined, a reward)."""

from __future__ import annotations

import html

from aiogram.utils.i18n import gettext as _

from services.referrals import ReferralSummary, Reward


def invite_link(bot_username: str, user_id: int) -> str:
    return f"https://t.me/{bot_username}?start=ref_{user_id}"


def referrals_text(link: str, summary: ReferralSummary, reward_days: int) -> str:
    lines = [_("👥 <b>Invite friends</b>"), "", _("Your invite link:"), f"<code>{html.escape(link)}</code>", ""]
    if reward_days > 0:
        lines += [_("When a friend who joined through it makes their first purchase, you get {days} days of a "
                    "paid plan.").format(days=reward_days), ""]
    lines.append(_("Joined through your link: {count}").format(count=summary.invited))
    if summary.rewarded or reward_days > 0:
        lines.append(_("Rewards earned: {count} ({days} days)").format(count=summary.rewarded, days=summary.days))
    return "\n".join(lines)


def joined_text(first_name: str | None, reward_days: int) -> str:
    text = _("👥 {name} joined through your invite link.").format(name=html.escape(first_name or _("A friend")))
    if reward_days > 0:
        text += "\n" + _("When they make their first purchase, you get {days} days of a paid plan.").format(
            days=reward_days)
    return text


def reward_text(reward: Reward) -> str:
    return _("🎁 A friend you invited made their first purchase: {days} days of {plan} added to your "
             "subscription.").format(days=reward.days, plan=html.escape(reward.plan.name))
