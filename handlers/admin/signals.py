"""/signal: post a signal by hand, one line, validated like the ingest API."""

from __future__ import annotations

import html

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.wiring import Services
from services.signals import InvalidInput, parse_command


def usage() -> str:
    return _("Post a signal by hand, in one line:\n"
             "<code>/signal &lt;ecosystem&gt; &lt;PAIR&gt; &lt;long|short&gt; &lt;entry&gt; "
             "&lt;target1,target2,…&gt; &lt;stop&gt; [timeframe] [note]</code>\n\n"
             "Example: <code>/signal crypto SOL/USDT long 142.5 150,158 136 4h breakout retest</code>")


async def post_signal(message: Message, command: CommandObject, services: Services) -> None:
    if not command.args:
        await message.answer(usage())
        return
    # The id is the command's own message: a redelivered update cannot post the signal twice.
    external_id = f"admin-{message.chat.id}-{message.message_id}"
    try:
        data = parse_command(command.args, external_id=external_id)
    except InvalidInput as exc:
        await message.answer(_("❌ {field}: {problem}\n\n{usage}").format(
            field=html.escape(exc.field), problem=html.escape(exc.message), usage=usage()))
        return
    result = await services.signals.ingest(data, source="admin")
    services.signal_delivery.wake()
    if result.created:
        await message.answer(_("✅ Signal #{id} stored; {n} deliveries queued.").format(
            id=result.signal_id, n=result.recipients))
    else:
        await message.answer(_("This signal was already posted (#{id}).").format(id=result.signal_id))


def build_router() -> Router:
    router = Router(name="admin_signal")
    router.message.register(post_signal, Command("signal"))
    return router
