"""Admin commands from anyone else: a plain refusal; nothing runs, nothing is revealed."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.commands import ADMIN_COMMANDS, admin_command_names

#: Admin commands that are not in the command menu.
EXTRA_ADMIN_COMMANDS = tuple(name for name in admin_command_names() if name not in ADMIN_COMMANDS)


async def refuse(message: Message) -> None:
    await message.answer(_("Sorry, this command is only for the bot's administrators."))


def build_router() -> Router:
    router = Router(name="admin_refusal")
    router.message.register(refuse, Command(*admin_command_names()))
    return router
