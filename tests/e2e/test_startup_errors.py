"""`python run.py` that cannot start because of one setting exits 2 with one line naming it, no traceback
(issue 13.6): what the operator sees on the console or in `journalctl`. The mapping of each failure to its
setting is also checked in-process, where the app is already imported."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import App
from bot.startup import StartupError
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ"
REFUSED_TOKEN = "654321:ZYXwvuTSRqpoNMLkjiHGFedcBA"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "DATABASE_", "ADMIN_", "WEB_", "CRYPTO_", "KRYPTO_", "OPENROUTER_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
               WEB_PORT="0", TELEGRAM_API_URL=f"http://127.0.0.1:{free_port()}")  # nothing leaves the machine
    env.update(settings)
    return env


async def run_bot(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "run.py", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    return proc.returncode, err.decode()


def assert_one_line(code: int, stderr: str, setting: str, *words: str) -> str:
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and setting in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


async def test_port_in_use_names_web_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = await run_bot(env_for(tmp_path, WEB_PORT=str(port)))
    assert_one_line(code, err, "WEB_PORT", str(port), "already in use")


async def test_unreachable_database_names_database_url(tmp_path):
    url = f"postgresql+asyncpg://bot:hunter2@127.0.0.1:{free_port()}/bot"
    code, err = await run_bot(env_for(tmp_path, DATABASE_URL=url))
    assert_one_line(code, err, "DATABASE_URL", "Cannot connect", "credentials")
    assert "hunter2" not in err  # the password is masked


async def test_postgres_without_an_async_driver_says_use_asyncpg(tmp_path):
    code, err = await run_bot(env_for(tmp_path, DATABASE_URL="postgresql://bot:hunter2@127.0.0.1/bot"))
    assert_one_line(code, err, "DATABASE_URL", "postgresql+asyncpg://")
    assert "hunter2" not in err


async def test_webhook_url_without_secret_is_refused_before_anything_starts(tmp_path):
    code, err = await run_bot(env_for(tmp_path, TELEGRAM_WEBHOOK_URL="https://bot.example/telegram/webhook"))
    assert_one_line(code, err, "TELEGRAM_WEBHOOK_SECRET", "A-Z, a-z, 0-9, _ and -")
    assert not (tmp_path / "bot.db").exists()  # refused before the database was even touched


# The other mappings in-process (the real App; importing it in a fresh process takes seconds each).

async def start_error(tmp_path: Path, **overrides) -> str:
    settings = make_settings(**{"database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", "web_port": 0,
                                "telegram_api_url": f"http://127.0.0.1:{free_port()}", **overrides})
    app = App(settings)
    try:
        with pytest.raises(StartupError) as err:
            await app.start()
    finally:
        await app.stop()
    line = str(err.value)
    assert "\n" not in line
    return line


async def test_an_address_not_on_this_machine_names_web_host(tmp_path):
    line = await start_error(tmp_path, web_host="192.0.2.1")  # TEST-NET-1: never ours
    assert line.startswith("WEB_HOST '192.0.2.1' is not an address of this machine") and "0.0.0.0" in line


async def test_sqlite_folder_that_cannot_be_created_names_database_url(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    url = f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'data' / 'bot.db'}"
    with pytest.raises(StartupError, match=r"DATABASE_URL .*folder cannot be created.*writable path"):
        App(make_settings(database_url=url))


async def test_unreachable_bot_api_names_telegram_api_url(tmp_path):
    line = await start_error(tmp_path)
    assert line.startswith("Cannot reach the Bot API at TELEGRAM_API_URL http://127.0.0.1:")


async def fake_bot_api(request: web.Request) -> web.Response:
    """Telegram refusing REFUSED_TOKEN, and any webhook; everything else succeeds."""
    token, method = request.match_info["token"], request.match_info["method"].lower()
    if token == REFUSED_TOKEN:
        return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
    if method == "getme":
        return web.json_response({"ok": True, "result": {"id": 123456, "is_bot": True, "first_name": "Bot",
                                                         "username": "test_bot"}})
    if method == "setwebhook":
        return web.json_response({"ok": False, "error_code": 400, "description":
                                  "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"},
                                 status=400)
    return web.json_response({"ok": True, "result": True})


@pytest.fixture
async def bot_api():
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", fake_bot_api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_refused_token_names_telegram_bot_token(tmp_path, bot_api):
    line = await start_error(tmp_path, telegram_api_url=bot_api, telegram_bot_token=REFUSED_TOKEN)
    assert line.startswith("TELEGRAM_BOT_TOKEN was refused") and "@BotFather" in line
    assert REFUSED_TOKEN.split(":")[1] not in line


async def test_refused_webhook_names_telegram_webhook_url(tmp_path, bot_api):
    line = await start_error(tmp_path, telegram_api_url=bot_api, telegram_webhook_secret="s3cret_token",
                             telegram_webhook_url="https://bot.example:1234/telegram/webhook")
    assert line.startswith("TELEGRAM_WEBHOOK_URL https://bot.example:1234/telegram/webhook was refused")
    assert "ports 80, 88, 443 or 8443" in line
