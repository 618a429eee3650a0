"""Ratings wording: the summary and latest reviews on a provider's card, rating and reviewing, the provider's
list of ratings and its reply, and why something is refused."""

from __future__ import annotations

import html

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from db.models_ratings import ProviderRating
from presentation.formatting import decimal_text
from services.ratings import MAX_REVIEW, MIN_DAYS, Problem, Summary


def _e(value: str | None) -> str:
    return html.escape(value or "", quote=False)


def stars_text(stars: int) -> str:
    return "★" * stars + "☆" * (5 - stars)


def _one(rating: ProviderRating) -> list[str]:
    lines = [f"{stars_text(rating.stars)} {_e(rating.review)}".rstrip()]
    if rating.reply:
        lines.append(_("   ↩️ Provider: {reply}").format(reply=_e(rating.reply)))
    return lines


def summary_line(summary: Summary) -> str:
    if not summary.count:
        return _("⭐ No ratings yet")
    return ngettext("⭐ {average} of 5 · {count} rating", "⭐ {average} of 5 · {count} ratings",
                    summary.count).format(average=decimal_text(summary.average, digits=1), count=summary.count)


def card_block(summary: Summary) -> str:
    lines = [summary_line(summary)]
    for rating in summary.latest:
        lines += _one(rating)
    return "\n".join(lines)


def rate_label() -> str:
    return _("⭐ Rate")


def ask_stars(name: str, mine: ProviderRating | None) -> str:
    text = _("How would you rate <b>{name}</b>? Tap 1 to 5 stars.").format(name=_e(name))
    if mine is not None:
        text += "\n" + _("Your rating now: {stars}. A new tap changes it.").format(stars=stars_text(mine.stars))
    return text


def saved(stars: int, created: bool) -> str:
    first = _("Rating saved: {stars}.") if created else _("Rating updated: {stars}.")
    return first.format(stars=stars_text(stars)) + "\n" + _(
        "Send a short review (up to {max} characters), or tap Done.").format(max=MAX_REVIEW)


def done_label() -> str:
    return _("✅ Done")


def review_saved() -> str:
    return _("Review saved. Thank you!")


def problem(found: Problem, days_left: int = 0) -> str:
    if found is Problem.TOO_SOON:
        return ngettext("You can rate a provider after {min} days of subscription: {days} more day.",
                        "You can rate a provider after {min} days of subscription: {days} more days.",
                        days_left).format(min=MIN_DAYS, days=days_left)
    return {
        Problem.OWN: _("You cannot rate your own signals."),
        Problem.STARS: _("A rating is 1 to 5 stars."),
        Problem.TEXT: _("Please write 1 to {max} characters.").format(max=MAX_REVIEW),
        Problem.NO_RATING: _("That rating does not exist (any more)."),
        Problem.REPLIED: _("You have already replied to this review: a review gets one reply."),
        Problem.NOT_YOURS: _("That review is not about you."),
    }[found]


def provider_list(summary: Summary) -> str:
    lines = [_("⭐ <b>Your ratings</b>"), summary_line(summary)]
    for rating in summary.latest:
        lines += ["", _("#{id}").format(id=rating.id), *_one(rating)]
    if summary.latest:
        lines += ["", _("Each review may get one reply from you: tap ↩️ under it.")]
    return "\n".join(lines)


def reply_label(rating: ProviderRating) -> str:
    return _("↩️ Reply to #{id}").format(id=rating.id)


def ask_reply(rating: ProviderRating) -> str:
    return "\n".join([*_one(rating), "", _("Send your reply (up to {max} characters; one reply per review).").format(
        max=MAX_REVIEW)])


def reply_saved() -> str:
    return _("Reply published under the review.")


def ratings_label() -> str:
    return _("⭐ Ratings")
