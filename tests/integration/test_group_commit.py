"""Group commit (issue 13, item 4): signals and whale trades that arrive together are written in one
transaction, yet each sender gets its own answer, the hash chain stays in order, daily caps hold across
the batch, and one bad item never fails its neighbours."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select

from db.models_signals import Outbox, Signal
from db.models_whales import WhaleTotal, WhaleTrade
from services.group_commit import GroupCommit
from services.signals import SignalIn
from services.whales import WhaleService
from tests.integration.test_signals import SIGNAL, h, users  # noqa: F401 (fixture)
from tests.integration.test_whales import trade

FREE_USER, PAID_USER = 8101, 8102


def signal(n: int) -> SignalIn:
    return SignalIn.model_validate({**SIGNAL, "id": f"batch-{n}"})


async def test_concurrent_signals_share_a_transaction_keep_the_chain_and_the_daily_cap(h):  # noqa: F811
    await users(h, FREE_USER)
    await users(h, PAID_USER, plan="basic")
    writes = Counter()
    write = h.app.signals._ingest

    async def counting(items):
        writes[len(items)] += 1
        return await write(items)

    h.app.signals._batches._write = counting
    results = await asyncio.gather(*(h.app.signals.ingest(signal(n)) for n in range(15)))

    assert all(r.created for r in results) and len({r.signal_id for r in results}) == 15
    assert max(writes) > 1, f"nothing was batched: {writes}"
    _, check = await h.app.signals.track_record()
    assert check.ok and check.length == 15
    async with h.app.db.session() as session:
        rows = list(await session.scalars(select(Signal).order_by(Signal.id)))
        per_user = Counter(await session.scalars(select(Outbox.user_id).where(Outbox.kind == "signal")))
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]  # ids follow the chain
    assert per_user[FREE_USER] == 10  # Free: 10 a day, counted across the batch
    assert per_user[PAID_USER] == 15


async def test_the_same_signal_sent_twice_at_once_is_stored_once(h):  # noqa: F811
    first, second = await asyncio.gather(h.app.signals.ingest(signal(1)), h.app.signals.ingest(signal(1)))
    assert first.created and not second.created and first.signal_id == second.signal_id
    async with h.app.db.session() as session:
        assert len(list(await session.scalars(select(Signal.id)))) == 1


async def test_one_bad_item_fails_alone():
    batches: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        batches.append(items)
        if 13 in items:
            raise ValueError("13 is refused")
        return [i * 2 for i in items]

    group = GroupCommit(write, limit=100, name="test")
    results = await asyncio.gather(*(group.submit(i) for i in (11, 12, 13, 14)), return_exceptions=True)

    assert results[:2] == [22, 24] and results[3] == 28
    assert isinstance(results[2], ValueError)
    assert batches[0] == [11, 12, 13, 14]  # tried together first, then each alone


async def test_a_batch_is_capped_and_the_rest_follow():
    batches: list[int] = []

    async def write(items: list[int]) -> list[int]:
        batches.append(len(items))
        await asyncio.sleep(0)
        return items

    group = GroupCommit(write, limit=3, name="test")
    assert await asyncio.gather(*(group.submit(i) for i in range(7))) == list(range(7))
    assert batches == [3, 3, 1]


async def test_a_caller_that_gives_up_does_not_break_the_batch():
    release = asyncio.Event()

    async def write(items: list[int]) -> list[int]:
        await release.wait()
        return items

    group = GroupCommit(write, limit=10, name="test")
    waiting = asyncio.ensure_future(group.submit(1))
    kept = asyncio.ensure_future(group.submit(2))
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    assert await kept == 2
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_whale_posts_at_once_store_each_trade_once_and_count_it_once(database):
    whales = WhaleService(database)
    posts = [[trade(i), trade(i + 1)] for i in range(0, 10, 2)] + [[trade(0), trade(9), trade(10)]]
    reports = await asyncio.gather(*(whales.ingest(post) for post in posts))

    assert [len(r.stored) for r in reports] == [2, 2, 2, 2, 2, 1]
    assert reports[-1].stored == ["tx-10"] and sorted(reports[-1].duplicates) == ["tx-0", "tx-9"]
    async with database.session() as session:
        assert len(list(await session.scalars(select(WhaleTrade.id)))) == 11
        [total] = await session.scalars(select(WhaleTotal))
    assert total.trades == 11  # the rollup counts each stored trade once
