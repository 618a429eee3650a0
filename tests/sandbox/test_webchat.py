"""The web chat's HTTP side: the page and its headers, the JSON API, live events, files, and that
nothing from the bot or a user is ever turned into markup. The bot is simulated through the Bot API
of the same stand-in (``TelegramStandIn.execute``)."""

import asyncio
import json
import re
from pathlib import Path

import aiohttp
import pytest_asyncio

from sandbox.telegram import TelegramStandIn, UploadedFile
from sandbox.webchat import STATIC, WebChat

HOSTILE = "<img src=x onerror=alert(1)>"
CHANNEL = -1001000000002


@pytest_asyncio.fixture
async def tg():
    standin = TelegramStandIn(rate_limit=None)
    WebChat(standin, admin_id=1000)
    standin.add_channel(CHANNEL, "VIP")
    async with standin:
        yield standin


@pytest_asyncio.fixture
async def http(tg):
    async with aiohttp.ClientSession(base_url=tg.base_url) as session:
        yield session


async def call(http, method, path, body=None, status=200):
    async with http.request(method, f"/sandbox/api{path}", json=body) as resp:
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        return await resp.json()


async def bot(tg, method, **params):
    status, body = await tg.execute(method, params, "123:ABC")
    assert status == 200, body
    return body["result"]


async def test_page_static_and_headers(tg, http):
    async with http.get("/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/sandbox/"
    async with http.get("/sandbox/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        csp = resp.headers["Content-Security-Policy"]
        page = await resp.text()
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/sandbox/static/app.js" defer></script>' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline script ...
    assert not re.search(r"\son[a-z]+\s*=", page, re.IGNORECASE)  # ... and no inline handlers
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        async with http.get(f"/sandbox/static/{name}") as resp:
            assert resp.status == 200 and resp.content_type == kind
    for bad in ("nope.js", "..%2Fwebchat.py", ".hidden.js", "index.html"):
        async with http.get(f"/sandbox/static/{bad}") as resp:
            assert resp.status == 404, bad
    async with http.get("/sandbox/invoice/anything") as resp:  # invoice links open the same page
        assert resp.status == 200 and resp.content_type == "text/html"


async def test_users_are_created_listed_updated_and_validated(tg, http):
    eve = await call(http, "POST", "/users", {"first_name": "Eve"})
    assert (eve["id"], eve["language_code"], eve["is_admin"]) == (1001, "en", False)
    ivan = await call(http, "POST", "/users", {"first_name": "Иван", "language_code": "ru"})
    assert ivan["id"] == 1002
    admin = await call(http, "POST", "/users", {"id": 1000, "first_name": "Admin"})
    assert admin["is_admin"] is True
    updated = await call(http, "POST", "/users", {"id": 1001, "first_name": "Eve", "language_code": "ru"})
    assert updated["language_code"] == "ru" and tg.users[1001]["language_code"] == "ru"
    users = await call(http, "GET", "/users")
    assert [u["id"] for u in users] == [1000, 1001, 1002]
    for body, error in (({"first_name": ""}, "first_name"), ({"first_name": "x" * 65}, "first_name"),
                        ({"first_name": "A", "language_code": "english"}, "language_code"),
                        ({"first_name": "A", "id": tg.bot_user["id"]}, "id"),
                        ({"first_name": "A", "id": "abc"}, "id"), ({"first_name": "A", "id": -5}, "id"),
                        ({"first_name": "A", "username": "x"}, "username")):
        assert error in (await call(http, "POST", "/users", body, status=400))["error"]
    async with http.post("/sandbox/api/users", data="not json") as resp:
        assert resp.status == 400
    state = await call(http, "GET", "/state")
    assert state["admin_id"] == 1000 and state["bot"]["username"] == "sandbox_bot"
    assert [c["id"] for c in state["channels"]] == [CHANNEL]


async def test_send_press_and_chat_state(tg, http):
    await call(http, "POST", "/users", {"id": 501, "first_name": "Eve"})
    sent = (await call(http, "POST", "/send", {"user_id": 501, "text": "/start"}))["message"]
    assert sent["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert tg.updates[-1]["message"]["text"] == "/start"
    menu = await bot(tg, "sendMessage", chat_id=501, text="<b>Menu</b>", parse_mode="HTML", reply_markup={
        "inline_keyboard": [[{"text": "Help", "callback_data": "help"}]]})
    chat = await call(http, "GET", "/chats/501")
    assert [m["message_id"] for m in chat["messages"]] == [sent["message_id"], menu["message_id"]]
    assert chat["user"]["first_name"] == "Eve" and chat["reply_keyboard"] is None
    pressed = await call(http, "POST", "/press", {"user_id": 501, "message_id": menu["message_id"], "data": "help"})
    assert tg.updates[-1]["callback_query"]["id"] == pressed["callback_query_id"]
    assert "no button" in (await call(http, "POST", "/press", {
        "user_id": 501, "message_id": menu["message_id"], "data": "forged"}, status=404))["error"]
    assert "create it first" in (await call(http, "POST", "/send", {"user_id": 9, "text": "hi"}, status=404))["error"]
    assert (await call(http, "POST", "/send", {"user_id": 501, "text": "  "}, status=400))["error"] == "text is empty"
    await call(http, "GET", "/chats/12345", status=404)
    blocked = await call(http, "POST", "/users/501/block", {"blocked": True})
    assert blocked["blocked"] and 501 in tg.blocked
    assert not (await call(http, "POST", "/users/501/block", {"blocked": False}))["blocked"]


async def test_bot_text_and_user_names_come_back_as_data_never_markup(tg, http):
    await call(http, "POST", "/users", {"id": 502, "first_name": HOSTILE})
    await bot(tg, "sendMessage", chat_id=502, text=HOSTILE)  # as text, no parse_mode
    await bot(tg, "sendMessage", chat_id=502, text="&lt;img src=x onerror=alert(1)&gt; <b>hi</b>",
              parse_mode="HTML")
    chat = await call(http, "GET", "/chats/502")
    assert [m["text"] for m in chat["messages"]] == [HOSTILE, f"{HOSTILE} hi"]
    assert chat["user"]["first_name"] == HOSTILE
    # The page itself carries no data: it is static and fetches JSON.
    async with http.get("/sandbox/") as resp:
        assert "onerror" not in await resp.text()
    # The client never parses strings as HTML and keeps only http(s)/mailto links.
    script = (STATIC / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "DOMParser", "createContextualFragment", "srcdoc"):
        assert sink not in script, sink
    assert '["http:", "https:", "mailto:"]' in script


async def test_pay_refused_accepted_and_timed_out(tg, http):
    await call(http, "POST", "/users", {"id": 503, "first_name": "Payer"})
    invoice = await bot(tg, "sendInvoice", chat_id=503, title="Tokens", description="100 tokens",
                        payload="order:1", currency="XTR", prices=[{"label": "Tokens", "amount": 40}])

    async def answer(ok: bool, error_message: str | None = None) -> None:
        query = await tg.wait_for(lambda: [u for u in tg.updates if "pre_checkout_query" in u])
        tg.updates.clear()
        params = {"pre_checkout_query_id": query[0]["pre_checkout_query"]["id"], "ok": ok}
        if error_message:
            params["error_message"] = error_message
        await bot(tg, "answerPreCheckoutQuery", **params)

    body = {"user_id": 503, "message_id": invoice["message_id"]}
    refused, _ = await asyncio.gather(call(http, "POST", "/pay", body), answer(False, f"Sold out {HOSTILE}"))
    assert refused["ok"] is False and refused["error_message"] == f"Sold out {HOSTILE}"
    paid, _ = await asyncio.gather(call(http, "POST", "/pay", body), answer(True))
    assert paid["ok"] is True and paid["message"]["successful_payment"]["total_amount"] == 40
    tg.pre_checkout_timeout = 0.2
    late = await call(http, "POST", "/pay", body)
    assert late["ok"] is False and late["reason"] == "timeout"
    assert "is not an invoice" in (await call(http, "POST", "/pay", {"user_id": 503, "message_id": 999},
                                              status=404))["error"]

    link = await bot(tg, "createInvoiceLink", title="Pro", description="30 days", payload="plan:pro",
                     currency="XTR", prices=[{"label": "Pro", "amount": 300}], subscription_period=2592000)
    slug = link.rsplit("/", 1)[-1]
    info = await call(http, "GET", f"/invoices/{slug}")
    assert (info["title"], info["total_amount"], info["subscription_period"]) == ("Pro", 300, 2592000)
    assert "payload" not in info
    await call(http, "GET", "/invoices/nope", status=404)


async def test_join_channel_via_invite_link(tg, http):
    for user_id in (504, 505):
        await call(http, "POST", "/users", {"id": user_id, "first_name": f"U{user_id}"})
    link = (await bot(tg, "createChatInviteLink", chat_id=CHANNEL, member_limit=1))["invite_link"]
    joined = await call(http, "POST", "/join", {"user_id": 504, "link": link})
    assert joined["ok"] and joined["chat"]["id"] == CHANNEL and joined["member"]["status"] == "member"
    assert await call(http, "POST", "/join", {"user_id": 505, "link": link}) == {
        "ok": False, "error": "INVITE_HASH_EXPIRED"}
    await bot(tg, "sendMessage", chat_id=CHANNEL, text="Welcome, members")
    channel = await call(http, "GET", f"/chats/{CHANNEL}")
    assert [m["text"] for m in channel["messages"]] == ["Welcome, members"]
    assert [(m["user"]["id"], m["status"]) for m in channel["members"]] == [(504, "member")]
    assert channel["invite_links"][0]["joined"] == 1


async def test_commands_follow_telegram_scope_order(tg, http):
    await call(http, "POST", "/users", {"id": 506, "first_name": "R", "language_code": "ru"})
    await call(http, "POST", "/users", {"id": 1000, "first_name": "Admin"})
    await bot(tg, "setMyCommands", commands=[{"command": "start", "description": "Start"}])
    await bot(tg, "setMyCommands", commands=[{"command": "start", "description": "Старт"}], language_code="ru")
    await bot(tg, "setMyCommands", commands=[{"command": "stats", "description": "Stats"}],
              scope={"type": "chat", "chat_id": 1000})
    assert (await call(http, "GET", "/commands?user_id=506"))["commands"][0]["description"] == "Старт"
    assert (await call(http, "GET", "/commands?user_id=1000"))["commands"][0]["command"] == "stats"


async def test_files_are_served_safely(tg, http):
    await call(http, "POST", "/users", {"id": 507, "first_name": "F"})
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    photo = await bot(tg, "sendPhoto", chat_id=507, photo=UploadedFile("chart.png", "image/png", png))
    page = await bot(tg, "sendDocument", chat_id=507,
                     document=UploadedFile("report.html", "text/html", b"<script>alert(1)</script>"))
    again = await bot(tg, "sendPhoto", chat_id=507, photo=photo["photo"][-1]["file_id"])  # by file_id
    async with http.get(f"/sandbox/files/{again['photo'][-1]['file_id']}") as resp:
        assert resp.status == 200 and resp.content_type == "image/png" and await resp.read() == png
    async with http.get(f"/sandbox/files/{page['document']['file_id']}") as resp:
        assert resp.content_type == "application/octet-stream"
        assert resp.headers["Content-Disposition"] == 'attachment; filename="report.html"'
        assert resp.headers["Content-Security-Policy"] == "sandbox"
    async with http.get("/sandbox/files/nope") as resp:
        assert resp.status == 404


async def test_events_stream_live_changes_and_ends_on_stop():
    tg = TelegramStandIn(rate_limit=None)
    WebChat(tg)
    await tg.start()
    session = aiohttp.ClientSession()
    try:
        resp = await session.get(f"{tg.base_url}/sandbox/api/events")
        assert resp.content_type == "text/event-stream"

        async def next_event() -> dict:
            while True:
                line = (await asyncio.wait_for(resp.content.readline(), 5)).decode()
                if line.startswith("data: ") and line.strip() != "data: {}":
                    return json.loads(line[len("data: "):])

        tg.add_user(508, HOSTILE)
        tg.send_text(508, "hello")
        event = await next_event()
        assert event["type"] == "message" and event["message"]["text"] == "hello"
        await tg.execute("sendMessage", {"chat_id": 508, "text": "hi", "reply_markup": {
            "keyboard": [[{"text": "Yes"}]]}})
        event = await next_event()
        assert event["reply_keyboard"] == {"keyboard": [[{"text": "Yes"}]]}
        await asyncio.wait_for(tg.stop(), 5)  # the open stream does not hold the shutdown up
        assert await asyncio.wait_for(resp.content.read(), 5) is not None
        resp.release()
    finally:
        await session.close()
        await tg.stop()


def test_static_files_exist():
    assert {p.name for p in Path(STATIC).iterdir()} >= {"index.html", "app.js", "style.css"}
