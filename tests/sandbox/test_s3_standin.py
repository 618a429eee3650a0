"""The S3 stand-in against the app's own client (services.dataset_store, aiobotocore): an upload is made once,
a presigned URL downloads the bytes until its expiry, and the stand-in refuses what S3 refuses (a wrong secret,
a changed URL, an expired URL, a deleted object) in S3's XML."""

from datetime import timedelta

import aiohttp
import pytest

from sandbox.s3 import S3StandIn
from services.dataset_store import DatasetStore, StoreUnavailable


async def pieces(*chunks: bytes):
    for chunk in chunks:
        yield chunk


@pytest.fixture
async def s3():
    stand_in = S3StandIn()
    await stand_in.start()
    stand_in.create_bucket("datasets")
    yield stand_in
    await stand_in.stop()


def store(s3: S3StandIn, secret: str | None = None) -> DatasetStore:
    return DatasetStore(endpoint_url=s3.base_url, bucket="datasets", access_key_id=s3.access_key_id,
                        secret_access_key=secret or s3.secret_access_key, region=s3.region)


async def test_an_export_is_uploaded_once_and_its_presigned_url_works_until_it_expires(s3):
    one = store(s3)
    assert await one.put_once("datasets/a b.csv", pieces(b"x,y\n", b"1,2\n"), "text/csv")
    assert not await store(s3).put_once("datasets/a b.csv", pieces(b"other"), "text/csv")  # another replica
    assert s3.puts("datasets/a b.csv") == 1
    url = one.presign("datasets/a b.csv", "a b.csv", timedelta(hours=24))
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as answer:
            assert answer.status == 200 and await answer.read() == b"x,y\n1,2\n"
            assert answer.headers["Content-Disposition"] == 'attachment; filename="a b.csv"'
        async with http.get(url.replace("X-Amz-Expires=86400", "X-Amz-Expires=86401")) as answer:
            assert answer.status == 403 and "<Code>SignatureDoesNotMatch</Code>" in await answer.text()
        s3.advance(timedelta(hours=24, seconds=1))
        async with http.get(url) as answer:
            assert answer.status == 403 and "<Message>Request has expired</Message>" in await answer.text()
        s3.advance(-timedelta(hours=24, seconds=1))
        await one.delete(["datasets/a b.csv"])
        async with http.get(url) as answer:
            assert answer.status == 404 and "<Code>NoSuchKey</Code>" in await answer.text()


async def test_a_wrong_secret_is_refused_and_reported_as_the_store_being_unavailable(s3):
    with pytest.raises(StoreUnavailable):
        await store(s3, secret="not-the-secret").put_once("datasets/x.csv", pieces(b"1"), "text/csv")
    assert s3.buckets["datasets"] == {}
