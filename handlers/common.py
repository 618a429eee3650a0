"""/cancel, ahead of every other router so it always leaves the current conversation."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _


async def cancel(message: Message, state: FSMContext) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    await message.answer(_("Cancelled.") if had_state else _("Nothing to cancel."))


def build_router() -> Router:
    router = Router(name="common")
    router.message.register(cancel, Command("cancel"))
    return router
