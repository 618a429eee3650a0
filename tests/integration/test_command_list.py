"""One list of commands (issue 15): /help, the admin panel's howto, the refusal of admin commands and the
command menus all come from bot/commands.py plus the products' registrations, in English and Russian."""

from bot.commands import all_commands, command_list
from handlers.admin.panel import AdminMenu
from tests.conftest import ADMIN_ID


async def test_help_has_one_line_per_command_in_the_users_language(harness):
    await harness.send(harness.user(1, language_code="ru"), "/help")
    text = harness.session.of("SendMessage")[-1].text
    assert text.startswith("<b>Как это работает</b>\n\n")
    assert "/tokens — купить AI-токены: выберите модель и пакет, оплатите, получите API-ключ" in text
    assert text.splitlines()[2:] == [line for line in text.splitlines()[2:] if line.startswith("/")]
    await harness.send(2, "/help")
    lines = harness.session.of("SendMessage")[-1].text.splitlines()[2:]
    assert [line.split()[0] for line in lines] == ["/tokens", "/plans", "/signals", "/api", "/data", "/market",
                                                    "/provider", "/signal", "/whales",
                                                    "/performance", "/orders", "/settings", "/terms", "/paysupport",
                                                    "/cancel"]


async def test_admin_howto_and_refusal_read_the_same_list(harness):
    await harness.press(ADMIN_ID, AdminMenu(action="howto").pack())
    howto = harness.session.of("EditMessageText")[-1].text
    assert howto.startswith("🧭 <b>Admin commands</b>\n\n")
    for line in ("/grant USER_ID PLAN DAYS — give a plan, e.g. /grant 12345 pro 30",
                 "/orders USER_ID — a user's orders", "/post_now [kind], /preview [kind], /schedule — channel posts",
                 "/audit — who did what"):
        assert line in howto
    admin_only = [c.name for c in all_commands() if c.admin]
    assert {"admin", "stats", "user", "refund_done", "whale_set"} <= set(admin_only)
    for name in admin_only:
        await harness.send(7, f"/{name}")
        assert harness.session.of("SendMessage")[-1].text == "Sorry, this command is only for the bot's administrators."


def test_command_menus_users_and_admins(harness):
    commands = all_commands(harness.app.products.commands)
    users = [c.command for c in command_list(commands, harness.app.i18n, "en", admin=False)]
    assert users == ["start", "tokens", "plans", "signals", "api", "data", "market", "provider", "signal", "whales",
                     "performance", "orders",
                     "settings", "help", "terms", "paysupport"]
    admins = command_list(commands, harness.app.i18n, "ru", admin=True)
    assert [c.command for c in admins][:len(users)] == users
    assert {"admin", "stats", "broadcast", "post_now", "preview", "schedule", "refund", "grant",
            "providers", "payouts"} == \
        {c.command for c in admins[len(users):]}
    assert dict((c.command, c.description) for c in admins)["tokens"] == "Купить AI-токены"
