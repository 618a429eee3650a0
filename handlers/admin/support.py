"""Admins answer support requests: tap Reply, send one message, the user gets it (the header in the user's
language) with a Reply button of their own, so the thread goes on."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import SupportReply
from bot.screens import reply_target
from bot.wiring import Services
from handlers.user.support import follow_up_keyboard


class AdminReply(StatesGroup):
    writing = State()


async def start_reply(query: CallbackQuery, callback_data: SupportReply, state: FSMContext) -> None:
    await state.set_state(AdminReply.writing)
    await state.update_data(reply_to=callback_data.user_id)
    await (await reply_target(query)).answer(
        _("Send your answer to user <code>{id}</code> as one message. /cancel to stop.").format(
            id=callback_data.user_id))


async def send_reply(message: Message, state: FSMContext, bot: Bot, services: Services) -> None:
    user_id = (await state.get_data())["reply_to"]
    try:
        await services.notifier.send(user_id, lambda: _("💬 <b>Support:</b>"), strict=True)
        keyboard = await services.notifier.render(user_id, follow_up_keyboard)
        await bot.copy_message(user_id, message.chat.id, message.message_id, reply_markup=keyboard)
    except TelegramForbiddenError:
        await message.answer(_("Not delivered: the user has blocked the bot."))
    except TelegramAPIError as exc:
        await message.answer(_("Not delivered: {reason}").format(reason=exc.message))
    else:
        await message.answer(_("✅ Delivered."))
    await state.clear()


def build_router() -> Router:
    router = Router(name="admin_support")
    router.callback_query.register(start_reply, SupportReply.filter())
    router.message.register(send_reply, StateFilter(AdminReply.writing))
    return router
