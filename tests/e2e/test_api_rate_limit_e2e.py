"""The per-minute limit over real HTTP in the sandbox (issue 17): a Free user with a key from the bot calls
GET /api/v1/signals on the running app; every answer carries RateLimit-Policy and RateLimit with the calls
left, the call past the minute's limit is a 429 problem with Retry-After (also for the user's second key: the
limit is per user), and whoami, which is not counted, still answers with the headers."""

import re

import aiohttp
import pytest

from sandbox.runner import running_sandbox

DEV = 770
POLICY = '"minute";q=3;w=60, "day";q=100;w=86400'


@pytest.fixture
async def sb(tmp_path):
    async with running_sandbox(tmp_path, api_limits={"free": {"per_minute": 3, "per_day": 100}}) as sandbox:
        yield sandbox


async def test_the_call_past_the_minutes_limit_gets_429_with_retry_after_and_the_ratelimit_headers(sb):
    sb.telegram.add_user(DEV, "Dev")
    sb.telegram.send_text(DEV, "/api")
    await sb.telegram.wait_for(lambda: any("API" in m.get("text", "")
                                           for m in sb.telegram.chat_messages(DEV, bot_only=True)))
    _key, first = await sb.app.api_keys.create(DEV, "laptop")
    _key, second = await sb.app.api_keys.create(DEV, "server")
    url = f"http://127.0.0.1:{sb.app.port}/api/v1"
    async with aiohttp.ClientSession() as http:
        remaining = []
        for _ in range(3):
            async with http.get(f"{url}/signals", headers={"Authorization": f"Bearer {first}"}) as answer:
                assert answer.status == 200 and answer.headers["RateLimit-Policy"] == POLICY
                remaining.append(int(re.match(r'"minute";r=(\d+);t=\d+', answer.headers["RateLimit"]).group(1)))
        assert remaining == [2, 1, 0]

        for key in (first, second):  # all of a user's keys count together
            async with http.get(f"{url}/signals", headers={"X-API-Key": key}) as answer:
                assert answer.status == 429 and answer.content_type == "application/problem+json"
                problem = await answer.json()
                assert problem["status"] == 429 and problem["type"].endswith("#problem-rate-limited")
                assert "3 calls per minute" in problem["detail"]
                assert 1 <= int(answer.headers["Retry-After"]) <= 60
                assert answer.headers["RateLimit-Policy"] == POLICY
                assert re.fullmatch(r'"minute";r=0;t=\d+, "day";r=\d+;t=\d+', answer.headers["RateLimit"])

        async with http.get(f"{url}/whoami", headers={"Authorization": f"Bearer {first}"}) as answer:
            assert answer.status == 200 and answer.headers["RateLimit-Policy"] == POLICY
            assert (await answer.json())["usage"]["today"] == 3  # the refused calls were not counted
