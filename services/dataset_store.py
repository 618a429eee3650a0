"""Bought datasets in an S3-compatible object store (DATASETS_S3_*): each export is uploaded once under a
key fixed by its purchase (the purchase fixes the cut's content), and buyers get presigned GET URLs.

* **Upload once.** `put_once` asks for the key first (HeadObject) and uploads only when it is missing, so
  a retried delivery or a second "my datasets" tap uploads nothing; two uploads racing write the same bytes.
  The export is sent as one PutObject (held in memory meanwhile; S3 takes up to 5 GB that way).
* **Presigning** is local computation (no request): botocore signs the GET with Signature V4 for
  `expires` (at most 7 days, S3's limit); the URL names the file (`response-content-disposition`).
* **Revocation.** S3 cannot revoke one presigned URL: it stays valid until it expires or until the object
  is gone. A refund therefore deletes the purchase's objects (`delete`): every link to them then gets
  `404 NoSuchKey` (`403 AccessDenied` where the signer may not list the bucket). A download already under
  way finishes, and a copy taken before the refund stays with the buyer. Rotating the access key (new
  DATASETS_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY) stops every link signed with the old one at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import botocore.session
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from config.settings import Settings

MAX_EXPIRY = timedelta(days=7)


class StoreUnavailable(Exception):
    """The object store refused or could not be reached (the caller retries later)."""


def _config() -> Config:
    # Path-style works with every S3-compatible store (MinIO, R2, Ceph...); whole bodies with their SHA-256,
    # no aws-chunked trailers, so any store that speaks plain Signature V4 accepts the upload.
    return Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                  request_checksum_calculation="when_required", response_checksum_validation="when_required",
                  retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60)


class DatasetStore:
    """One bucket of an S3-compatible store."""

    def __init__(self, *, endpoint_url: str, bucket: str, access_key_id: str, secret_access_key: str,
                 region: str) -> None:
        self.bucket = bucket
        self._client_args = {"endpoint_url": endpoint_url, "region_name": region,
                             "aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key,
                             "config": _config()}
        self._session = get_session()
        self._signer = botocore.session.get_session().create_client("s3", **self._client_args)
        self._stored: set[str] = set()  # keys known to be uploaded (this process)

    @classmethod
    def from_settings(cls, settings: Settings) -> DatasetStore | None:
        """The store DATASETS_S3_* name (None while they are unset)."""
        if not settings.datasets_s3:
            return None
        return cls(endpoint_url=settings.datasets_s3_endpoint_url or "", bucket=settings.datasets_s3_bucket or "",
                   access_key_id=settings.datasets_s3_access_key_id.get_secret_value(),  # type: ignore[union-attr]
                   secret_access_key=settings.datasets_s3_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
                   region=settings.datasets_s3_region or "us-east-1")

    async def put_once(self, key: str, pieces: AsyncIterator[bytes], content_type: str) -> bool:
        """Upload `pieces` under `key` unless it is there; True when uploaded now. StoreUnavailable on a
        refusal or a network failure (nothing is half-written: PutObject stores all or nothing)."""
        if key in self._stored:
            await pieces.aclose()  # type: ignore[attr-defined]
            return False
        try:
            async with self._session.create_client("s3", **self._client_args) as client:
                try:
                    await client.head_object(Bucket=self.bucket, Key=key)
                    self._stored.add(key)
                    await pieces.aclose()  # type: ignore[attr-defined]
                    return False
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                        raise
                body = b"".join([piece async for piece in pieces])  # signed with its SHA-256
                await client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise StoreUnavailable(f"object store: {type(exc).__name__}: {exc}") from exc
        self._stored.add(key)
        return True

    def presign(self, key: str, filename: str, expires: timedelta) -> str:
        """A GET URL for `key`, valid `expires` from now, that downloads as `filename`."""
        seconds = int(min(expires, MAX_EXPIRY).total_seconds())
        return self._signer.generate_presigned_url(
            "get_object", ExpiresIn=seconds,
            Params={"Bucket": self.bucket, "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"'})

    async def delete(self, keys: list[str]) -> None:
        """Remove `keys` (a missing key is not an error); StoreUnavailable when the store refuses."""
        try:
            async with self._session.create_client("s3", **self._client_args) as client:
                for key in keys:
                    await client.delete_object(Bucket=self.bucket, Key=key)
                    self._stored.discard(key)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise StoreUnavailable(f"object store: {type(exc).__name__}: {exc}") from exc
