"""Shared ingest authentication: IP allow-list, timestamp window, HMAC over the raw body."""

import json
import socket

import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from processing.ingest_auth import IngestAuth, parse_json_object, sign, signed_headers
from tests.support import redis_server as _redis

redis_server, redis_url = _redis.redis_server, _redis.redis_url

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


# Signatures bound to their request (CONTRACT "Ingest authentication") -----------------------------------


def _paths_app(auth: IngestAuth) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        payload = await auth.json_object(request)
        if isinstance(payload, web.Response):
            return payload
        return web.json_response({"ok": True, "name": request.match_info["name"]})

    app = web.Application()
    app.router.add_post("/api/{name}/events", receive)
    auth.attach(app)
    return app


async def _send(auths, sends):
    """POST each (replica index, path, body, headers) to its replica; the statuses in order."""
    servers = [TestServer(_paths_app(auth)) for auth in auths]
    clients = [TestClient(server) for server in servers]
    statuses = []
    try:
        for client in clients:
            await client.start_server()
        for replica, path, body, headers in sends:
            response = await clients[replica].post(path, data=body, headers=headers)
            statuses.append(response.status)
    finally:
        for client in clients:
            await client.close()
    return statuses


async def test_a_signature_presented_again_for_another_path_is_refused_and_a_retry_is_not():
    body = b'{"type":"closed","price":"91"}'
    captured = signed_headers(SECRET, body, timestamp=NOW)  # made for signal A
    auth = IngestAuth.build(SECRET, clock=lambda: NOW)
    assert await _send([auth], [(0, "/api/A/events", body, captured),
                                (0, "/api/A/events", body, captured),  # the sender's retry
                                (0, "/api/B/events", body, captured),  # replayed against signal B
                                (0, "/api/A/events", body, captured)]) == [200, 200, 401, 200]


async def test_version_2_signs_method_and_path_and_both_versions_are_accepted():
    body = b'{"type":"closed","price":"91"}'
    auth = IngestAuth.build(SECRET, clock=lambda: NOW)
    v2 = signed_headers(SECRET, body, timestamp=NOW, path="/api/A/events")
    assert v2["X-Signature-Version"] == "2"
    assert v2["X-Signature"] == sign(SECRET, NOW, body, method="POST", path="/api/A/events")
    assert v2["X-Signature"] != sign(SECRET, NOW, body)
    v1_other = signed_headers(SECRET, body, timestamp=NOW + 1)
    unknown = {**v2, "X-Signature-Version": "3"}
    v2_as_v1 = {k: v for k, v in v2.items() if k != "X-Signature-Version"}
    assert await _send([auth], [(0, "/api/A/events", body, v2),
                                (0, "/api/B/events", body, v2),  # the MAC covers the path
                                (0, "/api/A/events", body, unknown),
                                (0, "/api/A/events", body, v2_as_v1),
                                (0, "/api/B/events", body, v1_other)]) == [200, 401, 401, 401, 200]


async def test_the_memory_forgets_a_signature_once_its_window_is_over():
    clock = [NOW]
    body = b"{}"
    headers = signed_headers(SECRET, body, timestamp=NOW)
    auth = IngestAuth.build(SECRET, clock=lambda: clock[0])
    assert await _send([auth], [(0, "/api/A/events", body, headers)]) == [200]
    clock[0] = NOW + 301  # the timestamp itself is now refused, so forgetting loses nothing
    assert await _send([auth], [(0, "/api/B/events", body, headers)]) == [401]
    assert len(auth.memory._paths) == 1  # type: ignore[union-attr]
    fresh = signed_headers(SECRET, body, timestamp=NOW + 301)
    assert await _send([auth], [(0, "/api/B/events", body, fresh)]) == [200]
    assert list(auth.memory._paths) == [fresh["X-Signature"]]  # type: ignore[union-attr]


async def test_replicas_sharing_redis_refuse_a_replay_seen_by_another(redis_url):
    body = b'{"type":"closed","price":"91"}'
    captured = signed_headers(SECRET, body, timestamp=NOW)
    replicas = [IngestAuth.build(SECRET, clock=lambda: NOW, redis_url=redis_url) for _ in range(2)]
    assert await _send(replicas, [(0, "/api/A/events", body, captured),
                                  (1, "/api/B/events", body, captured),  # another replica, another path
                                  (1, "/api/A/events", body, captured)]) == [200, 401, 200]
    probe = redis.Redis.from_url(redis_url)
    try:
        key = f"ingest:sig:{captured['X-Signature']}"
        assert probe.get(key) == b"/api/A/events"
        assert 0 < probe.pttl(key) <= 301_000  # forgotten when the timestamp leaves the window
    finally:
        probe.close()


async def test_unreachable_redis_refuses_with_503_and_lets_nothing_through():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    body = b"{}"
    auth = IngestAuth.build(SECRET, clock=lambda: NOW, redis_url=f"redis://127.0.0.1:{port}/0")
    assert await _send([auth], [(0, "/api/A/events", body, signed_headers(SECRET, body, timestamp=NOW))]) == [503]


async def test_timestamps_in_other_digits_and_deep_bodies_are_refused_not_500():
    body = b"{}"
    arabic = {**signed_headers(SECRET, body, timestamp=NOW), "X-Timestamp": "١٨٠٠٠٠٠٠٠٠"}
    arabic["X-Signature"] = sign(SECRET, "١٨٠٠٠٠٠٠٠٠", body)
    auth = IngestAuth.build(SECRET, clock=lambda: NOW)
    deep = b"[" * 100_000 + b"]" * 100_000
    status, payload = await _post(auth, deep, signed_headers(SECRET, deep, timestamp=NOW))
    assert status == 422 and payload["field"] == "body" and "deeper than" in payload["error"]
    assert (await _post(auth, b"[" * 400, {}))[0] == 401  # unsigned: refused before any parsing
    assert (await _post(auth, body, arabic))[0] == 401
