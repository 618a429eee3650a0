"""User screens over real HTTP: a tap whose screen the message already shows (a double tap, or the same
button again; Telegram answers "message is not modified") keeps the screen and stops the spinner, with
no error message; the toast a tap brings comes every time."""

import pytest

USER = 501


def showing(telegram, fragment):
    def check():
        message = telegram.last_bot_message(USER)
        return message if message and fragment in message.get("text", "") else None
    return check


async def tap(telegram, message_id: int, data: str) -> dict:
    """One tap, handled: its answer."""
    query = telegram.press(USER, message_id, data)
    await telegram.wait_for(lambda: query in telegram.callback_answers)
    return telegram.callback_answers[query]


async def double_tap(telegram, message_id: int, data: str) -> None:
    """Two taps before the first is handled: one edit shows the screen, the other finds it shown."""
    first, second = telegram.press(USER, message_id, data), telegram.press(USER, message_id, data)
    await telegram.wait_for(lambda: {first, second} <= telegram.callback_answers.keys())


@pytest.mark.parametrize(("command", "start", "data", "shown"), [
    ("/help", "How it works", "menu:home", "Choose what you need"),
    ("/start", "Choose what you need", "menu:help", "How it works"),
    ("/start", "Choose what you need", "menu:tokens", "AI tokens"),
    ("/start", "Choose what you need", "menu:orders", "no orders"),
    ("/start", "Choose what you need", "menu:settings", "Choose your language"),
    ("/signals", "Your signals", "sg:filters", "Signal filters"),
])
async def test_a_double_tap_shows_the_screen_once_without_an_error(app, telegram, command, start, data, shown):
    telegram.add_user(USER, first_name="Dana")
    telegram.send_text(USER, command)
    message = await telegram.wait_for(showing(telegram, start))
    await double_tap(telegram, message["message_id"], data)
    screen = await telegram.wait_for(showing(telegram, shown))
    assert screen["message_id"] == message["message_id"]
    telegram.send_text(USER, "/terms")  # one more round trip: an error message would be in the chat by now
    await telegram.wait_for(lambda: telegram.last_bot_message(USER)["message_id"] > screen["message_id"])
    assert not any("went wrong" in m.get("text", "") for m in telegram.chat_messages(USER, bot_only=True))


async def test_clearing_filters_twice_says_so_both_times(app, telegram):
    telegram.add_user(USER, first_name="Dana")
    telegram.send_text(USER, "/signals")
    signals = await telegram.wait_for(showing(telegram, "Your signals"))
    await tap(telegram, signals["message_id"], "sg:filters")
    for _ in range(2):
        answer = await tap(telegram, signals["message_id"], "sg:clear")
        assert answer.get("text") == "Filters cleared: you get every signal."
    assert "Signal filters" in telegram.last_bot_message(USER)["text"]
    assert not any("went wrong" in m.get("text", "") for m in telegram.chat_messages(USER, bot_only=True))
