"""The real dispatcher, routers and middlewares fed updates; a recording session stands in for Telegram."""

from sqlalchemy import func, select

from bot.keyboards import Lang, Menu, SupportReply
from bot.middlewares import ThrottleMiddleware
from db.models import User
from tests.conftest import ADMIN_ID
from tests.support.harness import Harness


def buttons(method) -> list[str]:
    return [b.callback_data for row in method.reply_markup.inline_keyboard for b in row]


async def test_start_shows_welcome_and_main_menu(harness):
    await harness.send(harness.user(1, first_name="Bob"), "/start")
    [sent] = harness.session.of("SendMessage")
    assert "Hi, Bob!" in sent.text
    assert buttons(sent) == [Menu(section=s).pack() for s in
                             ("tokens", "plans", "api", "data", "market", "whales", "orders", "settings", "help")]
    user = await harness.users.get(1)
    assert user.first_name == "Bob" and user.referrer_id is None and user.language == "en"


async def test_hostile_first_name_is_escaped(harness):
    await harness.send(harness.user(2, first_name="<img src=x onerror=alert(1)> & co"), "/start")
    assert "Hi, &lt;img src=x onerror=alert(1)&gt; &amp; co!" in harness.session.of("SendMessage")[-1].text


async def test_start_with_referral_payload_records_referrer_once(harness):
    await harness.send(100, "/start")
    await harness.send(2, "/start ref_100")
    assert (await harness.users.get(2)).referrer_id == 100
    await harness.send(3, "/start")
    await harness.send(3, "/start ref_100")  # not a new user any more: no referrer afterwards
    assert (await harness.users.get(3)).referrer_id is None
    await harness.send(4, "/start ref_999")  # unknown referrer
    await harness.send(5, "/start ref_5")  # self
    await harness.send(6, "/start ref_<script>")  # junk payload
    for uid in (4, 5, 6):
        assert (await harness.users.get(uid)).referrer_id is None
    sent = harness.session.of("SendMessage")
    assert len([m for m in sent if m.text.startswith("👋 Hi")]) == 7  # everyone still got the menu
    # and the referrer was told about the one referral that was recorded
    assert [m.text for m in sent if m.chat_id == 100 and "invite link" in m.text] == [
        "👥 Alice joined through your invite link."]
    assert len(sent) == 8


async def test_russian_client_gets_russian_and_can_switch_language(harness):
    ivan = harness.user(10, first_name="Иван", language_code="ru")
    await harness.send(ivan, "/start")
    assert "Привет, Иван!" in harness.session.of("SendMessage")[-1].text
    await harness.press(ivan, Lang(code="en").pack())
    edit = harness.session.of("EditMessageText")[-1]
    assert "Choose your language" in edit.text
    assert harness.session.of("AnswerCallbackQuery")[-1].text == "Language saved."
    await harness.send(ivan, "/help")
    assert "How it works" in harness.session.of("SendMessage")[-1].text
    assert (await harness.users.get(10)).language == "en"


async def test_forged_language_button_changes_nothing(harness):
    await harness.send(11, "/start")
    await harness.press(11, "lang:xx")
    assert (await harness.users.get(11)).language == "en"
    answer = harness.session.of("AnswerCallbackQuery")[-1]
    assert "no longer active" in answer.text


async def test_menu_buttons_edit_in_place(harness):
    await harness.send(12, "/start")
    sent_before = len(harness.session.of("SendMessage"))
    await harness.press(12, Menu(section="help").pack(), message_id=77)
    await harness.press(12, Menu(section="home").pack(), message_id=77)
    edits = harness.session.of("EditMessageText")
    assert [e.message_id for e in edits] == [77, 77]
    assert "How it works" in edits[0].text and "Choose what you need" in edits[1].text
    assert len(harness.session.of("SendMessage")) == sent_before


async def test_non_admin_stats_is_refused_and_reveals_nothing(harness):
    await harness.send(100, "/start")
    harness.session.clear()
    for command in ("/stats", "/admin", "/refund 1", "/grant 1 pro 30", "/broadcast hi"):
        await harness.send(13, command)
    texts = [m.text for m in harness.session.of("SendMessage")]
    assert texts == ["Sorry, this command is only for the bot's administrators."] * 5
    await harness.press(13, "adm:stats")
    assert "no longer active" in harness.session.of("AnswerCallbackQuery")[-1].text
    assert not harness.session.of("EditMessageText")


async def test_admin_stats_counts_users(harness):
    for uid in (20, 21, 22):
        await harness.send(uid, "/start")
    await harness.users.mark_blocked(22)
    await harness.send(ADMIN_ID, "/stats")
    text = harness.session.of("SendMessage")[-1].text
    assert "Users: 4 · new today 4 · new this week 4 · blocked the bot 1" in text


async def test_paysupport_round_trip(harness):
    alice = harness.user(30, first_name="Alice", username="alice")
    await harness.send(alice, "/paysupport")
    assert "Describe the problem" in harness.session.of("SendMessage")[-1].text
    harness.session.clear()
    await harness.send(alice, "Paid order 17 but got nothing")
    copy = harness.session.of("CopyMessage")
    header = [m for m in harness.session.of("SendMessage") if m.chat_id == ADMIN_ID]
    assert [c.chat_id for c in copy] == [ADMIN_ID] and copy[0].from_chat_id == 30
    assert "Alice @alice" in header[0].text and "<code>30</code>" in header[0].text
    assert buttons(header[0]) == [SupportReply(user_id=30).pack()]
    assert "Sent." in harness.session.texts_to(30)[-1]

    await harness.send(alice, "thanks")  # conversation over: not forwarded again
    assert len(harness.session.of("CopyMessage")) == 1

    harness.session.clear()
    await harness.press(ADMIN_ID, SupportReply(user_id=30).pack())
    await harness.send(ADMIN_ID, "Refunded, sorry for the trouble")
    assert harness.session.texts_to(30) == ["💬 <b>Support:</b>"]
    [reply] = harness.session.of("CopyMessage")
    assert reply.chat_id == 30 and reply.from_chat_id == ADMIN_ID
    assert harness.session.texts_to(ADMIN_ID)[-1] == "✅ Delivered."


async def test_support_reply_to_a_user_who_blocked_the_bot(harness):
    await harness.send(31, "/start")
    harness.session.blocked.add(31)
    await harness.press(ADMIN_ID, SupportReply(user_id=31).pack())
    await harness.send(ADMIN_ID, "hello?")
    assert "blocked the bot" in harness.session.texts_to(ADMIN_ID)[-1]
    assert (await harness.users.get(31)).is_blocked  # the outgoing gate marked them


async def test_non_admin_cannot_use_the_support_reply_button(harness):
    await harness.press(32, SupportReply(user_id=33).pack())
    await harness.send(32, "spoofed answer")
    assert not [c for c in harness.session.of("CopyMessage") if c.chat_id == 33]


async def test_cancel_leaves_a_conversation(harness):
    await harness.send(34, "/paysupport")
    await harness.send(34, "/cancel")
    assert harness.session.texts_to(34)[-1] == "Cancelled."
    await harness.send(34, "hello")
    assert not harness.session.of("CopyMessage")


async def test_throttle_sends_one_notice_then_drops(settings):
    clock = [0.0]
    h = await Harness(settings, throttle=ThrottleMiddleware(limit=3, window=5, clock=lambda: clock[0])).start()
    for _ in range(10):
        await h.send(40, "/help")
    texts = h.session.texts_to(40)
    assert len(texts) == 4 and texts[3].startswith("You're going a bit fast")
    clock[0] += 5.1
    await h.send(40, "/help")
    assert len(h.session.texts_to(40)) == 5 and "How it works" in h.session.texts_to(40)[-1]
    async with h.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(User))).scalar() == 1
    await h.close()


async def test_handler_crash_gives_the_user_an_error_id(harness, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.app.orders, "for_user", broken)
    await harness.send(ADMIN_ID, "/orders")
    text = harness.session.texts_to(ADMIN_ID)[-1]
    assert "something went wrong" in text
    error_id = text.split("<code>")[1].split("</code>")[0]
    assert any(error_id in r.getMessage() for r in caplog.records)


async def test_unknown_text_gets_a_hint(harness):
    await harness.send(50, "what is this")
    assert "/start" in harness.session.texts_to(50)[-1]
