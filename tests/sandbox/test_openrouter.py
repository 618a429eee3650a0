"""The OpenRouter stand-in, over real HTTP (httpx for the management API, openai for completions)."""

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import openai
import pytest

from sandbox.openrouter import OpenRouterStandIn

MGMT = "sk-or-v1-mgmt-sandbox"
OPUS = "anthropic/claude-3-opus"


@pytest.fixture
async def router() -> AsyncIterator[OpenRouterStandIn]:
    async with OpenRouterStandIn() as standin:
        yield standin


@pytest.fixture
async def http(router: OpenRouterStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=router.base_url + "/",
                                 headers={"Authorization": f"Bearer {MGMT}"}) as client:
        yield client


def llm(router: OpenRouterStandIn, secret: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=router.base_url, api_key=secret, max_retries=0, timeout=5)


async def ask(client: openai.AsyncOpenAI, model: str = "openai/gpt-4o-mini", **kwargs):
    return await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "How should I size a first position?"}], **kwargs)


async def test_models_list_has_real_shape_and_string_prices(router):
    assert router.base_url.endswith("/api/v1")
    async with httpx.AsyncClient() as client:  # no auth needed
        response = await client.get(f"{router.base_url}/models")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["data"]}
    for mid in ("openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "google/gemini-2.0-flash-001",
                "deepseek/deepseek-chat", "meta-llama/llama-3.3-70b-instruct", OPUS):
        model = models[mid]
        assert {"id", "name", "created", "description", "context_length", "pricing", "architecture",
                "top_provider"} <= model.keys()
        assert all(isinstance(model["pricing"][k], str) for k in ("prompt", "completion", "request", "image"))
    assert models["openai/gpt-4o-mini"]["pricing"]["prompt"] == "0.00000015"
    assert models[OPUS]["pricing"]["completion"] == "0.000075"


async def test_key_create_get_list_patch_delete(router, http):
    created = await http.post("keys", json={"name": "order-17", "limit": 2.5})
    assert created.status_code == 201
    body = created.json()
    secret, data = body["key"], body["data"]
    assert secret.startswith("sk-or-v1-") and secret not in str(data)
    assert data["name"] == "order-17" and data["limit"] == 2.5 and data["usage"] == 0
    assert data["limit_remaining"] == 2.5 and data["disabled"] is False and data["created_at"]
    key_hash = data["hash"]
    assert router.keys[key_hash].secret == secret

    got = (await http.get(f"keys/{key_hash}")).json()["data"]
    assert got["hash"] == key_hash and "key" not in got
    listed = (await http.get("keys", params={"offset": 0})).json()
    assert [k["hash"] for k in listed["data"]] == [key_hash] and secret not in str(listed)

    patched = (await http.patch(f"keys/{key_hash}",
                                json={"name": "renamed", "limit": 5, "disabled": True})).json()["data"]
    assert (patched["name"], patched["limit"], patched["disabled"]) == ("renamed", 5, True)
    assert patched["updated_at"]
    assert (await http.get("keys")).json()["data"] == []  # disabled keys hidden by default
    assert len((await http.get("keys", params={"include_disabled": "true"})).json()["data"]) == 1
    assert (await http.get("keys", params={"offset": 1, "include_disabled": "true"})).json()["data"] == []

    deleted = await http.delete(f"keys/{key_hash}")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": True}
    missing = await http.get(f"keys/{key_hash}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    assert (await http.post("keys", json={"limit": 1})).status_code == 400  # name required


@pytest.mark.parametrize("auth", [None, "Bearer sk-or-v1-wrong", "issued"])
async def test_management_endpoints_reject_other_credentials(router, auth):
    if auth == "issued":
        auth = f"Bearer {router.issue_key().secret}"
    headers = {"Authorization": auth} if auth else {}
    async with httpx.AsyncClient(base_url=router.base_url + "/", headers=headers) as client:
        for response in (await client.get("keys"), await client.post("keys", json={"name": "x"}),
                         await client.get("credits")):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == 401 and response.json()["error"]["message"]
    assert len(router.keys) == (1 if auth and "sk-or-v1-wrong" not in auth else 0)  # nothing created


async def test_chat_bills_usage_until_key_limit_then_402(router, http):
    created = (await http.post("keys", json={"name": "tiny", "limit": 0.01})).json()
    secret, key_hash = created["key"], created["data"]["hash"]
    client = llm(router, secret)
    spent, answers = Decimal(0), 0
    with pytest.raises(openai.APIStatusError) as caught:
        for _ in range(20):
            reply = await ask(client, OPUS)
            usage = reply.usage
            assert reply.choices[0].message.content
            assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
            spent += usage.prompt_tokens * Decimal("0.000015") + usage.completion_tokens * Decimal("0.000075")
            answers += 1
    assert caught.value.status_code == 402
    assert "limit" in caught.value.body["message"].lower()
    assert 1 < answers < 20 and router.keys[key_hash].usage == spent >= Decimal("0.01")

    info = (await http.get("key", headers={"Authorization": f"Bearer {secret}"})).json()["data"]
    assert info["usage"] == pytest.approx(float(spent)) and info["limit_remaining"] == 0
    assert info["is_free_tier"] is False and info["limit"] == 0.01
    credits = (await http.get("credits")).json()["data"]
    assert credits == {"total_credits": 100, "total_usage": pytest.approx(float(spent))}

    await http.patch(f"keys/{key_hash}", json={"limit": 1})  # raising the limit unblocks the key
    assert (await ask(client, OPUS)).usage.completion_tokens > 0
    await client.close()


async def test_chat_rejects_bad_keys_and_models_and_honours_max_tokens(router):
    key = router.issue_key()
    async with llm(router, key.secret) as client:
        with pytest.raises(openai.BadRequestError):
            await ask(client, "no-such/model")
        short = await ask(client, max_tokens=5)
        assert short.usage.completion_tokens <= 5 and short.choices[0].finish_reason == "length"
        key.disabled = True
        with pytest.raises(openai.AuthenticationError):
            await ask(client)
    for secret in ("sk-or-v1-unknown", MGMT):
        async with llm(router, secret) as client:
            with pytest.raises(openai.AuthenticationError):
                await ask(client)
    assert [c.status for c in router.calls] == [400, 200, 401, 401, 401]


async def test_unaffordable_max_tokens_and_exhausted_credits_give_402(router):
    async with llm(router, router.issue_key(limit=0.001).secret) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await ask(client, OPUS, max_tokens=1000)  # 1000 × 0.000075 > 0.001
    assert caught.value.status_code == 402 and "can only afford" in caught.value.body["message"]
    router.credits = Decimal(0)
    async with llm(router, router.issue_key().secret) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await ask(client)
    assert caught.value.status_code == 402 and "credits" in caught.value.body["message"].lower()


async def test_down_and_fail_next(router, http):
    router.down = True
    assert (await http.get("models")).status_code == 503
    assert (await http.get("credits")).json() == {"error": {"code": 503, "message": "Service Unavailable"}}
    router.down = False
    router.fail_next("/api/v1/keys", status=502, times=2)
    assert [(await http.get("keys")).status_code for _ in range(3)] == [502, 502, 200]
    assert (await http.get("credits")).status_code == 200  # other paths unaffected
    assert [c.path for c in router.calls[-4:]] == ["/keys", "/keys", "/keys", "/credits"]


async def test_set_price_changes_listing_and_billing(router):
    router.set_price("openai/gpt-4o-mini", completion=Decimal("0.001"), prompt="0")
    key = router.issue_key()
    async with llm(router, key.secret) as client:
        reply = await ask(client)
    assert key.usage == reply.usage.completion_tokens * Decimal("0.001") == router.total_usage
    async with httpx.AsyncClient() as client:
        models = (await client.get(f"{router.base_url}/models")).json()["data"]
    pricing = next(m for m in models if m["id"] == "openai/gpt-4o-mini")["pricing"]
    assert (pricing["prompt"], pricing["completion"]) == ("0", "0.001")
