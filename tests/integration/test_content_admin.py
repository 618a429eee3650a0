"""Admins drive channel content through the real dispatcher: /post_now, /preview and its buttons, /schedule,
the panel button; and the app registers one cron job per slot only when content is enabled."""

from collections.abc import AsyncIterator

import pytest
from apscheduler.triggers.cron import CronTrigger

from handlers.admin.content import DraftAction
from handlers.admin.panel import AdminMenu
from sandbox.deepseek import DeepSeekStandIn
from tests.conftest import ADMIN_ID, make_settings
from tests.support.harness import Harness

CHANNEL = -1001000000001
OTHER_ADMIN = 9002


@pytest.fixture
async def deepseek() -> AsyncIterator[DeepSeekStandIn]:
    async with DeepSeekStandIn(seed=2) as standin:
        yield standin


@pytest.fixture
def settings(database_url, deepseek):
    return make_settings(database_url=database_url, deepseek_key=deepseek.api_key,
                         deepseek_api_url=deepseek.base_url, telegram_chat_id=CHANNEL,
                         admin_ids=[ADMIN_ID, OTHER_ADMIN], timezone="Europe/Berlin")


def channel(harness: Harness) -> list[str]:
    return harness.session.texts_to(CHANNEL)


def last_to(harness: Harness, chat_id: int):
    return [c.method for c in harness.session.calls
            if c.name in ("SendMessage", "EditMessageText") and c.method.chat_id == chat_id][-1]


def draft_buttons(method) -> list[DraftAction]:
    return [DraftAction.unpack(b.callback_data) for row in method.reply_markup.inline_keyboard for b in row]


async def test_post_now_publishes_the_asked_kind_to_the_channel(harness):
    await harness.send(ADMIN_ID, "/post_now tip")
    (post,) = channel(harness)
    assert "tip" in post.lower() and "momentum" in post.lower()
    assert "The tip post on “momentum” is in the channel." in last_to(harness, ADMIN_ID).text

    await harness.send(ADMIN_ID, "/post_now")  # no kind: the next in the rotation
    assert len(channel(harness)) == 2 and "tip" in channel(harness)[1].lower()


async def test_post_now_refuses_unknown_kinds_and_non_admins(harness):
    await harness.send(ADMIN_ID, "/post_now <b>gossip")
    assert "Usage: /post_now [kind]" in last_to(harness, ADMIN_ID).text
    await harness.send(555, "/post_now market")
    assert last_to(harness, 555).text == "Sorry, this command is only for the bot's administrators."
    await harness.send(555, "/preview")
    assert channel(harness) == [] and len(harness.session.texts_to(555)) == 2


async def test_preview_then_publish_posts_the_draft_exactly_once(harness):
    await harness.send(ADMIN_ID, "/preview promo")
    shown = last_to(harness, ADMIN_ID)
    assert shown.text.startswith("📝 <b>Draft</b> · promo · momentum")
    publish, regenerate, discard = draft_buttons(shown)
    assert (publish.action, regenerate.action, discard.action) == ("pub", "regen", "drop")
    assert channel(harness) == []  # a preview publishes nothing

    await harness.press(ADMIN_ID, publish.pack())
    (post,) = channel(harness)
    assert shown.text.endswith(post)  # exactly what was shown
    assert "is in the channel" in last_to(harness, ADMIN_ID).text

    await harness.press(ADMIN_ID, publish.pack())  # a second tap, or a stale button
    assert len(channel(harness)) == 1
    assert "no longer available" in harness.session.of("AnswerCallbackQuery")[-1].text


async def test_forged_and_foreign_draft_buttons_are_refused(harness):
    await harness.send(ADMIN_ID, "/preview")
    publish = draft_buttons(last_to(harness, ADMIN_ID))[0]
    for user, data in ((ADMIN_ID, DraftAction(action="pub", id=publish.id + 100).pack()),
                       (OTHER_ADMIN, publish.pack()),  # another admin's draft
                       (ADMIN_ID, DraftAction(action="nuke", id=publish.id).pack()),
                       (555, publish.pack())):  # not an admin at all: the router never sees it
        await harness.press(user, data)
    assert channel(harness) == []
    answers = [a.text for a in harness.session.of("AnswerCallbackQuery")]
    assert answers.count("This draft is no longer available. Make a new one with /preview.") == 3
    await harness.press(ADMIN_ID, publish.pack())  # the owner's real button still works
    assert len(channel(harness)) == 1


async def test_regenerate_replaces_the_draft_and_discard_closes_it(harness, deepseek):
    await harness.send(ADMIN_ID, "/preview market")
    first = draft_buttons(last_to(harness, ADMIN_ID))
    await harness.press(ADMIN_ID, first[1].pack())
    edited = last_to(harness, ADMIN_ID)
    second = draft_buttons(edited)
    assert second[0].id != first[0].id and edited.text.startswith("📝 <b>Draft</b> · market")
    assert len(deepseek.calls) == 2

    await harness.press(ADMIN_ID, first[0].pack())  # the replaced draft cannot be published
    await harness.press(ADMIN_ID, second[2].pack())
    assert harness.session.of("EditMessageReplyMarkup")[-1].reply_markup is None
    await harness.press(ADMIN_ID, second[0].pack())  # nor the discarded one
    assert channel(harness) == []


async def test_preview_says_when_the_template_stood_in(harness, deepseek):
    deepseek.fail_mode = "500"
    harness.app.deepseek.backoff = 0
    await harness.send(ADMIN_ID, "/preview community")
    text = last_to(harness, ADMIN_ID).text
    assert "The AI was unavailable (HTTP 500" in text and "💬 <b>Community question: Momentum</b>" in text


async def test_schedule_shows_next_slots_in_the_time_zone_and_last_posts(harness):
    await harness.send(ADMIN_ID, "/post_now market")
    harness.session.blocked.add(CHANNEL)
    await harness.send(ADMIN_ID, "/post_now tip")
    await harness.send(ADMIN_ID, "/schedule")
    text = last_to(harness, ADMIN_ID).text
    assert "Scheduled posts are off" in text
    assert "market · momentum · ✅ posted" in text and "tip · momentum · ❌ failed" in text
    assert "Forbidden" in text


async def test_schedule_when_enabled_lists_slots_and_dry_run(database_url, deepseek):
    settings = make_settings(database_url=database_url, telegram_content_enabled=True,
                             telegram_content_dry_run=True, timezone="Asia/Tokyo",
                             telegram_content_schedules="07:30,21:00")
    harness = await Harness(settings).start()
    try:
        await harness.send(ADMIN_ID, "/schedule")
        text = last_to(harness, ADMIN_ID).text
        assert "Scheduled posts are on: 07:30, 21:00 (Asia/Tokyo)." in text and "Dry run" in text
        slots = [line for line in text.splitlines() if line.startswith("• ")]
        assert len(slots) == 5 and all(line.endswith(("07:30", "21:00")) for line in slots)
        assert "None yet." in text

        harness.app._schedule()
        jobs = {job.id: job for job in harness.app.scheduler.get_jobs()}
        assert {"content_0730", "content_2100", "content_catch_up"} <= set(jobs)
        trigger = jobs["content_0730"].trigger
        assert isinstance(trigger, CronTrigger) and str(trigger.timezone) == "Asia/Tokyo"
        assert {f.name: str(f) for f in trigger.fields}["hour"] == "7"
    finally:
        await harness.close()


async def test_no_content_jobs_when_disabled(harness):
    harness.app._schedule()
    assert not [job.id for job in harness.app.scheduler.get_jobs() if job.id.startswith("content")]


async def test_admin_panel_has_a_content_button(harness):
    await harness.send(ADMIN_ID, "/admin")
    panel = harness.session.of("SendMessage")[-1]
    labels = [b.text for row in panel.reply_markup.inline_keyboard for b in row]
    assert "📝 Content" in labels
    await harness.press(ADMIN_ID, AdminMenu(action="content").pack())
    assert "🗓 <b>Channel posts</b>" in last_to(harness, ADMIN_ID).text
