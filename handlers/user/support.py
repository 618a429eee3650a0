"""/terms and /paysupport: the user's next message goes to every admin, in each admin's language. An admin's
answer carries a Reply button; tapping it, or replying to the answer, continues the thread."""

from __future__ import annotations

import html
import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.keyboards import support_reply
from bot.screens import reply_target
from bot.wiring import Services
from services.terms import terms_text
from services.text import strip_invisible
from services.users import UserInfo

log = logging.getLogger(__name__)


class Support(StatesGroup):
    writing = State()
    follow_up = State()


class SupportFollowUp(CallbackData, prefix="supu"):
    """The Reply button under an admin's answer, in the user's chat."""


def follow_up_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("↩️ Reply"), callback_data=SupportFollowUp())
    return builder.as_markup()


def answers_support(message: Message) -> bool:
    """The message replies (Telegram's Reply) to an admin's answer: a bot message with our Reply button.
    Telegram fills `reply_to_message` itself, so a client cannot forge it."""
    answer = message.reply_to_message
    if answer is None or answer.from_user is None or not answer.from_user.is_bot or answer.reply_markup is None:
        return False
    if message.text and message.text.startswith("/"):
        return False  # a command typed as a reply is still a command
    wanted = SupportFollowUp().pack()
    return any(getattr(button, "callback_data", None) == wanted
               for row in answer.reply_markup.inline_keyboard for button in row)


async def terms(message: Message, user_info: UserInfo) -> None:
    text = terms_text(user_info.language)
    await message.answer(text or _("The terms have not been published yet."))


async def paysupport(message: Message, state: FSMContext, services: Services) -> None:
    if not services.settings.admin_ids:
        await message.answer(_("Support is not set up yet. Please try again later."))
        return
    await state.set_state(Support.writing)
    await message.answer(
        _("✍️ Describe the problem in one message (the order id helps). "
          "It goes straight to our team, and the answer comes here.\n\n/cancel to stop.")
    )


async def follow_up(query: CallbackQuery, state: FSMContext) -> None:
    """The Reply button under an admin's answer: the next message goes to the admins."""
    await state.set_state(Support.follow_up)
    await (await reply_target(query)).answer(_("✍️ Write your reply in one message. /cancel to stop."))


async def forward_to_admins(message: Message, state: FSMContext, bot: Bot, services: Services) -> None:
    """A request (after /paysupport) or a follow-up in a thread: a copy and a header in each admin's language."""
    user = message.from_user
    who = html.escape(strip_invisible(user.full_name)) + (f" @{user.username}" if user.username else "")
    current = await state.get_state()
    follow_up = current != Support.writing.state

    def header() -> str:
        if follow_up:
            return _("💬 Follow-up from {who} (id <code>{id}</code>) to a support answer").format(who=who, id=user.id)
        return _("📩 Support request from {who} (id <code>{id}</code>)").format(who=who, id=user.id)

    delivered = 0
    for admin_id in services.settings.admin_ids:
        try:
            copy = await bot.copy_message(admin_id, message.chat.id, message.message_id)
            await services.notifier.send(admin_id, header, lambda: support_reply(user.id), strict=True,
                                         reply_to=copy.message_id)
            delivered += 1
        except TelegramAPIError as exc:
            log.warning("support request not delivered to admin %s: %s", admin_id, exc.message)
    if delivered:
        if current in (Support.writing.state, Support.follow_up.state):
            await state.clear()  # a Telegram reply to an answer leaves any other flow where it was
        await message.answer(_("✅ Sent. We'll answer you here as soon as we can."))
    else:
        await message.answer(_("We couldn't reach the team right now. Please try again in a few minutes."))


def build_router() -> Router:
    router = Router(name="support")
    router.message.register(terms, Command("terms"))
    router.message.register(paysupport, Command("paysupport"))
    router.message.register(forward_to_admins, StateFilter(Support.writing, Support.follow_up))
    router.message.register(forward_to_admins, answers_support)
    router.callback_query.register(follow_up, SupportFollowUp.filter())
    return router
