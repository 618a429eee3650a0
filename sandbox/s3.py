"""Local stand-in for an S3-compatible object store (the part the dataset store uses), path-style.

Wire format, as AWS documents it and botocore / aiobotocore speak it:

- ``PUT /{bucket}`` CreateBucket, ``HEAD /{bucket}`` HeadBucket; ``PUT``, ``GET``, ``HEAD``, ``DELETE``
  ``/{bucket}/{key}`` PutObject, GetObject, HeadObject, DeleteObject (204 also for a missing key).
- Every request is signed with AWS Signature Version 4: in the ``Authorization`` header
  (``AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/s3/aws4_request, SignedHeaders=…, Signature=…``
  with ``X-Amz-Date`` and ``X-Amz-Content-SHA256``, checked against the body) or in the query string of a
  presigned URL (``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
  ``X-Amz-SignedHeaders``, ``X-Amz-Signature``; payload ``UNSIGNED-PAYLOAD``). The signature is recomputed
  here from the canonical request, so a tampered URL or a wrong secret is refused.
- Errors are S3's XML ``<Error><Code>…</Code><Message>…</Message></Error>``: ``AccessDenied`` (403,
  "Request has expired" once ``X-Amz-Date`` + ``X-Amz-Expires`` has passed), ``SignatureDoesNotMatch``
  (403), ``InvalidAccessKeyId`` (403), ``NoSuchBucket`` / ``NoSuchKey`` (404).
- GetObject honours ``response-content-disposition`` / ``response-content-type`` (how a presigned URL
  names the downloaded file) and answers ``ETag`` (the MD5 of the object, quoted) and ``Content-Length``.

Sandbox differences: one account (:attr:`access_key_id` / :attr:`secret_access_key`), objects in memory,
no clock-skew check on signed headers, and a clock that tests move with :meth:`advance` (expiry is judged
by it). ``aws-chunked`` streaming uploads are refused (501): the app's client sends whole bodies.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from aiohttp import web

_CREDENTIAL = re.compile(r"Credential=([^,\s]+)")
_SIGNED = re.compile(r"SignedHeaders=([^,\s]+)")
_SIGNATURE = re.compile(r"Signature=([0-9a-f]+)")


@dataclass
class StoredObject:
    body: bytes
    content_type: str
    etag: str
    modified: datetime


class S3Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    return _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")


def canonical_query(raw_query: str, *, without: str | None = None) -> str:
    pairs = []
    for part in raw_query.split("&") if raw_query else ():
        name, _eq, value = part.partition("=")
        name, value = unquote(name.replace("+", " ")), unquote(value.replace("+", " "))
        if name != without:
            pairs.append((quote(name, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


class S3StandIn:
    """An S3 endpoint on 127.0.0.1. ``base_url`` is what DATASETS_S3_ENDPOINT_URL is set to."""

    def __init__(self, *, region: str = "us-east-1", clock: Callable[[], datetime] | None = None) -> None:
        self.region = region
        self.access_key_id = "AKIASANDBOX" + secrets.token_hex(4).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        self.buckets: dict[str, dict[str, StoredObject]] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), in order
        self._clock = clock or (lambda: datetime.now(UTC))
        self._offset = timedelta(0)
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    # Test controls -------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock() + self._offset

    def advance(self, delta: timedelta) -> None:
        """Move this store's clock on (presigned URLs expire by it)."""
        self._offset += delta

    def create_bucket(self, name: str) -> None:
        self.buckets.setdefault(name, {})

    def puts(self, key: str) -> int:
        """How many PutObject requests wrote `key` (any bucket)."""
        return sum(1 for method, path, status in self.requests
                   if method == "PUT" and status == 200 and unquote(path).endswith("/" + key))

    # Server ----------------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=1024 ** 3)
        app.router.add_route("*", "/{bucket}", self._handle)
        app.router.add_route("*", "/{bucket}/{key:.+}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.base_url = f"http://{host}:{site._server.sockets[0].getsockname()[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            self._authenticate(request, body)
            response = self._serve(request, body)
        except S3Refused as refused:
            response = web.Response(
                status=refused.status, content_type="application/xml",
                text=(f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{refused.code}</Code>'
                      f"<Message>{refused.message}</Message><RequestId>{secrets.token_hex(8)}</RequestId></Error>"))
        self.requests.append((request.method, request.path, response.status))
        return response

    def _authenticate(self, request: web.Request, body: bytes) -> None:
        query = request.query
        header = request.headers.get("Authorization", "")
        if "X-Amz-Signature" in query:
            credential, signed, signature = (query.get("X-Amz-Credential", ""), query.get("X-Amz-SignedHeaders", ""),
                                             query["X-Amz-Signature"])
            amz_date, payload = query.get("X-Amz-Date", ""), "UNSIGNED-PAYLOAD"
            if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
                raise S3Refused(400, "AuthorizationQueryParametersError", "X-Amz-Algorithm must be AWS4-HMAC-SHA256")
        elif header.startswith("AWS4-HMAC-SHA256 "):
            found = [p.search(header) for p in (_CREDENTIAL, _SIGNED, _SIGNATURE)]
            if not all(found):
                raise S3Refused(400, "AuthorizationHeaderMalformed", "The authorization header is malformed")
            credential, signed, signature = (m.group(1) for m in found)  # type: ignore[union-attr]
            amz_date = request.headers.get("X-Amz-Date", "")
            payload = request.headers.get("X-Amz-Content-SHA256", "")
            if payload.startswith("STREAMING-"):
                raise S3Refused(501, "NotImplemented", "aws-chunked uploads are not supported by this stand-in")
            if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
                raise S3Refused(400, "XAmzContentSHA256Mismatch",
                                "The provided 'x-amz-content-sha256' header does not match what was computed.")
        else:
            raise S3Refused(403, "AccessDenied", "Access Denied")
        key_id, _s, scope = credential.partition("/")
        if key_id != self.access_key_id:
            raise S3Refused(403, "InvalidAccessKeyId",
                            "The AWS Access Key Id you provided does not exist in our records.")
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise S3Refused(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
                            ) from None
        raw_path, _q, raw_query = request.raw_path.partition("?")
        headers = "".join(f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in signed.split(";"))
        canonical = "\n".join((request.method, raw_path, canonical_query(raw_query, without="X-Amz-Signature"),
                               headers, signed, payload))
        to_sign = "\n".join(("AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()))
        date, region, service = [*scope.split("/"), "", "", ""][:3]
        expected = hmac.new(signing_key(self.secret_access_key, date, region, service), to_sign.encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise S3Refused(403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                                                          "the signature you provided.")
        if "X-Amz-Expires" in query:
            expires = int(query["X-Amz-Expires"]) if query["X-Amz-Expires"].isdigit() else -1
            if not 1 <= expires <= 7 * 24 * 3600:
                raise S3Refused(400, "AuthorizationQueryParametersError",
                                "X-Amz-Expires must be between 1 and 604800 seconds")
            if self.now() > signed_at + timedelta(seconds=expires):
                raise S3Refused(403, "AccessDenied", "Request has expired")

    def _serve(self, request: web.Request, body: bytes) -> web.Response:
        bucket_name, key = request.match_info["bucket"], request.match_info.get("key")
        method = request.method
        if key is None:
            if method == "PUT":
                self.create_bucket(bucket_name)
                return web.Response(status=200, headers={"Location": f"/{bucket_name}"})
            if bucket_name not in self.buckets:
                raise S3Refused(404, "NoSuchBucket", "The specified bucket does not exist")
            if method == "HEAD":
                return web.Response(status=200)
            raise S3Refused(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        bucket = self.buckets.get(bucket_name)
        if bucket is None:
            raise S3Refused(404, "NoSuchBucket", "The specified bucket does not exist")
        if method == "PUT":
            etag = f'"{hashlib.md5(body).hexdigest()}"'
            bucket[key] = StoredObject(body, request.headers.get("Content-Type", "binary/octet-stream"), etag,
                                       self.now())
            return web.Response(status=200, headers={"ETag": etag})
        if method == "DELETE":
            bucket.pop(key, None)
            return web.Response(status=204)
        stored = bucket.get(key)
        if stored is None:
            raise S3Refused(404, "NoSuchKey", "The specified key does not exist.")
        headers = {"ETag": stored.etag, "Content-Type": request.query.get("response-content-type", stored.content_type),
                   "Last-Modified": stored.modified.strftime("%a, %d %b %Y %H:%M:%S GMT")}
        if "response-content-disposition" in request.query:
            headers["Content-Disposition"] = request.query["response-content-disposition"]
        if method == "HEAD":
            headers["Content-Length"] = str(len(stored.body))
            return web.Response(status=200, headers=headers)
        if method == "GET":
            return web.Response(status=200, body=stored.body, headers=headers)
        raise S3Refused(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
