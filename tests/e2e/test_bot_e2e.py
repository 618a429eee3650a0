"""The real app over real HTTP against the Telegram stand-in: long polling, menus, commands, faults."""

from aiogram.types import BotCommandScopeChat

from tests.conftest import ADMIN_ID


def has_text(telegram, chat_id, fragment):
    def check():
        message = telegram.last_bot_message(chat_id)
        return message if message and fragment in message.get("text", "") else None
    return check


async def test_start_shows_the_menu_and_a_button_edits_it(app, telegram):
    telegram.add_user(501, first_name="Eve")
    telegram.send_text(501, "/start")
    menu = await telegram.wait_for(has_text(telegram, 501, "Hi, Eve!"))
    labels = [b["text"] for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["🤖 AI tokens", "📈 Signal plans", "🔌 Developer API", "📦 Datasets", "🏪 Signal marketplace",
                      "🐋 Whale leaderboard",
                      "🧾 My orders", "⚙️ Settings", "❓ Help"]

    telegram.press_button(501, "❓ Help")
    edited = await telegram.wait_for(has_text(telegram, 501, "How it works"))
    assert edited["message_id"] == menu["message_id"]  # edited in place, not a new message
    assert len(telegram.chat_messages(501, bot_only=True)) == 1
    assert await telegram.wait_for(lambda: telegram.callback_answers)


async def test_commands_registered_for_users_and_admins(app, telegram):
    users = [c["command"] for c in telegram.commands()]
    assert users[:3] == ["start", "tokens", "plans"] and "stats" not in users
    russian = telegram.commands(language_code="ru")
    assert russian[0]["description"] == "Главное меню"
    scope = BotCommandScopeChat(chat_id=ADMIN_ID).model_dump(exclude_none=True)
    assert telegram.commands(scope) == []  # the admin has not opened the bot yet: Telegram refuses
    telegram.add_user(ADMIN_ID)
    telegram.send_text(ADMIN_ID, "/start")
    await telegram.wait_for(lambda: telegram.commands(scope))
    admin = [c["command"] for c in telegram.commands(scope)]
    assert {"admin", "stats", "refund", "grant", "start"} <= set(admin)


async def test_blocked_user_is_marked(app, telegram):
    telegram.add_user(502)
    telegram.send_text(502, "/start")
    await telegram.wait_for(has_text(telegram, 502, "Hi"))
    telegram.block(502)
    telegram.send_text(502, "/help")  # the reply is refused with 403
    assert await telegram.wait_for(lambda: telegram.calls_of("sendMessage")[-1].error_code == 403)
    assert await telegram.wait_for(lambda: _blocked(app, 502))


async def _blocked(app, user_id):
    user = await app.users.get(user_id)
    return user is not None and user.is_blocked


async def test_flood_control_is_ridden_out(app, telegram):
    telegram.add_user(503)
    telegram.inject_fault("sendMessage", error_code=429, description="Too Many Requests: retry after 1",
                          retry_after=1)
    telegram.send_text(503, "/start")
    await telegram.wait_for(has_text(telegram, 503, "Hi"), timeout=5)
    failures = [c for c in telegram.calls_of("sendMessage") if c.error_code == 429]
    assert len(failures) == 1 and app.gate.stats.retry_after >= 1


async def test_a_429_storm_is_survived(app, telegram):
    """Telegram (the stand-in) allows 20 msg/s while 60 users press /start at once and the bot's own
    limit is far higher: flood-control answers pile up, the gate pauses everyone and retries, and every
    user gets exactly one menu."""
    telegram.rate_limit = 20
    users = range(600, 660)
    for uid in users:
        telegram.add_user(uid)
        telegram.send_text(uid, "/start")

    def everyone_served():
        return all(telegram.last_bot_message(uid) for uid in users)
    await telegram.wait_for(everyone_served, timeout=30)
    refused = [c for c in telegram.calls_of("sendMessage") if c.error_code == 429]
    assert refused and app.gate.stats.retry_after >= 1  # there was a storm, and it was ridden out
    assert all(len(telegram.chat_messages(uid, bot_only=True)) == 1 for uid in users)  # no duplicates


async def test_tapping_the_language_already_chosen_just_confirms_it(app, telegram):
    telegram.add_user(502, first_name="Ann")
    telegram.send_text(502, "/settings")
    await telegram.wait_for(has_text(telegram, 502, "Choose your language"))
    query = telegram.press_button(502, "✓ 🇬🇧 English")  # the screen already shows English as chosen
    answer = await telegram.wait_for(lambda: telegram.callback_answers.get(query))
    assert answer.get("text") == "Language saved."
    assert not any("went wrong" in m.get("text", "") for m in telegram.chat_messages(502, bot_only=True))
