"""Datasets for sale (issue 17): exports hold exactly what the purchase fixed, in CSV and Parquet alike; the
price follows rows and freshness; API credit buys a dataset once per key and never below zero, however many
calls race; a download link works for 24 hours, and a tampered, expired or refunded one serves nothing."""

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from db.models_datasets import DatasetPurchase
from db.models_ledger import LedgerMovement
from handlers.user.data import DataBuy, DataMine, DataOpen
from routes.downloads import add_routes
from services.datasets import DatasetProblem, DatasetService, LinkRefused, LinkSigner, link_key, price_of
from services.ledger import Cause, LedgerService
from services.signals import EventIn, SignalIn, SignalService
from services.users import UserService
from services.whales import WhaleService
from tests.support.clock import Clock

BUYER = 77


@pytest.fixture
def clock():
    return Clock()  # 2026-11-21 12:00 UTC


@pytest.fixture
async def parts(database, clock):
    await UserService(database).seen(BUYER, username=None, first_name="Quant", language_code="en")
    ledger = LedgerService(database, clock=clock)
    service = DatasetService(database, ledger, base_price=Decimal("0.50"), link_key=link_key("123:token"),
                             public_url=lambda path: f"https://bot.example{path}", clock=clock)
    signals = SignalService(database, tz=ZoneInfo("UTC"), clock=clock)
    whales = WhaleService(database, clock=clock)
    return service, ledger, signals, whales


def signal(i: int) -> SignalIn:
    return SignalIn(id=f"s-{i}", ecosystem="crypto", symbol="SOL/USDT", side="long", entry="142.5",
                    take_profits=["150", "158"], stop_loss="136", timeframe="4h")


def trade(i: int, wallet: str, *, usd: str = "1000", pnl: str | None = "10", ts: str = "2026-11-21T11:00:00Z"):
    return {"id": f"tx-{i}", "wallet": wallet, "chain": "solana", "symbol": "SOL", "side": "sell",
            "usd_value": usd, "pnl_usd": pnl, "ts": ts}


async def read(service: DatasetService, purchase: DatasetPurchase, fmt: str) -> bytes:
    source = service.source(purchase.dataset)
    return b"".join([piece async for piece in service.export(purchase, fmt, source)])


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def parquet_rows(data: bytes) -> list[dict]:
    return pq.read_table(io.BytesIO(data)).to_pylist()


async def credit(ledger: LedgerService, amount: str) -> None:
    await ledger.top_up(BUYER, Decimal(amount), Cause("order", f"seed-{amount}"))


def test_the_price_grows_with_started_blocks_of_rows_and_with_freshness():
    base = Decimal("0.50")
    assert price_of(base, 1, "delayed") == Decimal("0.50")
    assert price_of(base, 10_000, "delayed") == Decimal("0.50")
    assert price_of(base, 10_001, "delayed") == Decimal("1.00")
    assert price_of(base, 25_000, "live") == Decimal("3.00")
    assert price_of(Decimal("0.333"), 1, "live") == Decimal("0.67")  # exact, up to a whole cent


async def test_signal_history_export_is_the_purchase_s_cut_in_csv_and_parquet(parts, clock):
    service, ledger, signals, _whales = parts
    await credit(ledger, "10")
    await signals.ingest(signal(1))
    await signals.add_event("s-1", EventIn(type="tp_hit", level=1, price="150", at="2026-11-21T11:59:30Z"))
    clock.advance(hours=1)
    await signals.ingest(signal(2))

    [live] = [q for q in await service.catalogue() if q.dataset == "signals" and q.cut == "live"]
    assert (live.rows, live.price) == (3, Decimal("1.00"))
    bought = await service.buy_with_credit(BUYER, "signals", "live", "k1")
    assert bought.charged and bought.purchase.rows == 3

    clock.advance(minutes=5)  # later rows do not enter a bought dataset
    await signals.add_event("s-2", EventIn(type="closed", price="144"))
    await signals.ingest(signal(3))

    purchase = bought.purchase
    first = await read(service, purchase, "csv")
    rows = csv_rows(first)
    assert [(r["external_id"], r["event"], r["level"], r["price"]) for r in rows] == [
        ("s-1", "signal", "0", "142.5"), ("s-1", "tp_hit", "1", "150"), ("s-2", "signal", "0", "142.5")]
    assert rows[0]["take_profits"] == "150;158" and rows[0]["stop_loss"] == "136"
    assert rows[0]["at"] == "2026-11-21T12:00:00+00:00"
    assert [r["claimed_at"] for r in rows] == ["", "2026-11-21T11:59:30+00:00", ""]  # the sender's `at`, if any
    table = parquet_rows(await read(service, purchase, "parquet"))
    assert [(r["external_id"], r["event"], r["level"], r["price"]) for r in table] == [
        ("s-1", "signal", 0, "142.5"), ("s-1", "tp_hit", 1, "150"), ("s-2", "signal", 0, "142.5")]
    assert table[0]["at"].isoformat() == "2026-11-21T12:00:00+00:00"
    assert await read(service, purchase, "csv") == first  # the same file, however often
    assert await read(service, purchase, "parquet") == await read(service, purchase, "parquet")

    clock.now = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)  # a delayed cut ends 7 days ago: s-1 and its event
    delayed = await service.quote("signals", "delayed")
    assert (delayed.rows, delayed.price) == (2, Decimal("0.50"))
    later = await service.buy_with_credit(BUYER, "signals", "delayed", "k2")
    assert [r["external_id"] for r in csv_rows(await read(service, later.purchase, "csv"))] == ["s-1", "s-1"]


async def test_whale_trades_and_rankings_exports_match_the_boards(parts, clock):
    service, ledger, _signals, whales = parts
    await credit(ledger, "10")
    batch = [trade(i, "WalletA111", pnl="50") for i in range(5)]
    batch += [trade(10 + i, "WalletB222", usd="2000", pnl="-20" if i else None) for i in range(6)]
    batch += [trade(20 + i, "WalletC333") for i in range(2)]  # too few trades to be ranked
    batch += [trade(30 + i, "WalletD444", ts="2026-11-01T10:00:00Z") for i in range(5)]  # outside 7 days
    await whales.ingest(batch)

    trades = (await service.buy_with_credit(BUYER, "whale_trades", "live", "t")).purchase
    rows = csv_rows(await read(service, trades, "csv"))
    assert len(rows) == 18 and rows[0]["wallet"] == "WalletA111" and rows[0]["usd_value"] == "1000"
    assert rows[5]["pnl_usd"] == "" and rows[6]["pnl_usd"] == "-20"
    table = parquet_rows(await read(service, trades, "parquet"))
    assert len(table) == 18 and table[5]["pnl_usd"] is None
    assert table[0]["ts"].isoformat() == "2026-11-21T11:00:00+00:00"

    for period, wallets in (("7d", ["WalletA111", "WalletB222"]), ("all", None)):
        bought = (await service.buy_with_credit(BUYER, f"whale_rankings_{period}", "live", period)).purchase
        ranking = csv_rows(await read(service, bought, "csv"))
        board = await whales.board(period, "score", limit=100)
        assert [r["wallet"] for r in ranking] == [row.address for row in board.rows]
        assert [int(r["trades"]) for r in ranking] == [row.trades for row in board.rows]
        assert [Decimal(r["realised_pnl_usd"]) for r in ranking] == [Decimal(row.pnl_cents) / 100 for row in board.rows]
        assert [float(r["score"]) for r in ranking] == pytest.approx([row.score for row in board.rows])
        if wallets:
            assert [r["wallet"] for r in ranking] == wallets
        assert [r["wallet"] for r in parquet_rows(await read(service, bought, "parquet"))] == \
            [r["wallet"] for r in ranking]


async def test_credit_buys_once_per_key_and_never_below_zero_under_concurrent_calls(parts, database):
    service, ledger, signals, _whales = parts
    await signals.ingest(signal(1))
    await credit(ledger, "1.50")  # a live cut costs $1.00: one fits, $0.50 is left

    same = await asyncio.gather(*(service.buy_with_credit(BUYER, "signals", "live", "same") for _ in range(8)))
    assert sum(r.charged for r in same) == 1 and len({r.purchase.id for r in same}) == 1
    assert await ledger.credit(BUYER) == Decimal("0.50")

    others = await asyncio.gather(*(service.buy_with_credit(BUYER, "signals", "live", f"k{i}") for i in range(6)))
    assert all(r.problem is DatasetProblem.INSUFFICIENT_CREDIT and r.purchase is None for r in others)
    assert await ledger.credit(BUYER) == Decimal("0.50")
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(DatasetPurchase)) == 1
        assert await session.scalar(select(func.count()).select_from(LedgerMovement)
                                    .where(LedgerMovement.kind == "dataset")) == 1

    await credit(ledger, "2.50")  # $3.00: exactly three more, whoever wins the race
    racing = await asyncio.gather(*(service.buy_with_credit(BUYER, "signals", "live", f"r{i}") for i in range(7)))
    assert sum(r.charged for r in racing) == 3
    assert sum(r.problem is DatasetProblem.INSUFFICIENT_CREDIT for r in racing) == 4
    assert await ledger.credit(BUYER) == Decimal("0")

    assert (await service.buy_with_credit(BUYER, "nope", "live", "x")).problem is DatasetProblem.UNKNOWN
    assert (await service.buy_with_credit(BUYER, "whale_trades", "live", "y")).problem is DatasetProblem.EMPTY


def test_a_link_is_refused_when_tampered_with_or_expired(clock):
    signer = LinkSigner(link_key("123:token"), clock=clock)
    token = signer.token(5, "csv", clock() + timedelta(hours=24))
    assert signer.verify(token) == (5, "csv")
    pid, fmt, expires, sig = token.split(".")
    other_key = LinkSigner(link_key("other"), clock=clock).token(5, "csv", clock() + timedelta(hours=24))
    flipped = sig[:-1] + ("B" if sig.endswith("A") else "A")
    for forged in (f"6.{fmt}.{expires}.{sig}", f"{pid}.parquet.{expires}.{sig}",
                   f"{pid}.{fmt}.{int(expires) + 1}.{sig}", f"{pid}.{fmt}.{expires}.{flipped}", "garbage", other_key):
        with pytest.raises(LinkRefused) as refused:
            signer.verify(forged)
        assert refused.value.status == 403
    clock.advance(hours=24, seconds=1)
    with pytest.raises(LinkRefused) as refused:
        signer.verify(token)
    assert refused.value.status == 410


async def test_the_download_route_serves_the_file_and_refuses_bad_links_with_a_problem(parts, clock):
    service, ledger, signals, _whales = parts
    await credit(ledger, "5")
    await signals.ingest(signal(1))
    purchase = (await service.buy_with_credit(BUYER, "signals", "live", "dl")).purchase
    links = await service.links(purchase)
    assert set(links) == {"csv", "parquet"} and links["csv"].startswith("https://bot.example/data/")
    receipt = await service.receipt(purchase)
    assert (receipt["id"], receipt["cut"], receipt["rows"], receipt["price_usd"]) == ("signals", "live", 1, "1.00")
    assert receipt["links_expire_at"] == "2026-11-22T12:00:00+00:00" and receipt["links"]["csv"].startswith("https://")
    app = web.Application()
    add_routes(app, service)
    async with TestClient(TestServer(app)) as client:
        path = links["csv"].removeprefix("https://bot.example")
        answer = await client.get(path)
        assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/csv")
        assert f'filename="signals-live-20261121T120000Z-{purchase.id}.csv"' in answer.headers["Content-Disposition"]
        assert csv_rows(await answer.read())[0]["external_id"] == "s-1"
        answer = await client.get(links["parquet"].removeprefix("https://bot.example"))
        assert answer.status == 200 and parquet_rows(await answer.read())[0]["external_id"] == "s-1"

        tampered = path.replace(f"/data/{purchase.id}.", f"/data/{purchase.id + 1}.")
        answer = await client.get(tampered)
        assert answer.status == 403 and answer.content_type == "application/problem+json"
        assert (await answer.json())["title"] == "Invalid download link"

        clock.advance(hours=25)
        answer = await client.get(path)
        assert answer.status == 410 and (await answer.json())["status"] == 410
        fresh = (await service.links(purchase))["csv"].removeprefix("https://bot.example")  # /data gives a new one
        assert (await client.get(fresh)).status == 200


async def test_data_in_the_bot_lists_prices_sells_through_checkout_and_shows_downloads(harness):
    h = harness
    await h.users.seen(31, username=None, first_name="Quant", language_code="en")
    await h.app.signals.ingest(signal(1))
    await h.send(31, "/data")
    listing = h.session.texts_to(31)[-1]
    assert "Signal history with events" in listing and "live, up to now: 1 row — $1.00" in listing
    assert "delayed by 7 days: no data yet" in listing and "Whale ranking, 30 days" in listing
    await h.press(31, DataOpen(d=0).pack())
    screen = h.session.of("EditMessageText")[-1]
    labels = [b.text for row in screen.reply_markup.inline_keyboard for b in row]
    assert labels[0] == "live, up to now: 1 row — $1.00" and "<code>signal_id</code>" in screen.text
    await h.press(31, DataBuy(d=0, cut="live").pack())
    [order] = await h.app.orders.for_user(31)
    assert (order.product, order.amount_cents, order.details["rows"]) == ("dataset", 100, 1)
    assert order.title == "Signal history with events · live"
    assert "Choose how to pay" in h.session.of("EditMessageText")[-1].text

    await h.press(31, DataMine().pack())
    assert "You have not bought any dataset yet" in h.session.of("EditMessageText")[-1].text
    purchase = await h.app.datasets.from_order(order)
    await h.press(31, DataMine().pack())
    mine = h.session.of("EditMessageText")[-1]
    urls = [b.url for row in mine.reply_markup.inline_keyboard for b in row if b.url]
    assert len(urls) == 2 and all(f"/data/{purchase.id}." in url for url in urls)
    assert (await h.app.datasets.from_order(order)).id == purchase.id  # a retried fulfilment buys nothing new

    token = urls[0].rsplit("/", 1)[1]
    assert (await h.app.datasets.open(token))[0].id == purchase.id
    assert await h.app.datasets.revoke_order(order.id)  # a refund: the links stop at once
    with pytest.raises(LinkRefused) as refused:
        await h.app.datasets.open(token)
    assert refused.value.status == 410
    await h.press(31, DataMine().pack())
    assert "You have not bought any dataset yet" in h.session.of("EditMessageText")[-1].text
