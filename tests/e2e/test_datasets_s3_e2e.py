"""Datasets delivered from an S3-compatible store (issue 17): with DATASETS_S3_* set (the sandbox's S3 stand-in,
which checks Signature V4 and expiry as S3 does), a dataset bought with Telegram Stars and one bought with API
credit come with presigned URLs that download the same bytes as the export, uploaded once; the URLs are
refused (403 AccessDenied, "Request has expired") once their 24 hours are over and when tampered with, and a
refund deletes the objects, so the refunded buyer's URL serves nothing. A store that refuses the upload leaves an
API purchase bought (503, Retry-After) and the same idempotency key then gives its links, charged once."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import aiohttp
import pyarrow.parquet as pq
import pytest

from sandbox.runner import SANDBOX_S3_BUCKET, running_sandbox
from services.ledger import Cause
from services.orders import Status
from services.signals import EventIn, SignalIn
from tests.support.checkout import pay_first_order_with_stars

BUYER, DEV, ADMIN = 761, 762, 9001


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, s3=True, admin_ids=[ADMIN]) as sandbox:
        yield sandbox


def newest(sb, fragment, chat_id=BUYER):
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


def signal(i: int) -> SignalIn:
    return SignalIn(id=f"s3-{i}", ecosystem="crypto", symbol="BTC/USDT", side="long", entry="60000",
                    take_profits=["62000"], stop_loss="59000")


def with_button(sb, label, chat_id=BUYER, after=0):
    """The newest message (past the first `after` of the chat) carrying a button labelled `label`."""
    def check():
        found = [m for m in sb.telegram.chat_messages(chat_id, bot_only=True)[after:]
                 if label in str(m.get("reply_markup", ""))]
        return found[-1] if found else None
    return check


async def exported(sb, purchase_id: int, fmt: str) -> bytes:
    datasets = sb.app.datasets
    purchase = await datasets.purchase(purchase_id)
    source = datasets.source(purchase.dataset)
    return b"".join([piece async for piece in datasets.export(purchase, fmt, source)])


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes, aiohttp.typedefs.LooseHeaders]:
    async with http.get(url) as answer:
        return answer.status, await answer.read(), answer.headers


async def test_a_dataset_bought_with_stars_downloads_from_the_store_until_it_expires_or_is_refunded(sb):
    await sb.app.signals.ingest(signal(1))
    await sb.app.signals.add_event("s3-1", EventIn(type="tp_hit", level=1, price="62000"))
    sb.telegram.add_user(BUYER, "Quant")
    sb.telegram.send_text(BUYER, "/data")
    await sb.telegram.wait_for(newest(sb, "Datasets"))
    sb.telegram.press_button(BUYER, "📦 Signal history with events")
    await sb.telegram.wait_for(newest(sb, "Choose a cut"))
    sb.telegram.press_button(BUYER, "live, up to now: 2 rows — $1.00")
    await pay_first_order_with_stars(sb, BUYER)

    ready = await sb.telegram.wait_for(newest(sb, "Your dataset is ready"), timeout=10)
    [order] = await sb.app.orders.for_user(BUYER)
    links = dict(re.findall(r"(CSV|Parquet): (http://\S+)", ready["text"]))
    assert ready["reply_markup"]["inline_keyboard"][0][0]["url"] == links["CSV"]
    for url in links.values():  # the store's presigned URLs, not our /data link
        parts = urlsplit(url)
        assert url.startswith(f"{sb.s3.base_url}/{SANDBOX_S3_BUCKET}/datasets/") and "X-Amz-Signature=" in parts.query
        assert "X-Amz-Expires=86400" in parts.query
    purchase_id = int(re.search(r"-(\d+)\.csv", urlsplit(links["CSV"]).path).group(1))

    async with aiohttp.ClientSession() as http:
        status, body, headers = await get(http, links["CSV"])
        assert status == 200 and "attachment" in headers["Content-Disposition"]
        assert body == await exported(sb, purchase_id, "csv")
        assert [(r["external_id"], r["event"]) for r in csv.DictReader(io.StringIO(body.decode()))] == [
            ("s3-1", "signal"), ("s3-1", "tp_hit")]
        status, parquet, _ = await get(http, links["Parquet"])
        assert status == 200 and parquet == await exported(sb, purchase_id, "parquet")
        assert [r["event"] for r in pq.read_table(io.BytesIO(parquet)).to_pylist()] == ["signal", "tp_hit"]

        # "My datasets" gives fresh URLs to the same objects: nothing is uploaded again
        seen = len(sb.telegram.chat_messages(BUYER, bot_only=True))
        sb.telegram.send_text(BUYER, "/data")
        await sb.telegram.wait_for(with_button(sb, "📂 My datasets", after=seen))
        sb.telegram.press_button(BUYER, "📂 My datasets")
        mine = await sb.telegram.wait_for(newest(sb, "Your datasets"))
        fresh = mine["reply_markup"]["inline_keyboard"][0][0]["url"]
        assert fresh.startswith(f"{sb.s3.base_url}/{SANDBOX_S3_BUCKET}/datasets/")
        assert (await get(http, fresh))[1] == body
        key = urlsplit(links["CSV"]).path.split(f"/{SANDBOX_S3_BUCKET}/", 1)[1]
        assert sb.s3.puts(key) == 1

        tampered = links["CSV"].replace("X-Amz-Expires=86400", "X-Amz-Expires=604800")
        status, error, _ = await get(http, tampered)
        assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in error and b"s3-1" not in error

        sb.s3.advance(timedelta(hours=24, seconds=1))
        status, error, _ = await get(http, links["CSV"])
        assert status == 403 and b"<Code>AccessDenied</Code><Message>Request has expired" in error
        sb.s3.advance(-timedelta(hours=24, seconds=1))
        assert (await get(http, fresh))[0] == 200

        sb.telegram.add_user(ADMIN, "Admin")
        sb.telegram.send_text(ADMIN, f"/refund {order.id}")
        await sb.telegram.wait_for(with_button(sb, "Confirm", chat_id=ADMIN))
        sb.telegram.press_button(ADMIN, "Confirm")

        async def refunded():
            return (await sb.app.orders.get(order.id)).status == Status.REFUNDED and \
                (await get(http, fresh))[0] == 404
        await sb.telegram.wait_for(refunded, timeout=10)
        status, error, _ = await get(http, fresh)  # the object is gone: no link to it serves anything
        assert status == 404 and b"<Code>NoSuchKey</Code>" in error


async def test_a_dataset_bought_with_api_credit_downloads_from_the_store_and_a_retry_uploads_nothing(sb):
    await sb.app.signals.ingest(signal(1))
    sb.telegram.add_user(DEV, "Dev")
    sb.telegram.send_text(DEV, "/start")
    await sb.telegram.wait_for(newest(sb, "Choose what you need", chat_id=DEV))
    _key, raw = await sb.app.api_keys.create(DEV, "s3")
    assert await sb.app.ledger.top_up(DEV, Decimal("5"), Cause("order", "s3-seed"))
    api = f"http://127.0.0.1:{sb.app.port}/api/v1"
    auth = {"Authorization": f"Bearer {raw}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api}/datasets/signals/purchases", headers=auth,
                             json={"cut": "live", "idempotency_key": "s3-1"}) as answer:
            assert answer.status == 200, await answer.text()
            bought = await answer.json()
        assert bought["price_usd"] == "1.00" and await sb.app.ledger.credit(DEV) == Decimal("4")
        url = bought["links"]["csv"]
        assert url.startswith(f"{sb.s3.base_url}/{SANDBOX_S3_BUCKET}/datasets/")
        status, body, _ = await get(http, url)
        assert status == 200 and body == await exported(sb, bought["purchase_id"], "csv")

        async with http.post(f"{api}/datasets/signals/purchases", headers=auth,
                             json={"cut": "live", "idempotency_key": "s3-1"}) as again:
            assert again.status == 200 and (await again.json())["purchase_id"] == bought["purchase_id"]
        assert await sb.app.ledger.credit(DEV) == Decimal("4")  # charged once
        key = urlsplit(url).path.split(f"/{SANDBOX_S3_BUCKET}/", 1)[1]
        assert sb.s3.puts(key) == 1

        real_secret, sb.s3.secret_access_key = sb.s3.secret_access_key, "rotated"  # the store refuses us
        async with http.post(f"{api}/datasets/signals/purchases", headers=auth,
                             json={"cut": "live", "idempotency_key": "s3-2"}) as refused:
            problem = await refused.json()
            assert refused.status == 503 and problem["type"].endswith("#problem-storage-unavailable")
            assert int(refused.headers["Retry-After"]) > 0
        assert await sb.app.ledger.credit(DEV) == Decimal("3")  # bought: the same key later gives its links
        sb.s3.secret_access_key = real_secret
        async with http.post(f"{api}/datasets/signals/purchases", headers=auth,
                             json={"cut": "live", "idempotency_key": "s3-2"}) as retried:
            assert retried.status == 200
            assert (await get(http, (await retried.json())["links"]["parquet"]))[0] == 200
        assert await sb.app.ledger.credit(DEV) == Decimal("3")  # not charged again

        sb.s3.advance(timedelta(hours=24, seconds=1))
        status, error, _ = await get(http, url)
        assert status == 403 and b"Request has expired" in error
