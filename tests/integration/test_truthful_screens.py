"""Screens that tell the truth (issue #16), through the real app with a recording session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
