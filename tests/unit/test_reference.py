"""docs/reference.md lists exactly the commands the routers handle and the routes the HTTP app serves."""

from __future__ import annotations

import re
from pathlib import Path

from aiogram.filters import Command

from bot.app import App
from bot.commands import all_commands
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]


def reference_rows(heading: str) -> set[str]:
    """First cells of the tables under `## heading` in docs/reference.md."""
    text = (ROOT / "docs" / "reference.md").read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return {line.split("|")[1].strip() for line in section.splitlines()
            if line.startswith("| `")}


def handled_commands(app: App) -> set[str]:
    found: set[str] = set()
    routers = list(app.dp.sub_routers)
    while routers:
        router = routers.pop()
        routers.extend(router.sub_routers)
        for handler in router.message.handlers:
            for flt in handler.filters or ():
                if isinstance(flt.callback, Command):
                    found.update(c for c in flt.callback.commands if isinstance(c, str))
    return found


def full_app(tmp_path) -> App:
    return App(make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ref.db'}",
        telegram_webhook_url="https://bot.example/telegram/webhook", telegram_webhook_secret="s3cret-Token_1",
        signal_webhook_secret="x" * 32, crypto_pay_token="1:token", krypto_express_api_key="key",
        krypto_express_callback_secret="cb"))


def test_every_command_is_in_the_reference(tmp_path):
    documented = {re.match(r"`/(\w+)", cell).group(1) for cell in reference_rows("Bot commands")}
    handled = handled_commands(full_app(tmp_path))
    assert documented == handled, f"list in docs/reference.md: {handled - documented}; remove: {documented - handled}"


def test_every_route_is_in_the_reference(tmp_path):
    documented = {cell.strip("`") for cell in reference_rows("HTTP endpoints")}
    served = {f"{route.method} {route.resource.canonical}" for route in full_app(tmp_path).web.router.routes()
              if route.method != "HEAD"}
    assert documented == served, f"list in docs/reference.md: {served - documented}; remove: {documented - served}"


def test_the_one_command_list_is_what_the_routers_handle(tmp_path):
    """bot/commands.py plus the products' commands feed the command menus, /help, the admin howto and the
    refusal filter: a command handled but missing there would be in none of them."""
    app = full_app(tmp_path)
    listed = [c.name for c in all_commands(app.products.commands)]
    assert len(listed) == len(set(listed))
    assert set(listed) == handled_commands(app)
