"""Shared ingest authentication: IP allow-list, timestamp window, HMAC over the raw body."""

import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from processing.ingest_auth import IngestAuth, parse_json_object, sign, signed_headers

SECRET = "s3cret"
NOW = 1_800_000_000


def _app(auth: IngestAuth) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        checked = await auth.check(request)
        if isinstance(checked, web.Response):
            return checked
        payload = parse_json_object(checked)
        if isinstance(payload, web.Response):
            return payload
        return web.json_response({"ok": True, "echo": payload})

    app = web.Application()
    app.router.add_post("/api/x", receive)
    return app


async def _post(auth, body: bytes, headers):
    async with TestClient(TestServer(_app(auth))) as client:
        response = await client.post("/api/x", data=body, headers=headers)
        return response.status, await response.json()


async def test_valid_request_passes_raw_body():
    body = json.dumps({"a": 1}).encode()
    auth = IngestAuth.build(SECRET, clock=lambda: NOW)
    status, payload = await _post(auth, body, signed_headers(SECRET, body, timestamp=NOW))
    assert (status, payload["echo"]) == (200, {"a": 1})


async def test_refusals():
    body = b'{"a": 1}'
    auth = IngestAuth.build(SECRET, clock=lambda: NOW)
    bad_sig = signed_headers("other", body, timestamp=NOW)
    assert (await _post(auth, body, bad_sig))[0] == 401
    old = signed_headers(SECRET, body, timestamp=NOW - 301)
    status, payload = await _post(auth, body, old)
    assert status == 401 and payload["field"] == "X-Timestamp"
    assert (await _post(auth, body, signed_headers(SECRET, body, timestamp=NOW + 300)))[0] == 200
    assert (await _post(auth, body, {"X-Signature": sign(SECRET, NOW, body)}))[0] == 401
    tampered = signed_headers(SECRET, body, timestamp=NOW)
    assert (await _post(auth, b'{"a": 2}', tampered))[0] == 401
    not_json = b"nope"
    status, payload = await _post(auth, not_json, signed_headers(SECRET, not_json, timestamp=NOW))
    assert status == 422 and payload["field"] == "body"


async def test_ip_allow_list_and_disabled():
    body = b"{}"
    headers = signed_headers(SECRET, body, timestamp=NOW)
    assert (await _post(IngestAuth.build(SECRET, ["10.0.0.0/8"], clock=lambda: NOW), body, headers))[0] == 403
    assert (await _post(IngestAuth.build(SECRET, ["127.0.0.1"], clock=lambda: NOW), body, headers))[0] == 200
    status, payload = await _post(IngestAuth.build(None, clock=lambda: NOW), body, headers)
    assert status == 503 and "SIGNAL_WEBHOOK_SECRET" in payload["error"]
