"""The DeepSeek stand-in, driven through the real ``openai.AsyncOpenAI`` client."""

import json
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from sandbox.deepseek import HOSTILE_BODY_CHARS, DeepSeekStandIn

KEY = "sk-deepseek-sandbox"


@pytest.fixture
async def deepseek() -> AsyncIterator[DeepSeekStandIn]:
    async with DeepSeekStandIn(seed=3) as standin:
        yield standin


@pytest.fixture
async def client(deepseek: DeepSeekStandIn) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=deepseek.base_url, api_key=KEY, max_retries=0,
                                  timeout=0.3) as c:
        yield c


def prompt(kind: str, topic: str = "liquidity") -> list[dict]:
    return [
        {"role": "system", "content": "You write short posts for a crypto Telegram channel. Plain text."},
        {"role": "user", "content": f"Write a {kind} post. Topic: {topic}. Keep it under 600 characters."},
    ]


async def post(client: openai.AsyncOpenAI, kind: str = "market", **kwargs):
    return await client.chat.completions.create(model="deepseek-chat", messages=prompt(kind), **kwargs)


@pytest.mark.parametrize("kind", ["market", "tip", "promo", "community"])
async def test_post_matches_requested_kind_and_topic(deepseek, client, kind):
    reply = await post(client, kind)
    text = reply.choices[0].message.content
    assert kind in text.lower() and "liquidity" in text.lower() and len(text) < 600
    assert reply.choices[0].finish_reason == "stop" and reply.usage.completion_tokens > 0
    assert reply.model == "deepseek-chat" and deepseek.base_url and not deepseek.base_url.endswith("/v1")
    (call,) = deepseek.calls
    assert call.model == "deepseek-chat" and call.messages == prompt(kind) and call.status == 200


async def test_output_is_deterministic_per_seed_and_max_tokens_truncates(client):
    async def posts(seed: int) -> list[str]:
        async with DeepSeekStandIn(seed=seed) as ds, openai.AsyncOpenAI(
                base_url=ds.base_url + "/v1", api_key=KEY, max_retries=0) as c:  # /v1 works too
            return [(await post(c, kind)).choices[0].message.content for kind in ("tip", "tip", "promo")]

    assert await posts(11) == await posts(11)
    assert len({tuple(await posts(seed)) for seed in range(4)}) > 1
    short = await post(client, max_tokens=8)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens <= 8


async def test_auth_models_and_bad_requests(deepseek, client):
    assert [m.id for m in (await client.models.list()).data] == ["deepseek-chat", "deepseek-reasoner"]
    async with openai.AsyncOpenAI(base_url=deepseek.base_url, api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            await post(bad)
    assert caught.value.body["type"] == "authentication_error" and "****rong" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError, match="Model Not Exist"):
        await client.chat.completions.create(model="gpt-4", messages=prompt("tip"))
    async with httpx.AsyncClient() as http:
        balance = await http.get(f"{deepseek.base_url}/user/balance", headers={"Authorization": f"Bearer {KEY}"})
    assert balance.json()["is_available"] is True


async def test_fail_mode_500(deepseek, client):
    deepseek.fail_mode = "500"
    with pytest.raises(openai.InternalServerError):
        await post(client)


async def test_fail_mode_timeout_hangs_past_client_timeout(deepseek, client):
    deepseek.fail_mode = "timeout"
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await post(client)
    assert time.monotonic() - started < 2


async def test_fail_mode_garbage_is_invalid_json(deepseek, client):
    deepseek.fail_mode = "garbage"
    with pytest.raises(json.JSONDecodeError):
        await post(client)


async def test_fail_mode_empty_content(deepseek, client):
    deepseek.fail_mode = "empty"
    reply = await post(client)
    assert reply.choices[0].message.content == "" and reply.usage.completion_tokens == 0


async def test_fail_mode_hostile_html_and_oversized(deepseek, client):
    deepseek.fail_mode = "hostile"
    text = (await post(client, max_tokens=100)).choices[0].message.content
    assert text.startswith("<script>alert(1)</script><b>unclosed")
    assert len(text) == HOSTILE_BODY_CHARS and text.endswith("<b>")


async def test_fail_count_recovers_after_n_requests(deepseek, client):
    deepseek.fail_mode, deepseek.fail_count = "500", 2
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await post(client)
    assert "market" in (await post(client)).choices[0].message.content.lower()
    assert deepseek.fail_mode is None
    assert [(c.fail_mode, c.status) for c in deepseek.calls] == [("500", 500), ("500", 500), (None, 200)]
