"""The admin panel reaches broadcast, user lookup, grant and signal with buttons: each asks for what the typed
command takes and then does what the command does. Broadcasts can leave the admins out and say how long
sending takes."""

import pytest
from sqlalchemy import select

from db.models_signals import Outbox
from handlers.admin.broadcast import BcAdmins
from handlers.admin.panel import AdminMenu
from tests.conftest import ADMIN_ID, make_settings
from tests.support.harness import Harness

OTHER_ADMIN = 9002


def labels(method) -> list[str]:
    return [b.text for row in method.reply_markup.inline_keyboard for b in row]


def last_to(h: Harness, chat_id: int):
    return [m for m in h.session.of("SendMessage") if m.chat_id == chat_id][-1]


async def seen(h: Harness, *ids: int) -> None:
    for uid in ids:
        await h.users.seen(uid, username=None, first_name="U", language_code="en")


async def broadcast_rows(h: Harness) -> list[int]:
    async with h.db.session() as session:
        return sorted(await session.scalars(select(Outbox.user_id).where(Outbox.kind == "broadcast")))


async def test_the_panel_has_buttons_for_broadcast_user_grant_and_signal(harness):
    await harness.send(ADMIN_ID, "/admin")
    shown = labels(harness.session.of("SendMessage")[-1])
    for label in ("📣 Broadcast", "👤 Find a user", "🎁 Grant a plan", "📈 Post a signal"):
        assert label in shown


async def test_find_a_user_button_asks_then_shows_the_card(harness):
    await harness.users.seen(55, username="bob", first_name="Bob", language_code="en")
    await harness.press(ADMIN_ID, AdminMenu(action="user").pack())
    assert "Send the user's id or @username" in harness.session.texts_to(ADMIN_ID)[-1]
    await harness.send(ADMIN_ID, "@bob")
    card = harness.session.texts_to(ADMIN_ID)[-1]
    assert "<b>Bob</b> @bob" in card and "<code>55</code>" in card
    await harness.send(ADMIN_ID, "@bob")  # one lookup per tap: plain text afterwards is not a lookup
    assert "didn't understand" in harness.session.texts_to(ADMIN_ID)[-1]


async def test_grant_button_asks_then_grants(harness):
    await seen(harness, 56)
    await harness.press(ADMIN_ID, AdminMenu(action="grant").pack())
    assert "Send USER_ID PLAN DAYS" in harness.session.texts_to(ADMIN_ID)[-1]
    await harness.send(ADMIN_ID, "56 pro 30")
    assert "User 56 has the Pro plan" in harness.session.texts_to(ADMIN_ID)[-1]
    assert (await harness.app.subscriptions.current(56)).plan.code == "pro"
    assert "You've been given the <b>Pro</b> plan for 30 days" in harness.session.texts_to(56)[-1]


async def test_grant_button_with_a_bad_line_gets_the_usage(harness):
    await harness.press(ADMIN_ID, AdminMenu(action="grant").pack())
    await harness.send(ADMIN_ID, "56 gold 30")
    assert "There's no paid plan called that." in harness.session.texts_to(ADMIN_ID)[-1]


async def test_signal_button_asks_then_posts(harness):
    await harness.press(ADMIN_ID, AdminMenu(action="signal").pack())
    assert "Send the line now" in harness.session.texts_to(ADMIN_ID)[-1]
    await harness.send(ADMIN_ID, "crypto SOL/USDT long 142.5 150,158 136 4h retest")
    assert "✅ Signal #1 stored" in harness.session.texts_to(ADMIN_ID)[-1]


async def test_broadcast_button_starts_the_broadcast(harness):
    await seen(harness, 57)
    await harness.press(ADMIN_ID, AdminMenu(action="broadcast").pack())
    assert "Send me the message to broadcast" in harness.session.texts_to(ADMIN_ID)[-1]
    await harness.send(ADMIN_ID, "Hello all")
    assert "Who should receive it?" in harness.session.texts_to(ADMIN_ID)[-1]


@pytest.fixture
async def two_admins(database_url):
    h = await Harness(make_settings(database_url=database_url, admin_ids=[ADMIN_ID, OTHER_ADMIN],
                                    telegram_rate_limit=2)).start()
    yield h
    await h.close()


async def test_a_broadcast_can_leave_the_admins_out(two_admins):
    h = two_admins
    await seen(h, ADMIN_ID, OTHER_ADMIN, 61, 62, 63)
    await h.send(ADMIN_ID, "/broadcast")
    await h.send(ADMIN_ID, "News")
    assert "Everyone · 5" in labels(last_to(h, ADMIN_ID))
    assert "👥 Admins included · tap to leave them out" in labels(last_to(h, ADMIN_ID))
    await h.press(ADMIN_ID, BcAdmins(exclude=True).pack())
    edited = h.session.of("EditMessageText")[-1]
    assert "Everyone · 3" in labels(edited) and "👤 Admins left out · tap to include them" in labels(edited)
    await h.press(ADMIN_ID, "bca:all")
    confirm = h.session.texts_to(ADMIN_ID)[-1]
    assert "3 recipients" in confirm and "Admins are left out." in confirm
    assert "Sending takes about 2 seconds." in confirm  # 3 messages at TELEGRAM_RATE_LIMIT=2 per second
    await h.press(ADMIN_ID, "bcc:1")
    assert await broadcast_rows(h) == [61, 62, 63]
    queued = [t for t in h.session.texts_to(ADMIN_ID) if t.startswith("Queued for")][-1]
    assert queued == "Queued for 3 recipients. Sending takes about 2 seconds."


async def test_admins_get_the_broadcast_unless_left_out(two_admins):
    h = two_admins
    await seen(h, ADMIN_ID, OTHER_ADMIN, 61)
    await h.send(ADMIN_ID, "/broadcast")
    await h.send(ADMIN_ID, "News")
    await h.press(ADMIN_ID, "bca:all")
    await h.press(ADMIN_ID, "bcc:1")
    assert await broadcast_rows(h) == [61, ADMIN_ID, OTHER_ADMIN]


async def test_a_long_broadcast_says_minutes(two_admins):
    h = two_admins
    await seen(h, *range(100, 340))
    await h.send(ADMIN_ID, "/broadcast")
    await h.send(ADMIN_ID, "News")
    await h.press(ADMIN_ID, "bca:all")
    assert "Sending takes about 2 minutes." in h.session.texts_to(ADMIN_ID)[-1]  # 240 at 2 per second
