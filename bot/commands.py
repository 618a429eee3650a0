"""The one list of commands: the command menus (setMyCommands: users everywhere, admins in their own
chats), /help, the admin panel's howto and the refusal filter all read it. Products add theirs
(`services.products.Product.commands`) after /start."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import lazy_gettext as __

from services.products import Command, text

log = logging.getLogger(__name__)

#: Before the products' commands.
HEAD = (Command("start", __("Main menu")),)
#: After the products' commands, in menu / help / howto order.
TAIL = (
    Command("whales", __("Whale leaderboards"), help=__("/whales — whale leaderboards")),
    Command("performance", __("Signal track record"), help=__("/performance — the signals' verifiable track record")),
    Command("orders", __("My orders"), help=__("/orders — your orders and their status"),
            howto=__("/orders USER_ID — a user's orders")),
    Command("settings", __("Language"), help=__("/settings — language")),
    Command("help", __("How to use the bot")),
    Command("terms", __("Terms of service"), help=__("/terms — terms of service")),
    Command("paysupport", __("Help with a payment"), help=__("/paysupport — a problem with a payment? Write to us")),
    Command("cancel", help=__("/cancel — stop what you are doing")),
    Command("admin", __("Admin panel"), admin=True),
    Command("stats", __("Business figures"), admin=True),
    Command("user", howto=__("/user ID or @username — a user's card: plan, orders, ban, refund"), admin=True),
    Command("grant", __("Grant a plan"), howto=__("/grant USER_ID PLAN DAYS — give a plan, e.g. /grant 12345 pro 30"),
            admin=True),
    Command("refund", __("Refund an order"), howto=__("/refund ORDER_ID — refund an order"), admin=True),
    Command("refund_done", admin=True),
    Command("broadcast", __("Message all users"),
            howto=__("/broadcast — message everyone, paying users, a plan or lapsed users"), admin=True),
    Command("post_now", __("Publish a channel post now"),
            howto=__("/post_now [kind], /preview [kind], /schedule — channel posts"), admin=True),
    Command("preview", __("Draft a channel post to check first"), admin=True),
    Command("schedule", __("Channel post slots and the last posts"), admin=True),
    Command("import_whales", howto=__("/import_whales — send a CSV with this caption; /whale_set — edit a wallet"),
            admin=True),
    Command("whale_set", admin=True),
    Command("export", howto=__("/export DAYS — orders as CSV"), admin=True),
    Command("audit", howto=__("/audit — who did what"), admin=True),
    Command("providers", __("Signal providers: review"),
            howto=__("/providers — provider applications: approve, reject, suspend, reinstate"), admin=True),
    Command("payouts", __("Seller payouts"),
            howto=__("/payouts — pay sellers their payable balance; record manual payouts"), admin=True),
)


def all_commands(product_commands: Iterable[Command] = ()) -> list[Command]:
    """Every command in order: /start, the products' commands, then the rest."""
    return [*HEAD, *product_commands, *TAIL]


def admin_command_names() -> list[str]:
    """Commands only admins may run (anyone else is refused)."""
    return [c.name for c in all_commands() if c.admin]


#: Names and menu descriptions of the commands without products (kept for readers of the old lists).
USER_COMMANDS = {c.name: c.menu for c in all_commands() if c.menu is not None and not c.admin}
ADMIN_COMMANDS = {c.name: c.menu for c in all_commands() if c.menu is not None and c.admin}


def command_list(commands: Iterable[Command], i18n: I18n, locale: str, *, admin: bool) -> list[BotCommand]:
    """The command menu in `locale`: user commands, and admin ones too when `admin`."""
    with i18n.context(), i18n.use_locale(locale):
        return [BotCommand(command=c.name, description=text(c.menu)) for c in commands
                if c.menu is not None and (admin or not c.admin)]


async def register_commands(bot: Bot, i18n: I18n, admin_ids: list[int], commands: list[Command],
                            admin_languages: Mapping[int, str] | None = None) -> None:
    """Everyone's menus per language, and each admin's own (in `admin_languages[admin]` if known: what the
    admin reads the bot in, so a language picked in /settings stays after a restart)."""
    for locale in i18n.available_locales:
        language = None if locale == i18n.default_locale else locale
        user = command_list(commands, i18n, locale, admin=False)
        await bot.set_my_commands(user, scope=BotCommandScopeDefault(), language_code=language)
    for admin_id in admin_ids:
        await register_admin_commands(bot, i18n, admin_id, commands, (admin_languages or {}).get(admin_id))


async def register_chat_commands(bot: Bot, i18n: I18n, chat_id: int, commands: list[Command], language: str, *,
                                 admin: bool) -> bool:
    """The chat's own menu in `language` whatever its client's language (a user who picked one in /settings):
    set for the chat under every language code, so it also wins over an admin's per-language lists."""
    menu = command_list(commands, i18n, language, admin=admin)
    try:
        for locale in i18n.available_locales:
            await bot.set_my_commands(menu, scope=BotCommandScopeChat(chat_id=chat_id),
                                      language_code=None if locale == i18n.default_locale else locale)
    except TelegramAPIError as exc:
        log.info("command menu for chat %s not set: %s", chat_id, exc.message)
        return False
    return True


async def register_admin_commands(bot: Bot, i18n: I18n, admin_id: int, commands: list[Command],
                                  language: str | None = None) -> bool:
    """Admin list in the admin's own chat: in `language` if given, else in each client's language. Fails until
    the admin has opened the bot, so /start from an admin registers it again."""
    if language is not None:
        return await register_chat_commands(bot, i18n, admin_id, commands, language, admin=True)
    try:
        for locale in i18n.available_locales:
            language = None if locale == i18n.default_locale else locale
            await bot.set_my_commands(command_list(commands, i18n, locale, admin=True),
                                      scope=BotCommandScopeChat(chat_id=admin_id), language_code=language)
    except TelegramAPIError as exc:
        log.info("admin commands for %s not set yet: %s", admin_id, exc.message)
        return False
    return True
