"""/terms, /cancel and /paysupport: the user's next message goes to every admin."""

from __future__ import annotations

import html
import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.keyboards import support_reply
from bot.wiring import Services
from services.terms import terms_text
from services.text import strip_invisible
from services.users import UserInfo

log = logging.getLogger(__name__)


class Support(StatesGroup):
    writing = State()


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


async def forward_to_admins(message: Message, state: FSMContext, bot: Bot, services: Services) -> None:
    user = message.from_user
    who = html.escape(strip_invisible(user.full_name)) + (f" @{user.username}" if user.username else "")
    header = _("📩 Support request from {who} (id <code>{id}</code>)").format(who=who, id=user.id)
    delivered = 0
    for admin_id in services.settings.admin_ids:
        try:
            copy = await bot.copy_message(admin_id, message.chat.id, message.message_id)
            await bot.send_message(admin_id, header, reply_markup=support_reply(user.id),
                                   reply_to_message_id=copy.message_id)
            delivered += 1
        except TelegramAPIError as exc:
            log.warning("support request not delivered to admin %s: %s", admin_id, exc.message)
    if delivered:
        await state.clear()
        await message.answer(_("✅ Sent. We'll answer you here as soon as we can."))
    else:
        await message.answer(_("We couldn't reach the team right now. Please try again in a few minutes."))


def build_router() -> Router:
    router = Router(name="support")
    router.message.register(terms, Command("terms"))
    router.message.register(paysupport, Command("paysupport"))
    router.message.register(forward_to_admins, StateFilter(Support.writing))
    return router
