"""Developer API in the sandbox (issue 17): a person opens "Developer API" from the main menu, creates a key
(shown once, one unbroken token), buys $5 of API credit with Telegram Stars on the stand-in, sees it in /api,
and an admin's refund after part of it was spent takes back only what is left; and the issue's "done when",
with the README's curl."""

import asyncio
import json
import os
import re
import subprocess
from decimal import Decimal

import pytest

from sandbox.runner import api_help, running_sandbox
from services.ledger import Cause
from services.orders import Status
from tests.support.checkout import pay_first_order_with_stars

DEV, BUYER, ADMIN = 750, 751, 1000  # two people: each stays within the bot's 8 taps per 5 s


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, admin_ids=[ADMIN]) as sandbox:
        yield sandbox


def newest(sb, fragment, chat_id=BUYER):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


async def test_a_key_is_created_from_the_main_menu_and_shown_once(sb):
    sb.telegram.add_user(DEV, "Dev")
    sb.telegram.send_text(DEV, "/start")
    await sb.telegram.wait_for(newest(sb, "Choose what you need", DEV))
    sb.telegram.press_button(DEV, "🔌 Developer API")
    await sb.telegram.wait_for(newest(sb, "You have no API keys yet", DEV))
    sb.telegram.press_button(DEV, "➕ New key")
    await sb.telegram.wait_for(newest(sb, "Send a name for the new key", DEV))
    sb.telegram.send_text(DEV, "my script")
    shown = await sb.telegram.wait_for(newest(sb, "shown only once", DEV))
    key = re.search(r"sck_[0-9A-Za-z]{38}", shown["text"]).group(0)
    assert any(e["type"] == "code" and e["length"] == len(key) for e in shown["entities"])  # one token to copy
    assert (await sb.app.api_keys.authenticate(key)).user_id == DEV
    sb.telegram.send_text(DEV, "/api")
    listing = await sb.telegram.wait_for(newest(sb, "Your keys (1 of 10)", DEV))
    assert key[:8] in listing["text"] and key not in listing["text"]


async def test_credit_bought_with_stars_and_a_refund_takes_back_what_is_left(sb):
    sb.telegram.add_user(BUYER, "Buyer")
    sb.telegram.send_text(BUYER, "/api")
    await sb.telegram.wait_for(newest(sb, "API credit: $0.00"))
    sb.telegram.press_button(BUYER, "💳 Buy credit")
    await sb.telegram.wait_for(newest(sb, "Choose an amount"))
    sb.telegram.press_button(BUYER, "$5.00")
    await pay_first_order_with_stars(sb, BUYER)
    added = await sb.telegram.wait_for(newest(sb, "of API credit added"), timeout=10)
    [order] = await sb.app.orders.for_user(BUYER)
    assert "$5.00 of API credit added" in added["text"] and f"Receipt: order #{order.id}" in added["text"]
    sb.telegram.send_text(BUYER, "/api")
    await sb.telegram.wait_for(newest(sb, "API credit: $5.00"))

    async def fulfilled():
        return (await sb.app.orders.get(order.id)).status == Status.FULFILLED
    await sb.telegram.wait_for(fulfilled)
    assert await sb.app.ledger.charge(BUYER, Decimal("1.20"), Cause("api_call", "e2e-1"))
    sb.telegram.add_user(ADMIN, "Admin")
    sb.telegram.send_text(ADMIN, f"/refund {order.id}")
    confirm = await sb.telegram.wait_for(newest(sb, "still unused", chat_id=ADMIN))
    assert "up to $5.00" in confirm["text"]
    sb.telegram.press_button(ADMIN, "Confirm")
    await sb.telegram.wait_for(newest(sb, "$3.80 of unused API credit has been removed"), timeout=10)
    assert await sb.app.ledger.credit(BUYER) == 0


async def test_done_when_a_key_from_the_chat_runs_over_the_free_quota_and_credit_bought_with_stars_pays(tmp_path):
    """The issue's "done when": a key created in the chat, the README's curl, over the Free quota (3 calls a day
    here), $5 of credit bought with Stars in the chat, and the next call charged and shown in /usage."""
    async with running_sandbox(tmp_path, api_limits={"free": {"per_minute": 10, "per_day": 3}}) as sb:
        sb.telegram.add_user(DEV, "Dev")
        sb.telegram.send_text(DEV, "/api")
        await sb.telegram.wait_for(newest(sb, "You have no API keys yet", DEV))
        sb.telegram.press_button(DEV, "➕ New key")
        await sb.telegram.wait_for(newest(sb, "Send a name for the new key", DEV))
        sb.telegram.send_text(DEV, "curl")
        shown = await sb.telegram.wait_for(newest(sb, "shown only once", DEV))
        key = re.search(r"sck_[0-9A-Za-z]{38}", shown["text"]).group(0)

        curl = api_help(f"http://127.0.0.1:{sb.app.port}").splitlines()[1].strip()  # as README and the sandbox say
        assert curl.startswith("curl -s http://127.0.0.1:") and "/api/v1/signals" in curl

        def run_curl(command: str) -> tuple[int, dict]:
            done = subprocess.run(["bash", "-c", command.replace("curl -s", "curl -s -w '\\n%{http_code}'")],
                                  capture_output=True, text=True, timeout=30, env={**os.environ, "KEY": key})
            body, status = done.stdout.rsplit("\n", 1)
            return int(status), json.loads(body)

        for _ in range(3):
            status, answer = await asyncio.to_thread(run_curl, curl)
            assert status == 200 and "signals" in answer
        status, problem = await asyncio.to_thread(run_curl, curl)
        assert status == 429 and problem["type"].endswith("#problem-quota-exhausted")

        await asyncio.sleep(5)  # a person reads the answer: the bot allows 8 taps in 5 s
        sb.telegram.send_text(DEV, "/api")
        await sb.telegram.wait_for(newest(sb, "API credit: $0.00", DEV))
        sb.telegram.press_button(DEV, "💳 Buy credit")
        await sb.telegram.wait_for(newest(sb, "Choose an amount", DEV))
        sb.telegram.press_button(DEV, "$5.00")
        await pay_first_order_with_stars(sb, DEV)
        await sb.telegram.wait_for(newest(sb, "of API credit added", DEV), timeout=10)

        status, answer = await asyncio.to_thread(run_curl, curl)
        assert status == 200 and "signals" in answer
        usage_command = curl.replace("/api/v1/signals", "/api/v1/usage")
        status, usage = await asyncio.to_thread(run_curl, usage_command)
        assert status == 200 and usage["credit_usd"] == "4.99"
        assert usage["days"][0]["charged_calls"] == 1 and usage["days"][0]["credit_spent_usd"] == "0.01"
