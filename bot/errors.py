"""The last line of defence: log with an error id and tell the user, never stay silent."""

from __future__ import annotations

import logging
import secrets

from aiogram import Bot
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import gettext as _

from bot.screens import acknowledge
from db.engine import is_busy
from transport import metrics

log = logging.getLogger(__name__)


async def on_error(event: ErrorEvent, bot: Bot) -> bool:
    error_id = secrets.token_hex(4)
    if is_busy(event.exception):  # nothing is broken: the database had no room for this write just now
        log.warning("error id=%s: database busy while handling update: %r", error_id, event.exception)
        text = _("We're very busy right now — please try again in a moment.")
    else:
        metrics.ERRORS.inc()
        log.error("error id=%s while handling update: %r", error_id, event.exception, exc_info=event.exception)
        text = _("Sorry, something went wrong on our side. Please try again; if it keeps happening, "
                 "contact support with error id <code>{error_id}</code>.").format(error_id=error_id)
    update = event.update
    try:
        if update.callback_query is not None:
            await acknowledge(update.callback_query)
            if update.callback_query.message is not None:
                await bot.send_message(update.callback_query.message.chat.id, text)
        elif update.message is not None:
            await bot.send_message(update.message.chat.id, text)
    except Exception:  # the user could not be told; the log line above has it all
        log.warning("error id=%s could not be reported to the user", error_id)
    return True
