"""Small promises of issue #16 through the real app, in English: one of a thing is singular ("1 wallet",
"1 trade", "1 order", never "1 wallets"), and /terms shows the terms, never the file they are kept in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from handlers.user.checkout import PayWith
from handlers.user.plans import PlanBuy
from handlers.user.whales import WBoard, WCard, WFollow
from tests.conftest import ADMIN_ID
from tests.support.harness import Harness

PAID = 801
WALLET = "SingularWhaleAddressLongEnough01xyz"
#: A file path as a buyer must never see it: "content/terms.en.html", "/srv/bot/content/terms.html".
FILE_PATH = re.compile(r"[\w.-]*/[\w./-]*\.(html|md|txt|py)\b|\bcontent/")
#: A count of one followed by a plural noun.
ONE_PLURAL = re.compile(r"(?<![\d,.])1 (wallets|trades|orders|signals|days|subscribers|keys)\b")


def texts(h: Harness) -> list[str]:
    return [m.text for name in ("SendMessage", "EditMessageText") for m in h.session.of(name)]


async def test_one_of_a_thing_is_singular_in_english(harness):
    now = datetime.now(UTC)
    trades = [{"id": f"one-{i}", "wallet": WALLET, "chain": "solana", "symbol": "SOL", "side": "sell",
               "usd_value": "20000", "pnl_usd": "150", "ts": (now - timedelta(days=1 if i == 0 else 20)).isoformat()}
              for i in range(5)]  # 1 trade this week, 5 this month: ranked on the 30-day board only
    await harness.app.whales.ingest(trades)
    await harness.users.seen(PAID, username=None, first_name="Pat", language_code="en")
    await harness.app.subscriptions.add_time(PAID, "pro", 30, source="grant")

    await harness.send(PAID, "/whales")
    await harness.press(PAID, WBoard(p="30d", m="score").pack())
    board = harness.session.of("EditMessageText")[-1].text
    assert "1 wallet ranked (at least 5 trades in the period)." in board and "· 5 trades" in board, board
    wallet_id = (await harness.app.whales.board("30d", "score", limit=10)).rows[0].wallet_id
    await harness.press(PAID, WCard(w=wallet_id, p="30d", m="score").pack())
    card = harness.session.of("EditMessageText")[-1].text
    assert re.search(r"<b>7 days</b>: .* · 1 trade$", card, re.M) and "· 5 trades" in card, card
    await harness.press(PAID, WFollow(w=wallet_id, t=0).pack())

    await harness.press(PAID, PlanBuy(plan="basic", period="month").pack())  # an order, left open
    await harness.users.seen(ADMIN_ID, username="boss", first_name="Boss", language_code="en")
    await harness.send(ADMIN_ID, f"/user {PAID}")
    user_card = harness.session.of("SendMessage")[-1].text
    assert "Follows 1 wallet: " in user_card and re.search(r"· \d+ orders?\b", user_card), user_card

    shown = texts(harness)
    assert not [t for t in shown if ONE_PLURAL.search(t)], [t for t in shown if ONE_PLURAL.search(t)]


async def test_terms_show_no_file_path(harness):
    """/terms, and the terms asked for before a first purchase, in English and in Russian."""
    for user_id, language, heading in ((811, "en", "Terms of service"), (812, "ru", "Условия использования")):
        await harness.users.seen(user_id, username=None, first_name="T", language_code=language)
        await harness.send(harness.user(user_id, language_code=language), "/terms")
        terms = harness.session.of("SendMessage")[-1].text
        assert heading in terms and "/paysupport" in terms, terms
        await harness.press(harness.user(user_id, language_code=language),
                            PlanBuy(plan="basic", period="month").pack())
        order = (await harness.app.orders.for_user(user_id))[-1]
        await harness.press(harness.user(user_id, language_code=language),
                            PayWith(order_id=order.id, method="stars").pack())
        asked = harness.session.of("EditMessageText")[-1].text
        assert heading in asked, asked
        for text in (terms, asked):
            assert not FILE_PATH.search(text), FILE_PATH.search(text)
    assert FILE_PATH.search("<i>The operator edits this text in content/terms.en.html.</i>")  # the check bites
