"""Whale leaderboards: ingest (validation, idempotency, one transaction), rankings, follows, CSV import."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from db.models_whales import WhaleAlert, WhaleTrade, WhaleWallet
from services.users import UserService
from services.whales import Invalid, WhaleService
from tests.support.core import Clock


def trade(i, wallet="WalletAAAA1111", *, usd="1000", pnl="10", side="sell", ts=None, chain="solana", **extra):
    item = {"id": f"tx-{i}", "wallet": wallet, "chain": chain, "symbol": "SOL", "side": side,
            "usd_value": usd, "pnl_usd": pnl, "ts": ts or "2026-11-21T11:00:00Z"}
    item.update(extra)
    return item


@pytest.fixture
def clock():
    return Clock()  # 2026-11-21 12:00 UTC


@pytest.fixture
def whales(database, clock):
    return WhaleService(database, clock=clock)


async def count(database, model) -> int:
    async with database.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_ingest_stores_batch_and_is_idempotent(database, whales):
    batch = [trade(i, label="Big fish") for i in range(3)]
    report = await whales.ingest(batch)
    assert report.stored == ["tx-0", "tx-1", "tx-2"] and not report.rejected
    again = await whales.ingest([*batch, trade(3)])
    assert again.stored == ["tx-3"] and sorted(again.duplicates) == ["tx-0", "tx-1", "tx-2"]
    assert await count(database, WhaleTrade) == 4
    assert await count(database, WhaleWallet) == 1
    async with database.session() as session:
        stored = await session.scalar(select(WhaleTrade).where(WhaleTrade.external_id == "tx-1"))
        wallet = await session.get(WhaleWallet, stored.wallet_id)
    assert stored.usd_value == Decimal("1000") and stored.pnl_cents == 1000 and wallet.label == "Big fish"
    assert wallet.verified is False and wallet.twitter is None  # ingest never sets them


async def test_malformed_items_rejected_with_reasons_siblings_kept(database, whales):
    batch = [
        trade(0),
        trade(1, usd="12,5"),
        trade(2, side="hold"),
        trade(3, ts="2026-11-21T11:00:00"),  # no zone
        trade(4, ts="2027-01-01T00:00:00Z"),  # future
        {"id": "tx-5", "wallet": "x"},
        "not an object",
        trade(7, usd="-5"),
        trade(8, pnl=1.5),  # a float, not a decimal string
        trade(9, chain="Not A Chain!"),
        trade(0),  # the same id twice in one batch
    ]
    report = await whales.ingest(batch)
    assert report.stored == ["tx-0"] and report.duplicates == ["tx-0"]
    reasons = {r.index: r.field for r in report.rejected}
    assert reasons == {1: "usd_value", 2: "side", 3: "ts", 4: "ts", 5: "chain", 6: "item", 7: "usd_value",
                       8: "pnl_usd", 9: "chain"}
    assert all(r.reason for r in report.rejected)
    assert await count(database, WhaleTrade) == 1


async def seed_board(whales, clock):
    """steady: 10 trades, +100 each; lucky: one trade +1,000,000; loser: 6 trades, -50 each;
    whale: 5 huge trades, small profit; old: profitable, but 40 days ago."""
    now = clock()
    items = []

    def at(days):
        return (now - timedelta(days=days)).isoformat()

    for i in range(10):
        items.append(trade(f"s{i}", "Steady111111", usd="1000", pnl="100", ts=at(1)))
    items.append(trade("l0", "Lucky1111111", usd="1000", pnl="1000000", ts=at(1)))
    for i in range(6):
        items.append(trade(f"x{i}", "Loser1111111", usd="1000", pnl="-50", ts=at(2)))
    for i in range(5):
        items.append(trade(f"w{i}", "Whale1111111", usd="5000000", pnl="10" if i else "-10", ts=at(3)))
    for i in range(5):
        items.append(trade(f"o{i}", "Oldie1111111", usd="1000", pnl="500", ts=at(40)))
    report = await whales.ingest(items)
    assert not report.rejected


async def test_rankings_minimum_trade_count_and_metrics(whales, clock):
    await seed_board(whales, clock)
    pnl = await whales.board("7d", "pnl")
    names = [r.address for r in pnl.rows]
    assert "Lucky1111111" not in names  # one lucky trade does not get on the board
    assert names == ["Steady111111", "Whale1111111", "Loser1111111"] and pnl.total == 3
    assert pnl.rows[0].pnl_cents == 100_000 and pnl.rows[0].rank == 1
    assert (await whales.board("7d", "volume")).rows[0].address == "Whale1111111"
    winrate = (await whales.board("7d", "winrate")).rows
    assert [r.address for r in winrate] == ["Steady111111", "Whale1111111", "Loser1111111"]
    assert winrate[0].win_rate == 1.0 and winrate[1].win_rate == pytest.approx(0.8)
    roi = (await whales.board("7d", "roi")).rows
    assert roi[0].address == "Steady111111" and roi[0].roi == pytest.approx(100 / 900)
    score = (await whales.board("7d", "score")).rows
    assert score[0].address == "Steady111111" and score[-1].address == "Loser1111111"
    assert 0 <= score[-1].score < score[0].score <= 100
    everything = await whales.board("all", "pnl")
    assert [r.address for r in everything.rows][:2] == ["Oldie1111111", "Steady111111"]
    assert (await whales.board("30d", "pnl")).total == 3
    page2 = await whales.board("all", "pnl", offset=2, limit=2)
    assert [r.rank for r in page2.rows] == [3, 4] and page2.total == 4


async def test_follow_limits_and_unknown_wallet(database, whales):
    await UserService(database).seen(5, username=None, first_name="U", language_code="en")
    await whales.ingest([trade(i, f"Wallet{i:08d}") for i in range(3)])
    ids = [1, 2, 3]  # wallets in order of first appearance
    assert (await whales.follow(5, ids[0], 1_000_000, limit=0)).problem == "not_included"
    assert (await whales.follow(5, ids[0], 1_000_000, limit=2)).ok
    assert (await whales.follow(5, ids[1], 1_000_000, limit=2)).ok
    refused = await whales.follow(5, ids[2], 1_000_000, limit=2)
    assert (refused.ok, refused.problem, refused.count, refused.limit) == (False, "limit", 2, 2)
    assert (await whales.follow(5, ids[1], 5_000_000, limit=2)).ok  # changing a threshold is not a new follow
    assert (await whales.follow(5, 999_999, 1_000_000, limit=2)).problem == "unknown_wallet"
    assert await whales.unfollow(5, ids[0])
    assert (await whales.follow(5, ids[2], 1_000_000, limit=2)).ok


async def test_alerts_queued_for_followed_wallet_above_threshold(database, whales, clock):
    await UserService(database).seen(5, username=None, first_name="U", language_code="en")
    await whales.ingest([trade(0, "Followed1111")])
    wallet_id = 1  # the only wallet
    assert (await whales.follow(5, wallet_id, 50_000 * 100, limit=5)).ok
    report = await whales.ingest([trade(1, "Followed1111", usd="10000"), trade(2, "Followed1111", usd="60000"),
                                  trade(3, "Followed1111", usd="70000", ts="2026-11-21T09:00:00Z")])  # backfill
    assert report.alerts_queued == 1
    await whales.ingest([trade(2, "Followed1111", usd="60000")])  # re-sent: no second alert
    assert await count(database, WhaleAlert) == 1


async def test_csv_import_wallets_and_trades(database, whales):
    wallets = ("address,chain,label,twitter,verified\n"
               "WalletCsv0001,solana,Alpha,@alpha_fund,yes\n"
               "bad address!,solana,,,\n"
               "WalletCsv0002,ethereum,,not a handle!,\n"
               "0xABCDEF0123,ethereum,Beta,,no\n")
    report = await whales.import_csv(wallets)
    assert report.kind == "wallets" and report.accepted == 2
    assert [(r.index, r.field) for r in report.rejected] == [(3, "wallet"), (4, "twitter")]
    async with database.session() as session:
        alpha = await session.scalar(select(WhaleWallet).where(WhaleWallet.address == "WalletCsv0001"))
        beta = await session.scalar(select(WhaleWallet).where(WhaleWallet.chain == "ethereum"))
    assert (alpha.verified, alpha.twitter, alpha.label) == (True, "alpha_fund", "Alpha")
    assert beta.address == "0xabcdef0123"
    trades = ("id,wallet,chain,symbol,side,usd_value,pnl_usd,ts\n"
              "c1,WalletCsv0001,solana,SOL,buy,5000,,2026-11-20T10:00:00Z\n"
              "c2,WalletCsv0001,solana,SOL,sell,5500,500,2026-11-20T11:00:00Z\n"
              "c3,WalletCsv0001,solana,SOL,sell,abc,,2026-11-20T11:00:00Z\n")
    report = await whales.import_csv(trades)
    assert (report.kind, report.accepted, [(r.index, r.field) for r in report.rejected]) == (
        "trades", 2, [(4, "usd_value")])
    assert (await whales.import_csv(trades)).duplicates == 2
    with pytest.raises(Invalid):
        await whales.import_csv("foo,bar\n1,2\n")


async def test_ranking_cache_is_kept_then_refreshed(database, clock):
    whales = WhaleService(database, clock=clock, ranking_ttl=30)
    await whales.ingest([trade(f"a{i}", "Early1111111") for i in range(5)])
    assert [r.address for r in (await whales.board("7d", "pnl")).rows] == ["Early1111111"]
    await whales.ingest([trade(f"b{i}", "Later1111111", pnl="999") for i in range(5)])
    assert (await whales.board("7d", "pnl")).total == 1  # served from the ranking computed 0 s ago
    assert await whales.refresh_rankings() == 1  # the scheduler job: only periods someone looked at
    assert [r.address for r in (await whales.board("7d", "pnl")).rows] == ["Later1111111", "Early1111111"]
    await whales.ingest([trade(f"c{i}", "Third1111111", pnl="5000") for i in range(5)])
    clock.advance(seconds=31)  # past the TTL: recomputed on the next view
    assert (await whales.board("7d", "pnl")).rows[0].address == "Third1111111"
