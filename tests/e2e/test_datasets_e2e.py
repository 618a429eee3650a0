"""Datasets in the sandbox (issue 17): a person opens "Datasets" from the main menu, buys the signal history with
Telegram Stars on the stand-in, and downloads it through the link the bot sends (CSV and Parquet, the same file
every time, later signals not in it); a tampered link and an expired one serve nothing (403 / 410 problems)."""

import csv
import io
import re
import socket
from datetime import timedelta

import aiohttp
import pyarrow.parquet as pq
import pytest

from sandbox.runner import running_sandbox
from services.orders import Status
from services.signals import EventIn, SignalIn
from tests.support.checkout import pay_first_order_with_stars

BUYER = 760


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def sb(tmp_path):
    port = free_port()  # links are made absolute with PUBLIC_BASE_URL: the app's own address here
    async with running_sandbox(tmp_path, web_port=port, public_base_url=f"http://127.0.0.1:{port}") as sandbox:
        yield sandbox


def newest(sb, fragment):
    def check():
        found = [m for m in sb.telegram.chat_messages(BUYER, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


def signal(i: int) -> SignalIn:
    return SignalIn(id=f"e2e-{i}", ecosystem="crypto", symbol="BTC/USDT", side="long", entry="60000",
                    take_profits=["62000"], stop_loss="59000")


async def test_a_dataset_bought_with_stars_is_downloaded_through_its_link_and_bad_links_are_refused(sb):
    await sb.app.signals.ingest(signal(1))
    await sb.app.signals.add_event("e2e-1", EventIn(type="tp_hit", level=1, price="62000"))

    sb.telegram.add_user(BUYER, "Quant")
    sb.telegram.send_text(BUYER, "/start")
    await sb.telegram.wait_for(newest(sb, "Choose what you need"))
    sb.telegram.press_button(BUYER, "📦 Datasets")
    listing = await sb.telegram.wait_for(newest(sb, "Datasets"))
    assert "live, up to now: 2 rows — $1.00" in listing["text"]
    sb.telegram.press_button(BUYER, "📦 Signal history with events")
    await sb.telegram.wait_for(newest(sb, "Choose a cut"))
    sb.telegram.press_button(BUYER, "live, up to now: 2 rows — $1.00")
    await pay_first_order_with_stars(sb, BUYER)

    ready = await sb.telegram.wait_for(newest(sb, "Your dataset is ready"), timeout=10)
    [order] = await sb.app.orders.for_user(BUYER)
    assert (order.product, order.amount_cents, order.provider) == ("dataset", 100, "stars")
    await sb.telegram.wait_for(lambda: _fulfilled(sb, order.id))
    links = dict(re.findall(r"(CSV|Parquet): (http://\S+)", ready["text"]))
    button = ready["reply_markup"]["inline_keyboard"][0][0]
    assert button["text"] == "⬇️ Download CSV" and button["url"] == links["CSV"]

    await sb.app.signals.ingest(signal(2))  # after the purchase: not in the file
    async with aiohttp.ClientSession() as http:
        async with http.get(links["CSV"]) as answer:
            assert answer.status == 200 and "attachment" in answer.headers["Content-Disposition"]
            first = await answer.read()
        rows = list(csv.DictReader(io.StringIO(first.decode())))
        assert [(r["external_id"], r["event"], r["price"]) for r in rows] == [
            ("e2e-1", "signal", "60000"), ("e2e-1", "tp_hit", "62000")]
        async with http.get(links["CSV"]) as again:
            assert await again.read() == first  # the same file every time
        async with http.get(links["Parquet"]) as answer:
            table = pq.read_table(io.BytesIO(await answer.read())).to_pylist()
        assert [r["event"] for r in table] == ["signal", "tp_hit"]

        token = links["CSV"].rsplit("/", 1)[1]
        purchase_id, fmt, expires, signature = token.split(".")
        tampered = links["CSV"].replace(token, f"{purchase_id}.{fmt}.{int(expires) + 86_400}.{signature}")
        async with http.get(tampered) as answer:
            assert answer.status == 403 and answer.content_type == "application/problem+json"
            assert (await answer.json())["title"] == "Invalid download link"
            assert b"e2e-1" not in await answer.read()
        datasets = sb.app.datasets
        expired = datasets.signer.token(int(purchase_id), "csv", datasets.clock() - timedelta(seconds=1))
        async with http.get(links["CSV"].replace(token, expired)) as answer:
            assert answer.status == 410 and (await answer.json())["title"] == "Download link expired"


async def _fulfilled(sb, order_id: int) -> bool:
    return (await sb.app.orders.get(order_id)).status == Status.FULFILLED
