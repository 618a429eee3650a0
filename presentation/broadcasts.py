"""Broadcast wording: the progress message the admin's /broadcast shows and the worker keeps up to date."""

from __future__ import annotations

from aiogram.utils.i18n import gettext as _

from services.broadcasts import Progress


def progress_text(p: Progress) -> str:
    if p.broadcast.status == "cancelled":
        head = _("⛔ Broadcast #{id} cancelled.").format(id=p.broadcast.id)
    elif p.finished:
        head = _("✅ Broadcast #{id} finished.").format(id=p.broadcast.id)
    else:
        head = _("📣 Broadcast #{id} is sending…").format(id=p.broadcast.id)
    return head + "\n\n" + _(
        "Sent: {sent} of {total}\nBlocked the bot: {blocked}\nFailed: {failed}\nWaiting: {waiting}"
        "\nNot sent (cancelled): {cancelled}").format(
        sent=p.sent, total=p.total, blocked=p.blocked, failed=p.failed, waiting=p.waiting, cancelled=p.cancelled)
