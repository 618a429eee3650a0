"""Command lists registered with setMyCommands: users everywhere, admins in their own chats."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import lazy_gettext as __

log = logging.getLogger(__name__)

USER_COMMANDS = {
    "start": __("Main menu"),
    "tokens": __("Buy AI tokens"),
    "plans": __("Signal subscription plans"),
    "signals": __("My signals and filters"),
    "whales": __("Whale leaderboards"),
    "performance": __("Signal track record"),
    "orders": __("My orders"),
    "settings": __("Language and notifications"),
    "help": __("How to use the bot"),
    "terms": __("Terms of service"),
    "paysupport": __("Help with a payment"),
}
ADMIN_COMMANDS = {
    "admin": __("Admin panel"),
    "stats": __("Business figures"),
    "broadcast": __("Message all users"),
    "post_now": __("Publish a channel post now"),
    "preview": __("Draft a channel post to check first"),
    "schedule": __("Channel post slots and the last posts"),
    "refund": __("Refund an order"),
    "grant": __("Grant a plan"),
    "signal": __("Post a signal by hand"),
}


def command_list(commands: dict, i18n: I18n, locale: str) -> list[BotCommand]:
    with i18n.context(), i18n.use_locale(locale):
        return [BotCommand(command=name, description=str(text)) for name, text in commands.items()]


async def register_commands(bot: Bot, i18n: I18n, admin_ids: list[int]) -> None:
    for locale in i18n.available_locales:
        language = None if locale == i18n.default_locale else locale
        user = command_list(USER_COMMANDS, i18n, locale)
        await bot.set_my_commands(user, scope=BotCommandScopeDefault(), language_code=language)
    for admin_id in admin_ids:
        await register_admin_commands(bot, i18n, admin_id)


async def register_admin_commands(bot: Bot, i18n: I18n, admin_id: int) -> bool:
    """Admin list in the admin's own chat. Fails until the admin has opened the bot, so /start
    from an admin registers it again."""
    try:
        for locale in i18n.available_locales:
            language = None if locale == i18n.default_locale else locale
            commands = command_list(USER_COMMANDS, i18n, locale) + command_list(ADMIN_COMMANDS, i18n, locale)
            await bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id=admin_id),
                                      language_code=language)
    except TelegramAPIError as exc:
        log.info("admin commands for %s not set yet: %s", admin_id, exc.message)
        return False
    return True
