"""Support threads: each admin reads a request in their own language, the user reads the answer in theirs, and
the user's reply to an answer (Telegram's Reply or the answer's button) reaches the admins again."""

from datetime import UTC, datetime

import pytest
from aiogram.types import Chat, Message, Update

from bot.keyboards import SupportReply
from handlers.user.support import SupportFollowUp
from tests.conftest import ADMIN_ID, make_settings
from tests.support.harness import Harness
from tests.support.recording import BOT_USER

OTHER_ADMIN = 9002


@pytest.fixture
async def two_admins(database_url):
    h = await Harness(make_settings(database_url=database_url, admin_ids=[ADMIN_ID, OTHER_ADMIN])).start()
    yield h
    await h.close()


def headers_to(h: Harness, chat_id: int) -> list[str]:
    return [m.text for m in h.session.of("SendMessage") if m.chat_id == chat_id and m.reply_markup
            and any(b.callback_data == SupportReply(user_id=30).pack()
                    for row in m.reply_markup.inline_keyboard for b in row)]


async def reply_to(h: Harness, user_id: int, answer: Message, text: str) -> None:
    """The user answers `answer` with Telegram's Reply: Telegram puts the answered message in the update."""
    message = Message(message_id=500 + len(h.session.calls), date=datetime.now(UTC),
                      chat=Chat(id=user_id, type="private"), from_user=h.user(user_id), text=text,
                      reply_to_message=answer)
    await h.dp.feed_update(h.bot, Update(update_id=10_000 + len(h.session.calls), message=message))


async def answer_as_admin(h: Harness, user_id: int, text: str) -> Message:
    """An admin taps Reply under a request and answers; returns the answer as the user's chat shows it."""
    await h.press(ADMIN_ID, SupportReply(user_id=user_id).pack())
    await h.send(ADMIN_ID, text)
    copy = [c for c in h.session.of("CopyMessage") if c.chat_id == user_id][-1]
    return Message(message_id=777, date=datetime.now(UTC), chat=Chat(id=user_id, type="private"),
                   from_user=BOT_USER, text=text, reply_markup=copy.reply_markup)


async def test_each_admin_reads_the_request_in_their_own_language(two_admins):
    h = two_admins
    await h.send(h.user(ADMIN_ID, language_code="ru"), "/start")
    await h.send(h.user(OTHER_ADMIN, language_code="en"), "/start")
    alice = h.user(30, first_name="Alice", language_code="en")
    await h.send(alice, "/paysupport")
    h.session.clear()
    await h.send(alice, "Paid order 17 but got nothing")
    [ru] = headers_to(h, ADMIN_ID)
    [en] = headers_to(h, OTHER_ADMIN)
    assert ru.startswith("📩 Обращение в поддержку от Alice")
    assert en.startswith("📩 Support request from Alice")
    ru_button = [m for m in h.session.of("SendMessage") if m.chat_id == ADMIN_ID][-1].reply_markup
    assert ru_button.inline_keyboard[0][0].text == "↩️ Ответить"
    assert "Sent." in h.session.texts_to(30)[-1]


async def test_the_answer_reaches_the_user_in_the_users_language(harness):
    await harness.send(harness.user(ADMIN_ID, language_code="en"), "/start")
    await harness.send(harness.user(31, language_code="ru"), "/start")
    harness.session.clear()
    await answer_as_admin(harness, 31, "Refunded")
    assert harness.session.texts_to(31) == ["💬 <b>Поддержка:</b>"]
    [copy] = harness.session.of("CopyMessage")
    assert copy.reply_markup.inline_keyboard[0][0].text == "↩️ Ответить"
    assert harness.session.texts_to(ADMIN_ID)[-1] == "✅ Delivered."


async def test_a_reply_to_the_answer_continues_the_thread(harness):
    alice = harness.user(30, first_name="Alice", language_code="ru")
    await harness.send(alice, "/paysupport")
    await harness.send(alice, "Оплатил, но ничего не пришло")
    answer = await answer_as_admin(harness, 30, "Which order?")
    harness.session.clear()

    await reply_to(harness, 30, answer, "Заказ 17")
    [copy] = harness.session.of("CopyMessage")
    assert copy.chat_id == ADMIN_ID and copy.from_chat_id == 30
    [header] = headers_to(harness, ADMIN_ID)
    assert header.startswith("💬 Follow-up from Alice")
    assert not any("Не понял" in t or "didn't understand" in t for t in harness.session.texts_to(30))
    assert "✅" in harness.session.texts_to(30)[-1]

    # the admin answers the follow-up with the same Reply button: the thread goes on
    harness.session.clear()
    await answer_as_admin(harness, 30, "Refunded, sorry")
    assert harness.session.texts_to(ADMIN_ID)[-1] == "✅ Delivered."


async def test_the_answers_reply_button_takes_the_next_message(harness):
    await harness.send(30, "/start")
    answer = await answer_as_admin(harness, 30, "Which order?")
    harness.session.clear()
    await harness.press(30, SupportFollowUp().pack(), message_id=answer.message_id)
    assert "Write your reply" in harness.session.texts_to(30)[-1]
    await harness.send(30, "Order 17")
    assert [c.chat_id for c in harness.session.of("CopyMessage")] == [ADMIN_ID]
    await harness.send(30, "thanks")  # one message per tap: not forwarded again
    assert len(harness.session.of("CopyMessage")) == 1


async def test_a_reply_to_any_other_bot_message_is_not_sent_to_the_admins(harness):
    await harness.send(30, "/start")
    menu = harness.session.of("SendMessage")[-1]
    shown = Message(message_id=5, date=datetime.now(UTC), chat=Chat(id=30, type="private"), from_user=BOT_USER,
                    text=menu.text, reply_markup=menu.reply_markup)
    harness.session.clear()
    await reply_to(harness, 30, shown, "hello?")
    assert not harness.session.of("CopyMessage")
    assert "didn't understand" in harness.session.texts_to(30)[-1]
