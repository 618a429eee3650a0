"""The admin panel over real HTTP: tapping a section button that already shows its section (Telegram
answers "message is not modified") just stops the spinner, with no error message."""

import pytest

from tests.conftest import ADMIN_ID


def showing(telegram, fragment):
    def check():
        message = telegram.last_bot_message(ADMIN_ID)
        return message if message and fragment in message.get("text", "") else None
    return check


@pytest.mark.parametrize(("button", "shown"), [("🧭 Everything else", "Admin commands"),
                                               ("📝 Content", "Channel posts")])
async def test_tapping_a_panel_section_again_keeps_it(app, telegram, button, shown):
    telegram.add_user(ADMIN_ID, first_name="Admin")
    telegram.send_text(ADMIN_ID, "/admin")
    await telegram.wait_for(showing(telegram, "Admin panel"))
    first = telegram.press_button(ADMIN_ID, button)
    await telegram.wait_for(lambda: first in telegram.callback_answers)
    screen = await telegram.wait_for(showing(telegram, shown))
    again = telegram.press_button(ADMIN_ID, button)  # the message already shows this section
    await telegram.wait_for(lambda: again in telegram.callback_answers)
    assert telegram.last_bot_message(ADMIN_ID) == screen
    assert not any("went wrong" in m.get("text", "") for m in telegram.chat_messages(ADMIN_ID, bot_only=True))
