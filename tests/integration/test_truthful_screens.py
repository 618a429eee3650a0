"""Screens that tell the truth (issue #16), through the real app with a recording session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import ADMIN_ID
from tests.support.harness import Harness

USER = 601


def last_text(h: Harness) -> str:
    return h.session.texts_to(USER)[-1]


async def test_a_board_with_one_ranked_wallet_does_not_score_it_0(harness):
    ts = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    await harness.app.whales.ingest([{"id": f"lone-{i}", "wallet": "LoneWhaleAddressLongEnough01", "chain": "solana",
                                      "symbol": "SOL", "side": "sell", "usd_value": "10000", "pnl_usd": "250",
                                      "ts": ts} for i in range(5)])
    await harness.send(USER, "/whales")
    text = last_text(harness)
    assert "1. " in text and "score 100" in text and "score 0" not in text


async def test_user_lookup_of_an_unknown_id_says_there_is_no_such_user(harness):
    await harness.send(ADMIN_ID, "/user 99999")
    reply = harness.session.texts_to(ADMIN_ID)[-1]
    assert reply == "No user 99999 has used this bot."
    await harness.send(ADMIN_ID, "/user @<nobody>")
    assert harness.session.texts_to(ADMIN_ID)[-1] == "No user @&lt;nobody&gt; has used this bot."
    await harness.send(ADMIN_ID, "/user")
    assert harness.session.texts_to(ADMIN_ID)[-1].startswith("Usage: /user ID")
