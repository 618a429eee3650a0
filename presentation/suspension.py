"""What a provider's suspension tells its subscribers and the admin (processing.suspension)."""

from __future__ import annotations

import html

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext


def subscriber_notice(name: str, reason: str | None) -> str:
    return _("⏸ <b>{name}</b> is suspended by the marketplace's review ({reason}): its signals stop. The time you "
             "had left with it is refunded; the refund follows.").format(
        name=html.escape(name, quote=False), reason=html.escape(reason or "—", quote=False))


def admin_refunded(name: str, count: int) -> str:
    return ngettext("{name}: {count} subscription with time left refunded, its subscriber told.",
                    "{name}: {count} subscriptions with time left refunded, their subscribers told.",
                    count).format(name=html.escape(name, quote=False), count=count)
