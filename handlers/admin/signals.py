"""/signal: post a signal by hand, one line, validated like the ingest API; the panel's Post a signal button asks
for the same line."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.screens import reply_target
from bot.wiring import Services
from handlers.admin.panel import AdminMenu
from presentation.formatting import signal_field, validation_reason
from services.signals import InvalidInput, parse_command


class SignalAsk(StatesGroup):
    line = State()  # the panel's button waits for the line that follows /signal


def usage() -> str:
    return _("Post a signal by hand, in one line:\n"
             "<code>/signal &lt;ecosystem&gt; &lt;PAIR&gt; &lt;long|short&gt; &lt;entry&gt; "
             "&lt;target1,target2,…&gt; &lt;stop&gt; [timeframe] [note]</code>\n\n"
             "Example: <code>/signal crypto SOL/USDT long 142.5 150,158 136 4h breakout retest</code>")


async def post_signal(message: Message, command: CommandObject, services: Services) -> None:
    if not command.args:
        if await services.marketplace.publisher(message.from_user.id) is not None:
            raise SkipHandler  # an admin who is also a marketplace provider: the providers' form (provider_signals)
        await message.answer(usage())
        return
    await post_line(message, command.args, services)


async def ask_signal(query: CallbackQuery, state: FSMContext) -> None:
    """The panel's Post a signal button: the next message is the line that follows /signal."""
    await state.set_state(SignalAsk.line)
    await (await reply_target(query)).answer(usage() + "\n\n" + _("Send the line now; /cancel to stop."))


async def signal_typed(message: Message, state: FSMContext, services: Services) -> None:
    await state.clear()
    await post_line(message, message.text, services)


async def post_line(message: Message, line: str, services: Services) -> None:
    """/signal's work on its line, typed after the command or sent after the panel's button."""
    # The id is the command's own message: a redelivered update cannot post the signal twice.
    external_id = f"admin-{message.chat.id}-{message.message_id}"
    try:
        data = parse_command(line, external_id=external_id)
    except InvalidInput as exc:
        await message.answer(_("❌ {field}: {problem}\n\n{usage}").format(
            field=html.escape(signal_field(exc.field)), problem=html.escape(validation_reason(exc.message)),
            usage=usage()))
        return
    result = await services.signals.ingest(data, source="admin")
    services.signal_delivery.wake()
    if result.created:
        await message.answer(ngettext("✅ Signal #{id} stored; {n} delivery queued.",
                                      "✅ Signal #{id} stored; {n} deliveries queued.", result.recipients).format(
            id=result.signal_id, n=result.recipients))
    else:
        await message.answer(_("This signal was already posted (#{id}).").format(id=result.signal_id))


def build_router() -> Router:
    router = Router(name="admin_signal")
    router.message.register(post_signal, Command("signal"))
    router.callback_query.register(ask_signal, AdminMenu.filter(F.action == "signal"))
    router.message.register(signal_typed, StateFilter(SignalAsk.line), F.text, ~F.text.startswith("/"))
    return router
