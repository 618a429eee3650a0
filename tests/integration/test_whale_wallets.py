"""Whales (issue #16): "My wallets" lists every followed wallet (also one that left the leaderboard) with an
unfollow button, the limit refusal leads there, and whale rows, cards and alerts link the block explorer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from db.models_whales import WhaleTrade, WhaleWallet
from handlers.user.whales import WBoard, WCard, WFollow, WMine, WMineUnfollow
from presentation.whales import alert_text, explorer_url
from tests.support.harness import Harness

PAID = 602
SOL = "So1WhaleAddressLongEnough0001xyz"
ETH = "0x" + "ab" * 20


def trades(address: str, chain: str, count: int, prefix: str) -> list[dict]:
    ts = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    return [{"id": f"{prefix}-{i}", "wallet": address, "chain": chain, "symbol": "SOL", "side": "sell",
             "usd_value": "20000", "pnl_usd": "500", "ts": ts} for i in range(count)]


async def paid_user(h: Harness, user_id: int = PAID) -> None:
    await h.users.seen(user_id, username=None, first_name="P", language_code="en")
    await h.app.subscriptions.add_time(user_id, "basic", 30, source="grant")


def buttons(method) -> dict[str, str]:
    return {b.text: b.callback_data for row in method.reply_markup.inline_keyboard for b in row if b.callback_data}


def test_explorer_urls_follow_the_chain():
    assert explorer_url("solana", SOL) == f"https://solscan.io/account/{SOL}"
    assert explorer_url("ethereum", ETH) == f"https://etherscan.io/address/{ETH}"
    assert explorer_url("base", ETH) == f"https://basescan.org/address/{ETH}"
    assert explorer_url("bsc", ETH) == f"https://bscscan.com/address/{ETH}"
    assert explorer_url("madeupchain", ETH) is None


def test_alerts_name_the_chain_and_link_the_explorer(i18n_context):
    sol = WhaleWallet(id=1, address=SOL, chain="solana", label="Big <fish>", verified=False)
    odd = WhaleWallet(id=2, address=ETH, chain="madeupchain", label=None, verified=False)
    now = datetime.now(UTC)
    items = [(WhaleTrade(wallet_id=1, symbol="BONK", side="buy", usd_cents=6_000_000, ts=now, pnl_cents=None), sol),
             (WhaleTrade(wallet_id=2, symbol="PEPE", side="sell", usd_cents=7_000_000, ts=now, pnl_cents=None), odd)]
    text = alert_text(items, ZoneInfo("UTC"))
    assert f'<a href="https://solscan.io/account/{SOL}">solana ↗</a>' in text
    assert "<b>Big &lt;fish&gt; · </b>" in text
    assert "madeupchain" in text and "madeupchain ↗" not in text  # no explorer known: the name only


async def test_paid_board_and_card_link_the_explorer_free_does_not(harness):
    await harness.app.whales.ingest(trades(SOL, "solana", 5, "s") + trades(ETH, "base", 5, "e"))
    await harness.users.seen(601, username=None, first_name="F", language_code="en")
    await harness.send(601, "/whales")
    assert "solscan.io" not in harness.session.of("SendMessage")[-1].text  # Free: short addresses, no links
    await paid_user(harness)
    await harness.send(PAID, "/whales")
    board = harness.session.of("SendMessage")[-1]
    assert f'href="https://solscan.io/account/{SOL}"' in board.text
    assert f'href="https://basescan.org/address/{ETH}"' in board.text
    wallet_id = next(r.wallet_id for r in (await harness.app.whales.board("7d", "score")).rows if r.address == ETH)
    await harness.press(PAID, WCard(w=wallet_id, p="7d", m="score").pack())
    assert f'<a href="https://basescan.org/address/{ETH}">base ↗</a>' in harness.session.of("EditMessageText")[-1].text


async def test_my_wallets_lists_and_unfollows_a_wallet_that_left_the_board(harness):
    whales = harness.app.whales
    await whales.ingest(trades(SOL, "solana", 5, "s"))
    await whales.ingest(trades(ETH, "ethereum", 1, "e"))  # one trade: never ranked, still followable
    await paid_user(harness)
    board = await whales.board("all", "score", limit=100)
    assert [r.address for r in board.rows] == [SOL]
    eth_id = next(w.id for w in await _wallets(harness) if w.address == ETH)
    assert (await whales.follow(PAID, eth_id, 10_000 * 100, limit=5)).ok

    await harness.send(PAID, "/whales")
    assert WMine().pack() in buttons(harness.session.of("SendMessage")[-1]).values()
    await harness.press(PAID, WMine().pack())
    mine = harness.session.of("EditMessageText")[-1]
    assert "My wallets" in mine.text and ETH in mine.text and "alerts from $10,000" in mine.text
    assert buttons(mine)[f"🔕 {ETH[:4]}…{ETH[-4:]}"] == WMineUnfollow(w=eth_id).pack()

    await harness.press(PAID, WMineUnfollow(w=eth_id).pack())
    assert await whales.follow_of(PAID, eth_id) is None
    after = harness.session.of("EditMessageText")[-1]
    assert "My wallets" in after.text and ETH not in after.text and "don't follow any wallet" in after.text
    assert harness.session.of("AnswerCallbackQuery")[-1].text == "Unfollowed."


async def test_the_limit_refusal_shows_the_wallets_to_unfollow(harness):
    whales = harness.app.whales
    addresses = [f"Wallet{k:02d}AddressLongEnough{k:02d}xyz" for k in range(6)]
    for k, address in enumerate(addresses):
        await whales.ingest(trades(address, "solana", 1, f"w{k}"))  # off the board
    await paid_user(harness)  # Basic: 5 wallets
    ids = {w.address: w.id for w in await _wallets(harness)}
    for address in addresses[:5]:
        assert (await whales.follow(PAID, ids[address], 10_000 * 100, limit=5)).ok
    await harness.press(PAID, WFollow(w=ids[addresses[5]], t=0).pack())
    answer = harness.session.of("AnswerCallbackQuery")[-1]
    assert answer.show_alert and "5 of 5" in answer.text
    shown = harness.session.of("EditMessageText")[-1]
    assert "My wallets" in shown.text and all(a in shown.text for a in addresses[:5])
    assert WMineUnfollow(w=ids[addresses[0]]).pack() in buttons(shown).values()
    assert WBoard(p="7d", m="score").pack() in buttons(shown).values()


async def _wallets(h: Harness) -> list[WhaleWallet]:
    async with h.db.session() as session:
        return list(await session.scalars(select(WhaleWallet)))
