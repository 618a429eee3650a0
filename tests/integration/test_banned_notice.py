"""A banned user is told once that access is closed, in their language's words, then gets silence; a new ban
tells them again (issue #16)."""

from __future__ import annotations

from tests.support.harness import Harness

BANNED = 808
CLOSED = "⛔ Access to this bot is closed for your account."


async def test_a_banned_user_is_told_once_then_silence(harness):
    h: Harness = harness
    await h.send(BANNED, "/start")
    assert await h.users.set_banned(BANNED, True) is False
    h.session.clear()
    await h.send(BANNED, "/start")
    assert h.session.texts_to(BANNED) == [CLOSED]
    await h.send(BANNED, "/help")
    await h.press(BANNED, "menu:home")
    assert h.session.texts_to(BANNED) == [CLOSED]  # said once: the rest get no answer at all
    assert not h.session.of("AnswerCallbackQuery")

    restarted = await Harness(h.settings).start()  # a new process: the database still knows they were told
    try:
        await restarted.send(BANNED, "/start")
        assert restarted.session.texts_to(BANNED) == []
    finally:
        await restarted.close()

    await h.users.set_banned(BANNED, False)
    await h.send(BANNED, "/start")
    assert "Hi" in h.session.texts_to(BANNED)[-1]
    await h.users.set_banned(BANNED, True)  # a new ban is told again, once
    await h.send(BANNED, "/start")
    await h.send(BANNED, "/start")
    assert h.session.texts_to(BANNED)[-1] == CLOSED and h.session.texts_to(BANNED).count(CLOSED) == 2
