"""The Telegram Bot API stand-in, driven through a real aiogram Bot over HTTP."""

import asyncio
import time

import aiohttp
import pytest
import pytest_asyncio
from aiogram import Dispatcher, F
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox.telegram import TelegramStandIn, parse_text

USER = 42
pytestmark = pytest.mark.asyncio


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in pairs])


@pytest_asyncio.fixture
async def tg():
    async with TelegramStandIn() as standin:
        standin.add_user(USER, "Alice", username="alice")
        yield standin


async def raw(tg, method, *, http="POST", **kwargs):
    async with aiohttp.ClientSession() as session, session.request(
        http, f"{tg.base_url}/bot123:ABC/{method}", **kwargs
    ) as resp:
        return resp.status, await resp.json()


async def test_get_me_and_token_recorded(tg, bot):
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (777000001, "sandbox_bot", True)
    assert tg.tokens == {"123:ABC"}
    assert tg.calls_of("getme")[0].ok


async def test_send_message_with_keyboard_round_trips(tg, bot):
    sent = await bot.send_message(USER, "<b>Plans</b> &amp; prices", parse_mode="HTML",
                                  reply_markup=keyboard(("Buy", "buy:1"), ("Back", "back")))
    assert sent.text == "Plans & prices"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 5)]
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "buy:1"
    assert sent.from_user.id == 777000001 and sent.chat.id == USER

    (stored,) = tg.chat_messages(USER)
    assert stored["message_id"] == sent.message_id == 1
    assert stored["reply_markup"] == {"inline_keyboard": [
        [{"text": "Buy", "callback_data": "buy:1"}], [{"text": "Back", "callback_data": "back"}]]}
    assert tg.last_bot_message(USER)["text"] == "Plans & prices"
    # complex multipart fields arrive decoded
    assert tg.calls_of("sendMessage")[0].params["reply_markup"]["inline_keyboard"][1][0]["text"] == "Back"
    assert (await bot.send_message(USER, "again")).message_id == 2


async def test_edit_message_text_in_place(tg, bot):
    sent = await bot.send_message(USER, "v1", reply_markup=keyboard(("A", "a")))
    edited = await bot.edit_message_text("v2", chat_id=USER, message_id=sent.message_id,
                                         reply_markup=keyboard(("B", "b")))
    assert edited.text == "v2" and edited.edit_date
    with pytest.raises(TelegramBadRequest, match="message is not modified: specified new message"):
        await bot.edit_message_text("v2", chat_id=USER, message_id=sent.message_id,
                                    reply_markup=keyboard(("B", "b")))
    # editing without reply_markup removes the keyboard, as Telegram does
    await bot.edit_message_text("v2", chat_id=USER, message_id=sent.message_id)
    (stored,) = tg.chat_messages(USER)
    assert stored["text"] == "v2" and "reply_markup" not in stored
    await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id,
                                        reply_markup=keyboard(("C", "c")))
    assert tg.chat_messages(USER)[0]["reply_markup"]["inline_keyboard"][0][0]["text"] == "C"
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=99)


async def test_delete_message_and_events(tg, bot):
    events = tg.subscribe()
    sent = await bot.send_message(USER, "temp")
    await bot.edit_message_text("temp2", chat_id=USER, message_id=sent.message_id)
    assert await bot.delete_message(USER, sent.message_id)
    assert tg.chat_messages(USER) == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    kinds = [events.get_nowait() for _ in range(3)]
    assert [(e["type"], e["chat_id"]) for e in kinds] == [
        ("message", USER), ("edit", USER), ("delete", USER)]
    assert kinds[0]["message"]["text"] == "temp"  # a snapshot, not later state
    tg.unsubscribe(events)


async def test_long_poll_returns_early_and_honours_offset(tg, bot):
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    assert not poll.done()
    started = time.monotonic()
    tg.send_text(USER, "/start@sandbox_bot ref_7")
    (update,) = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1
    msg = update.message
    assert msg.text == "/start@sandbox_bot ref_7" and msg.from_user.username == "alice"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [("bot_command", 0, 18)]
    # unconfirmed updates come again; offset confirms them
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [update.update_id]
    tg.send_text(USER, "hello")
    (second,) = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert second.message.text == "hello" and second.message.entities is None
    assert await bot.get_updates(offset=second.update_id + 1, timeout=0) == []
    assert tg.updates == []


async def test_press_produces_callback_query(tg, bot):
    sent = await bot.send_message(USER, "Pick", reply_markup=keyboard(("Buy", "buy:1")))
    with pytest.raises(ValueError, match="no button with callback_data 'nope'"):
        tg.press(USER, sent.message_id, "nope")
    with pytest.raises(ValueError):
        tg.press(USER, 99, "buy:1")
    query_id = tg.press_button(USER, "Buy")
    (update,) = await bot.get_updates(timeout=0)
    query = update.callback_query
    assert (query.id, query.data, query.from_user.id) == (query_id, "buy:1", USER)
    assert query.message.message_id == sent.message_id and query.message.text == "Pick"
    assert await bot.answer_callback_query(query_id, text="Done", show_alert=True)
    assert tg.callback_answers[query_id]["text"] == "Done"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query_id)


async def test_rate_limit_raises_retry_after(tg, bot):
    tg.rate_limit = 3
    for i in range(3):
        await bot.send_message(USER, f"m{i}")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "too many")
    assert caught.value.retry_after >= 1
    assert tg.calls[-1].error_code == 429
    await bot.send_chat_action(USER, "typing")  # not a sending method
    tg.rate_limit = None
    await bot.send_message(USER, "unlimited")
    assert len(tg.chat_messages(USER)) == 4


async def test_blocked_user_gets_forbidden(tg, bot):
    tg.block(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")
    (update,) = await bot.get_updates(timeout=0)
    assert update.my_chat_member.new_chat_member.status == "kicked"
    tg.unblock(USER)
    await bot.send_message(USER, "welcome back")


async def test_inject_fault(tg, bot):
    tg.inject_fault("sendMessage", error_code=500, description="Internal Server Error", times=2)
    tg.inject_fault("sendmessage", error_code=429, description="Too Many Requests: retry after 7",
                    retry_after=7)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(USER, "x")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(USER, "x")
    assert caught.value.retry_after == 7
    await bot.send_message(USER, "x")
    assert [c.error_code for c in tg.calls_of("sendMessage")] == [500, 500, 429, None]
    assert len(tg.chat_messages(USER)) == 1


async def test_wire_format_errors_and_encodings(tg):
    assert await raw(tg, "noSuchMethod", http="GET") == (
        404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
    status, body = await raw(tg, "SENDMESSAGE", http="GET", params={"chat_id": USER, "text": "q"})
    assert status == 200 and body["result"]["text"] == "q"
    status, body = await raw(tg, "sendMessage", data={"chat_id": str(USER), "text": "form"})
    assert status == 200 and body["result"]["message_id"] == 2
    status, body = await raw(tg, "sendMessage", json={"chat_id": USER, "text": "json"})
    assert status == 200 and body["result"]["chat"]["type"] == "private"
    assert await raw(tg, "sendMessage", json={"chat_id": 5, "text": "x"}) == (
        400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
    assert (await raw(tg, "sendMessage", json={"chat_id": USER}))[1]["description"] == (
        "Bad Request: message text is empty")
    assert (await raw(tg, "sendMessage", json={"text": "x"}))[1]["description"] == (
        "Bad Request: chat_id is empty")


async def test_webhook_delivery_with_secret_and_retry(tg, bot):
    received: list[tuple[str | None, dict]] = []
    failures = [1]

    async def receiver(request: web.Request) -> web.Response:
        if failures and failures.pop():
            return web.Response(status=500)
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                         await request.json()))
        return web.json_response({"method": "sendMessage", "chat_id": USER, "text": "in-reply"})

    app = web.Application()
    app.router.add_post("/hook", receiver)
    async with TestServer(app) as server:
        tg.webhook_retry_delay = 0.02
        url = str(server.make_url("/hook"))
        assert await bot.set_webhook(url, secret_token="s3cret_-X")
        with pytest.raises(TelegramConflictError):
            await bot.get_updates(timeout=0)
        tg.send_text(USER, "/plans")
        await tg.wait_for(lambda: received, timeout=2)
        secret, update = received[0]
        assert secret == "s3cret_-X" and update["message"]["text"] == "/plans"
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert "500" in info.last_error_message
        # a method returned in the webhook response is executed
        assert (await tg.wait_for(lambda: tg.last_bot_message(USER)))["text"] == "in-reply"
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""


async def test_webhook_delivers_chats_in_parallel_and_each_chat_in_order(tg, bot):
    """As Telegram: up to max_connections requests at once, but a chat's next update only after its last one
    was answered, so one slow chat holds back only itself."""
    arrivals: list[tuple[int, str]] = []
    slow = asyncio.Event()

    async def receiver(request: web.Request) -> web.Response:
        update = await request.json()
        chat, text = update["message"]["chat"]["id"], update["message"]["text"]
        if text == "slow":
            await slow.wait()
        arrivals.append((chat, text))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", receiver)
    others = range(USER + 1, USER + 6)
    for user in others:
        tg.add_user(user)
    async with TestServer(app) as server:
        assert await bot.set_webhook(str(server.make_url("/hook")), max_connections=4)
        tg.send_text(USER, "slow")
        tg.send_text(USER, "after slow")
        for user in others:
            tg.send_text(user, "one")
            tg.send_text(user, "two")
        await tg.wait_for(lambda: len(arrivals) == 10, timeout=3)  # the slow chat holds back only itself
        assert all((user, "one") in arrivals for user in others)
        assert [t for c, t in arrivals if c == USER + 1] == ["one", "two"]
        slow.set()
        await tg.wait_for(lambda: len(arrivals) == 12, timeout=3)
        assert [t for c, t in arrivals if c == USER] == ["slow", "after slow"]
        assert tg.updates == []


async def test_commands_forward_copy_and_upload(tg, bot):
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    await bot.set_my_commands([BotCommand(command="admin", description="Panel")],
                              scope=BotCommandScopeChat(chat_id=USER), language_code="en")
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert tg.commands({"type": "chat", "chat_id": USER}, "en")[0]["command"] == "admin"
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == []

    tg.add_channel(-1001, "Signals", username="signals")
    post = await bot.send_message("@signals", "BTC long")
    assert post.sender_chat.id == -1001 and post.from_user is None
    forwarded = await bot.forward_message(USER, -1001, post.message_id)
    assert forwarded.forward_origin.type == "channel" and forwarded.text == "BTC long"
    copied = await bot.copy_message(USER, -1001, post.message_id)
    assert tg.chat_messages(USER)[-1]["message_id"] == copied.message_id
    assert "forward_origin" not in tg.chat_messages(USER)[-1]

    photo = await bot.send_photo(USER, BufferedInputFile(b"PNG", "chart.png"), caption="chart")
    assert photo.caption == "chart" and tg.files[photo.photo[0].file_id] == b"PNG"


async def test_parse_modes():
    assert parse_text("*bold* _it_ `c` \\.", "MarkdownV2") == ("bold it c .", [
        {"type": "bold", "offset": 0, "length": 4}, {"type": "italic", "offset": 5, "length": 2},
        {"type": "code", "offset": 8, "length": 1}])
    assert parse_text("[site](https://x.io) 💎<i>é</i>", "HTML")[1] == [
        {"type": "italic", "offset": 23, "length": 1}]
    text, entities = parse_text('<a href="https://x.io">x</a>😀<b>b</b>', "HTML")
    assert text == "x😀b" and entities[1] == {"type": "bold", "offset": 3, "length": 1}
    for src, mode, error in [
        ("<h1>x</h1>", "HTML", 'Unsupported start tag "h1" at byte offset 0'),
        ("<b>x</i>", "HTML", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<b>x", "HTML", 'Can\'t find end tag corresponding to start tag "b"'),
        ("1 < 2", "HTML", 'Unsupported start tag "" at byte offset 2'),
        ("Price 1.5", "MarkdownV2", "Character '.' is reserved"),
        ("*open", "MarkdownV2", "Can't find end of Bold entity at byte offset 0"),
        ("a *b", "Markdown", "Can't find end of the entity starting at byte offset 2"),
    ]:
        with pytest.raises(Exception, match="can't parse entities") as caught:
            parse_text(src, mode)
        assert error in caught.value.description


async def test_wait_for_timeout_is_helpful(tg, bot):
    await bot.send_message(USER, "x")
    with pytest.raises(TimeoutError, match=r"within 0.05s.*last calls: sendMessage -> ok"):
        await tg.wait_for(lambda: tg.chat_messages(7), timeout=0.05)

    def never():
        return False

    with pytest.raises(TimeoutError, match="never"):
        await tg.wait_for(never, timeout=0.02)


async def test_real_dispatcher_end_to_end(tg, bot):
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Welcome!", reply_markup=keyboard(("Plans", "plans")))

    @dp.callback_query(F.data == "plans")
    async def plans(query: CallbackQuery) -> None:
        await query.message.edit_text("Plans: Pro")
        await query.answer("ok")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    try:
        tg.send_text(USER, "/start")
        welcome = await tg.wait_for(lambda: tg.last_bot_message(USER))
        assert welcome["text"] == "Welcome!"
        query_id = tg.press(USER, welcome["message_id"], "plans")
        await tg.wait_for(lambda: query_id in tg.callback_answers)
        assert tg.last_bot_message(USER)["text"] == "Plans: Pro"
        assert tg.callback_answers[query_id]["text"] == "ok"
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 2)
