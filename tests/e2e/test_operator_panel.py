"""The sandbox shows every capability: ingest is on by default (its secret printed with a curl example
that works), and the web chat's operator panel posts signals, their events and whale trades through the
bot's real signed HTTP routes, and finds each provider's pay page of a user's open invoice."""

from __future__ import annotations

import asyncio
import subprocess

import httpx

from sandbox.runner import Sandbox, ingest_help, running_sandbox
from tests.conftest import make_settings

SUBSCRIBER = 1001  # Alice, a demo user


def copies(sb, chat_id, fragment):
    return [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]


async def subscribe(sb) -> None:
    """Alice says /start, then has Pro for 30 days (paid plans get signals at once)."""
    sb.telegram.send_text(SUBSCRIBER, "/start")
    await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Alice"))
    await sb.app.subscriptions.add_time(SUBSCRIBER, "pro", 30, source="grant")


async def test_ingest_is_on_and_the_printed_curl_example_posts_a_signal(tmp_path, capsys):
    sandbox = Sandbox(rate_limit=None)
    try:
        settings = await sandbox.start(make_settings(web_port=18_999, signal_webhook_secret=None),
                                       database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    finally:
        await sandbox.stop()
    printed = capsys.readouterr().out
    secret = settings.signal_webhook_secret.get_secret_value()
    assert len(secret) >= 32 and f"SIGNAL_WEBHOOK_SECRET={secret}" in printed
    assert "curl -s http://127.0.0.1:18999/api/signals" in printed

    async with running_sandbox(tmp_path) as sb:  # no secret given: ingest is on all the same
        await subscribe(sb)
        secret = sb.settings.signal_webhook_secret.get_secret_value()
        script = "\n".join(line.strip() for line in ingest_help(f"http://127.0.0.1:{sb.app.port}", secret)
                           .splitlines()[2:])
        done = await asyncio.to_thread(subprocess.run, ["bash", "-euo", "pipefail", "-c", script],
                                       capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and '"stored": true' in done.stdout, (done.stdout, done.stderr)
        [signal] = await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Entry: 142.5"))
        assert "#SOL/USDT" in signal["text"] or "SOL/USDT" in signal["text"]


async def test_operator_panel_posts_signal_events_and_whale_trades(tmp_path):
    async with running_sandbox(tmp_path) as sb, httpx.AsyncClient(
            base_url=f"{sb.telegram.base_url}/sandbox/api/operator", timeout=30) as panel:
        state = (await panel.get("/state")).json()
        assert state["ingest"] is True and state["ingest_url"].endswith("/api/signals")
        await subscribe(sb)

        posted = (await panel.post("/signal", json={
            "ecosystem": "crypto", "symbol": "eth/usdt", "side": "short", "entry": "3200",
            "targets": "3100, 3000", "stop": "3300", "timeframe": "1h"})).json()
        assert posted["status"] == 202 and posted["body"]["stored"] is True
        [mine] = await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Entry: 3200"))
        assert "Stop: 3300" in mine["text"]

        refused = (await panel.post("/signal", json={"symbol": "ETH/USDT", "side": "long", "entry": "3200",
                                                      "targets": "3100", "stop": "3300"})).json()
        assert refused["status"] == 422 and refused["body"]["field"] == "stop_loss"  # the bot's own answer

        hit = (await panel.post(f"/signal/{posted['id']}/event", json={"type": "tp_hit", "level": 1})).json()
        assert hit["status"] == 202
        [reply] = await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Take-Profit target 1"))
        assert reply["reply_to_message"]["message_id"] == mine["message_id"] and "3100" in reply["text"]
        closed = (await panel.post(f"/signal/{posted['id']}/event", json={"type": "sl_hit"})).json()
        assert closed["status"] == 202
        again = (await panel.post(f"/signal/{posted['id']}/event", json={"type": "closed", "price": "3150"})).json()
        assert again["status"] == 409  # the bot refuses an event on a closed signal
        assert (await panel.get("/state")).json()["signals"][0]["events"] == ["tp_hit:1", "sl_hit"]

        whales = (await panel.post("/whales")).json()
        assert whales["status"] == 200 and whales["body"]["stored"] == whales["sent"] > 50
        assert not whales["body"]["rejected"]
        sb.telegram.send_text(SUBSCRIBER, "/whales")
        board = await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Jupiter Degen")
                                           or copies(sb, SUBSCRIBER, "Sol Sniper"))
        assert board


async def test_operator_panel_lists_the_open_kryptoexpress_invoice_of_the_user(tmp_path):
    async with running_sandbox(tmp_path) as sb, httpx.AsyncClient(
            base_url=f"{sb.telegram.base_url}/sandbox/api/operator", timeout=30) as panel:
        assert (await panel.get("/invoices", params={"user_id": SUBSCRIBER})).json() == {"invoices": []}
        await _buy_basic_on_chain(sb)
        [invoice] = (await panel.get("/invoices", params={"user_id": SUBSCRIBER})).json()["invoices"]
        assert invoice["provider"] == "kryptoexpress" and invoice["url"].startswith(sb.kryptoexpress.public_url)
        async with httpx.AsyncClient() as client:
            page = await client.get(invoice["url"])
        assert page.status_code == 200 and "KryptoExpress payment" in page.text
        assert (await panel.get("/invoices", params={"user_id": 1002})).json() == {"invoices": []}  # not Boris's


async def _buy_basic_on_chain(sb) -> None:
    """Alice picks Basic for a month and pays on-chain through KryptoExpress (accepting the terms)."""
    sb.telegram.send_text(SUBSCRIBER, "/plans")
    await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Signal plans"))
    for label, expect in (("Basic · month", "Choose how to pay"), ("USDT TRC20 on-chain", "accept our terms"),
                          ("I accept", "Send exactly")):
        sb.telegram.press_button(SUBSCRIBER, label)
        await sb.telegram.wait_for(lambda e=expect: copies(sb, SUBSCRIBER, e))
