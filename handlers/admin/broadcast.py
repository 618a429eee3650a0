"""/broadcast: any message (text, media or a forwarded one) to an audience, previewed, confirmed, with a
progress message that can cancel it. Sent by the signal delivery queue."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.screens import refuse, reply_target, show
from bot.wiring import Services
from presentation.broadcasts import progress_text
from processing.broadcast_progress import BroadcastCancel, cancel_keyboard
from services.broadcasts import BroadcastService, audiences
from services.plans import PLANS


class Compose(StatesGroup):
    message = State()
    audience = State()
    confirm = State()


class BcAudience(CallbackData, prefix="bca"):
    audience: str


class BcConfirm(CallbackData, prefix="bcc"):
    send: bool


def audience_name(audience: str) -> str:
    if audience.startswith("plan-"):
        plan = PLANS.get(audience.removeprefix("plan-"))
        return _("{plan} plan").format(plan=plan.name if plan else audience)
    return {"all": _("Everyone"), "paying": _("Paying subscribers"), "lapsed": _("Lapsed subscribers")}[audience]


async def audience_keyboard(broadcasts: BroadcastService) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for audience in audiences():
        count = await broadcasts.count(audience)
        builder.button(text=f"{audience_name(audience)} · {count}", callback_data=BcAudience(audience=audience))
    builder.button(text=_("✖️ Cancel"), callback_data=BcConfirm(send=False))
    builder.adjust(1)
    return builder.as_markup()


def confirm_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Send"), callback_data=BcConfirm(send=True))
    builder.button(text=_("✖️ Cancel"), callback_data=BcConfirm(send=False))
    return builder.as_markup()


async def compose(message: Message, state: FSMContext) -> None:
    await state.set_state(Compose.message)
    await message.answer(_("📣 Send me the message to broadcast: text, a photo, or forward any message. "
                           "/cancel to stop."))


async def got_message(message: Message, state: FSMContext, services: Services) -> None:
    await state.update_data(chat_id=message.chat.id, message_id=message.message_id)
    await state.set_state(Compose.audience)
    await message.answer(_("Who should receive it?"), reply_markup=await audience_keyboard(services.broadcasts))


async def chose_audience(query: CallbackQuery, callback_data: BcAudience, state: FSMContext,
                         services: Services) -> None:
    if callback_data.audience not in audiences():
        await refuse(query, _("Unknown audience."))
        return
    data = await state.get_data()
    count = await services.broadcasts.count(callback_data.audience)
    await state.update_data(audience=callback_data.audience)
    await state.set_state(Compose.confirm)
    target = await reply_target(query)
    await target.answer(_("👀 Preview — this is exactly what they will get:"))
    await query.bot.copy_message(target.chat.id, data["chat_id"], data["message_id"])
    await target.answer(
        _("Send it to <b>{audience}</b>: {count} recipients?").format(
            audience=audience_name(callback_data.audience), count=count),
        reply_markup=confirm_keyboard())


async def cancel_compose(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(query, _("Broadcast cancelled; nothing was sent."))


async def send_broadcast(query: CallbackQuery, state: FSMContext, services: Services) -> None:
    broadcasts = services.broadcasts
    data = await state.get_data()
    await state.clear()
    broadcast = await broadcasts.create(query.from_user.id, data["chat_id"], data["message_id"],
                                        data["audience"])
    progress = await broadcasts.progress(broadcast.id)
    await show(query, _("Queued for {count} recipients.").format(count=broadcast.total))
    shown = await query.message.answer(progress_text(progress), reply_markup=cancel_keyboard(broadcast.id))
    await broadcasts.set_progress_message(broadcast.id, shown.chat.id, shown.message_id)
    services.signal_delivery.wake()


async def stale_confirm(query: CallbackQuery) -> None:
    await refuse(query, _("This preview has expired. Start again with /broadcast."))


async def cancel_running(query: CallbackQuery, callback_data: BroadcastCancel, services: Services) -> None:
    cancelled = await services.broadcasts.cancel(callback_data.id)
    progress = await services.broadcasts.progress(callback_data.id)
    if progress is not None:
        await services.broadcast_progress.show(progress)
    await query.answer(_("Broadcast cancelled.") if cancelled else _("This broadcast has already finished."))


def build_router() -> Router:
    router = Router(name="admin_broadcast")
    router.message.register(compose, Command("broadcast"))
    router.message.register(got_message, StateFilter(Compose.message))
    router.callback_query.register(chose_audience, StateFilter(Compose.audience), BcAudience.filter())
    router.callback_query.register(cancel_compose, BcConfirm.filter(F.send.is_(False)))
    router.callback_query.register(send_broadcast, StateFilter(Compose.confirm), BcConfirm.filter(F.send.is_(True)))
    router.callback_query.register(stale_confirm, BcConfirm.filter())
    router.callback_query.register(cancel_running, BroadcastCancel.filter())
    return router
