"""A signed signal over real HTTP to the running app reaches a subscriber's chat and the ecosystem's channel
in the sandbox; its event arrives as a reply to each copy."""

import json

import httpx

from processing.ingest_auth import signed_headers
from sandbox.runner import SANDBOX_SIGNALS_CHANNEL_ID, running_sandbox

SECRET = "e2e-signal-secret"
SUBSCRIBER = 611


def copies(sb, chat_id, fragment):
    return [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]


async def test_signed_signal_reaches_subscriber_and_channel(tmp_path):
    async with running_sandbox(tmp_path, signal_webhook_secret=SECRET, stars_enabled=False) as sb:
        sb.telegram.add_user(SUBSCRIBER, "Sam")
        sb.telegram.send_text(SUBSCRIBER, "/start")
        await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Sam"))
        await sb.app.subscriptions.add_time(SUBSCRIBER, "pro", 30, source="grant")
        base = f"http://127.0.0.1:{sb.app.port}"
        signal = {"id": "e2e-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long", "entry": "142.5",
                  "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}
        async with httpx.AsyncClient() as client:
            body = json.dumps(signal).encode()
            refused = await client.post(f"{base}/api/signals", content=body,
                                        headers=signed_headers("wrong", body))
            assert refused.status_code == 401
            answer = await client.post(f"{base}/api/signals", content=body, headers=signed_headers(SECRET, body))
            assert answer.status_code == 202 and answer.json()["stored"] is True
            [mine] = await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Entry: 142.5"))
            [posted] = await sb.telegram.wait_for(lambda: copies(sb, SANDBOX_SIGNALS_CHANNEL_ID, "Entry: 142.5"))
            assert "Take-Profit Targets:\n1) 150\n2) 158" in mine["text"] and "Stop: 136" in posted["text"]

            again = await client.post(f"{base}/api/signals", content=body, headers=signed_headers(SECRET, body))
            assert again.status_code == 200 and again.json()["duplicate"] is True

            event = json.dumps({"type": "tp_hit", "level": 1, "price": "150"}).encode()
            answer = await client.post(f"{base}/api/signals/e2e-1/events", content=event,
                                       headers=signed_headers(SECRET, event))
            assert answer.status_code == 202
            [reply] = await sb.telegram.wait_for(lambda: copies(sb, SUBSCRIBER, "Take-Profit target 1"))
            [channel_reply] = await sb.telegram.wait_for(
                lambda: copies(sb, SANDBOX_SIGNALS_CHANNEL_ID, "Take-Profit target 1"))
        assert reply["reply_to_message"]["message_id"] == mine["message_id"]
        assert channel_reply["reply_to_message"]["message_id"] == posted["message_id"]
        assert len(copies(sb, SUBSCRIBER, "Entry: 142.5")) == 1
