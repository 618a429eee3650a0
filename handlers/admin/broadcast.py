"""/broadcast: any message (text, media or a forwarded one) to an audience (admins in it or left out), previewed,
confirmed with the time sending takes, with a progress message that can cancel it. Sent by the signal delivery
queue."""

from __future__ import annotations

from datetime import timedelta

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from babel.dates import format_timedelta

from bot.screens import acknowledge, refuse, reply_target, show
from bot.wiring import Services
from handlers.admin.panel import AdminMenu
from presentation.broadcasts import progress_text
from presentation.formatting import current_locale
from processing.broadcast_progress import BroadcastCancel, cancel_keyboard
from services.broadcasts import audiences, sending_time
from services.plans import PLANS


class Compose(StatesGroup):
    message = State()
    audience = State()
    confirm = State()


class BcAudience(CallbackData, prefix="bca"):
    audience: str


class BcConfirm(CallbackData, prefix="bcc"):
    send: bool


class BcAdmins(CallbackData, prefix="bcad"):
    exclude: bool


def audience_name(audience: str) -> str:
    if audience.startswith("plan-"):
        plan = PLANS.get(audience.removeprefix("plan-"))
        return _("{plan} plan").format(plan=plan.name if plan else audience)
    return {"all": _("Everyone"), "paying": _("Paying subscribers"), "lapsed": _("Lapsed subscribers")}[audience]


def duration(delta: timedelta) -> str:
    """"3 minutes", "1 hour" in the reader's language (never less than a second)."""
    return format_timedelta(max(delta, timedelta(seconds=1)), threshold=1.5, locale=current_locale())


def left_out(services: Services, exclude_admins: bool) -> list[int]:
    return list(services.settings.admin_ids) if exclude_admins else []


async def audience_keyboard(services: Services, exclude_admins: bool) -> InlineKeyboardMarkup:
    """The audiences with their counts, then whether the admins get it too (a toggle)."""
    builder = InlineKeyboardBuilder()
    for audience in audiences():
        count = await services.broadcasts.count(audience, left_out(services, exclude_admins))
        builder.button(text=f"{audience_name(audience)} · {count}", callback_data=BcAudience(audience=audience))
    builder.button(text=_("👤 Admins left out · tap to include them") if exclude_admins
                   else _("👥 Admins included · tap to leave them out"),
                   callback_data=BcAdmins(exclude=not exclude_admins))
    builder.button(text=_("✖️ Cancel"), callback_data=BcConfirm(send=False))
    builder.adjust(1)
    return builder.as_markup()


def confirm_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Send"), callback_data=BcConfirm(send=True))
    builder.button(text=_("✖️ Cancel"), callback_data=BcConfirm(send=False))
    return builder.as_markup()


async def compose(event: Message | CallbackQuery, state: FSMContext) -> None:
    """/broadcast and the panel's Broadcast button."""
    await state.set_state(Compose.message)
    await (await reply_target(event)).answer(_("📣 Send me the message to broadcast: text, a photo, or forward "
                                               "any message. /cancel to stop."))


async def got_message(message: Message, state: FSMContext, services: Services) -> None:
    await state.update_data(chat_id=message.chat.id, message_id=message.message_id)
    await state.set_state(Compose.audience)
    exclude = (await state.get_data()).get("exclude_admins", False)
    await message.answer(_("Who should receive it?"), reply_markup=await audience_keyboard(services, exclude))


async def toggle_admins(query: CallbackQuery, callback_data: BcAdmins, state: FSMContext,
                        services: Services) -> None:
    """Admins in or out of the audience; the counts follow."""
    await state.update_data(exclude_admins=callback_data.exclude)
    await show(query, _("Who should receive it?"), await audience_keyboard(services, callback_data.exclude))


async def chose_audience(query: CallbackQuery, callback_data: BcAudience, state: FSMContext,
                         services: Services) -> None:
    if callback_data.audience not in audiences():
        await refuse(query, _("Unknown audience."))
        return
    data = await state.get_data()
    exclude = data.get("exclude_admins", False)
    count = await services.broadcasts.count(callback_data.audience, left_out(services, exclude))
    await state.update_data(audience=callback_data.audience)
    await state.set_state(Compose.confirm)
    target = await reply_target(query)
    await target.answer(_("👀 Preview — this is exactly what they will get:"))
    await query.bot.copy_message(target.chat.id, data["chat_id"], data["message_id"])
    lines = [_("Send it to <b>{audience}</b>: {count} recipients?").format(
        audience=audience_name(callback_data.audience), count=count)]
    if exclude:
        lines.append(_("Admins are left out."))
    lines.append(_("Sending takes about {time}.").format(
        time=duration(sending_time(count, services.settings.telegram_rate_limit))))
    await target.answer("\n".join(lines), reply_markup=confirm_keyboard())


async def cancel_compose(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(query, _("Broadcast cancelled; nothing was sent."))


async def send_broadcast(query: CallbackQuery, state: FSMContext, services: Services) -> None:
    broadcasts = services.broadcasts
    data = await state.get_data()
    await state.clear()
    broadcast = await broadcasts.create(query.from_user.id, data["chat_id"], data["message_id"],
                                        data["audience"], left_out(services, data.get("exclude_admins", False)))
    progress = await broadcasts.progress(broadcast.id)
    await show(query, _("Queued for {count} recipients.").format(count=broadcast.total) + " " + _(
        "Sending takes about {time}.").format(time=duration(progress.eta(services.settings.telegram_rate_limit))))
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
    await acknowledge(query, _("Broadcast cancelled.") if cancelled else _("This broadcast has already finished."))


def build_router() -> Router:
    router = Router(name="admin_broadcast")
    router.message.register(compose, Command("broadcast"))
    router.callback_query.register(compose, AdminMenu.filter(F.action == "broadcast"))
    router.message.register(got_message, StateFilter(Compose.message))
    router.callback_query.register(chose_audience, StateFilter(Compose.audience), BcAudience.filter())
    router.callback_query.register(toggle_admins, StateFilter(Compose.audience), BcAdmins.filter())
    router.callback_query.register(cancel_compose, BcConfirm.filter(F.send.is_(False)))
    router.callback_query.register(send_broadcast, StateFilter(Compose.confirm), BcConfirm.filter(F.send.is_(True)))
    router.callback_query.register(stale_confirm, BcConfirm.filter())
    router.callback_query.register(cancel_running, BroadcastCancel.filter())
    return router
