"""Whales end to end: a signed batch POSTed to the running app's HTTP port, then /whales in the
stand-in chat, a period switch editing the same message, and a forged signature refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx

from processing.ingest_auth import signed_headers
from sandbox.runner import running_sandbox

SECRET = "e2e-whale-secret"
USER = 7001


def batch() -> dict:
    ts = (datetime.now(UTC) - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    return {"trades": [{"id": f"e2e-{k}-{i}", "wallet": f"E2eWallet{k:02d}LongAddress", "chain": "solana",
                        "label": f"Fish {k}", "symbol": "SOL", "side": "sell", "usd_value": "20000",
                        "pnl_usd": str(k * 250), "ts": ts} for k in range(1, 4) for i in range(5)]}


def bot_text(sb) -> str:
    message = sb.telegram.last_bot_message(USER)
    return message.get("text", "") if message else ""


def showing(sb, fragment: str):
    return lambda: fragment in bot_text(sb) and sb.telegram.last_bot_message(USER)


async def test_signed_trades_then_whales_leaderboard(tmp_path):
    async with running_sandbox(tmp_path, signal_webhook_secret=SECRET) as sb:
        url = f"http://127.0.0.1:{sb.app.port}/api/whales/trades"
        body = json.dumps(batch()).encode()
        async with httpx.AsyncClient() as client:
            forged = await client.post(url, content=body, headers=signed_headers("not-the-secret", body))
            assert forged.status_code == 401
            response = await client.post(url, content=body, headers=signed_headers(SECRET, body))
            assert response.status_code == 200 and response.json()["stored"] == 15
            again = await client.post(url, content=body, headers=signed_headers(SECRET, body))
            assert again.json() | {"duplicate_ids": []} == {"ok": True, "stored": 0, "duplicates": 15,
                                                             "duplicate_ids": [], "rejected": []}

        sb.telegram.add_user(USER, first_name="Whale watcher")
        sb.telegram.send_text(USER, "/whales")
        board = await sb.telegram.wait_for(showing(sb, "Whale leaderboard"))
        text = board["text"]
        assert text.index("Fish 3") < text.index("Fish 2") < text.index("Fish 1")  # by score
        assert "E2eWallet03LongAddress" not in text and "E2eW" in text  # Free: short addresses

        sb.telegram.press_button(USER, "All time")
        edited = await sb.telegram.wait_for(showing(sb, "· All time"))
        assert edited["message_id"] == board["message_id"]
        sb.telegram.press_button(USER, "1. Fish 3")
        card = await sb.telegram.wait_for(showing(sb, "Recent trades"))
        assert card["message_id"] == board["message_id"] and "+$750.00" in card["text"]
        assert len(sb.telegram.chat_messages(USER, bot_only=True)) == 1  # one message, edited throughout
