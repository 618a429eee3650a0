"""Switching language in /settings switches the chat's command menu too (setMyCommands with the chat's scope),
whatever language the user's Telegram client reports; /settings promises only what it has."""

from aiogram.types import BotCommandScopeChat

from bot.commands import all_commands, register_commands
from tests.conftest import ADMIN_ID


def chat_scope(chat_id: int) -> dict:
    return BotCommandScopeChat(chat_id=chat_id).model_dump(exclude_none=True)


def showing(telegram, chat_id: int, fragment: str):
    return lambda: fragment in (telegram.last_bot_message(chat_id) or {}).get("text", "")


def descriptions(commands: list[dict]) -> dict[str, str]:
    return {c["command"]: c["description"] for c in commands}


async def test_switching_language_switches_the_chats_command_menu(app, telegram):
    assert descriptions(telegram.commands())["settings"] == "Language"  # no notifications it does not have
    telegram.add_user(601, first_name="Eve", language_code="en")
    telegram.send_text(601, "/settings")
    await telegram.wait_for(showing(telegram, 601, "Choose your language"))
    assert telegram.commands(chat_scope(601)) == []  # the client's language still decides

    telegram.press_button(601, "Русский")
    for code in ("", "ru"):  # an English (or any other) client sees the Russian menu in this chat
        menu = await telegram.wait_for(lambda code=code: descriptions(telegram.commands(chat_scope(601), code)))
        assert menu["start"] == "Главное меню" and "stats" not in menu
    assert descriptions(telegram.commands())["start"] == "Main menu"  # everyone else's menu is unchanged

    telegram.press_button(601, "English")
    await telegram.wait_for(lambda: descriptions(telegram.commands(chat_scope(601), "ru")).get("start")
                            == "Main menu")


async def test_an_admin_who_switches_keeps_the_admin_commands_in_the_new_language(app, telegram):
    telegram.add_user(ADMIN_ID, language_code="en")
    telegram.send_text(ADMIN_ID, "/start")
    await telegram.wait_for(lambda: telegram.commands(chat_scope(ADMIN_ID)))
    telegram.send_text(ADMIN_ID, "/settings")
    await telegram.wait_for(showing(telegram, ADMIN_ID, "Choose your language"))
    telegram.press_button(ADMIN_ID, "Русский")
    menu = await telegram.wait_for(lambda: (m := descriptions(telegram.commands(chat_scope(ADMIN_ID))))
                                   and m["start"] == "Главное меню" and m)
    assert "stats" in menu and menu["stats"] != "Business figures"


async def test_registering_again_keeps_the_admins_chosen_language(app, telegram):
    """At start the admin lists are set again; with the admins' languages they stay as picked in /settings."""
    telegram.add_user(ADMIN_ID, language_code="en")
    telegram.send_text(ADMIN_ID, "/start")
    await telegram.wait_for(lambda: telegram.commands(chat_scope(ADMIN_ID)))
    commands = all_commands(app.services.products.commands)
    await register_commands(app.services.bot, app.services.i18n, [ADMIN_ID], commands, {ADMIN_ID: "ru"})
    for code in ("", "ru"):
        menu = descriptions(telegram.commands(chat_scope(ADMIN_ID), code))
        assert menu["start"] == "Главное меню" and "stats" in menu
    await register_commands(app.services.bot, app.services.i18n, [ADMIN_ID], commands)  # language unknown
    assert descriptions(telegram.commands(chat_scope(ADMIN_ID)))["start"] == "Main menu"
    assert descriptions(telegram.commands(chat_scope(ADMIN_ID), "ru"))["start"] == "Главное меню"
