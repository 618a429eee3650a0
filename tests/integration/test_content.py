"""Channel content against the DeepSeek stand-in and a real database: generation, every failure ending in the
template, hostile output, rotation, one post per slot (concurrent runs, two processes, restarts), missed
slots, dry run."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from sqlalchemy import select

from bot.i18n import build_i18n
from db.engine import Database
from db.models_content import ContentGeneration, ContentPost
from presentation.content import TEMPLATES, ChannelPosts
from processing.content import ContentPublisher
from processing.notify import Notifier
from sandbox.deepseek import DeepSeekStandIn
from sandbox.telegram import parse_text
from services.content import MAX_POST_CHARS, ContentService, u16
from services.content_facts import top_whale_fact, track_record_fact
from services.deepseek import DeepSeekClient
from services.signals import EventIn, SignalIn, SignalService
from services.users import UserService
from services.whales import WhaleService
from tests.conftest import ADMIN_ID, make_settings
from tests.support.core import Clock
from tests.support.recording import RecordingSession

CHANNEL = -1001000000001
BERLIN_0900 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)  # 09:00 in Europe/Berlin (CET)


@pytest.fixture
async def deepseek() -> AsyncIterator[DeepSeekStandIn]:
    async with DeepSeekStandIn(seed=5, hang_seconds=5) as standin:
        yield standin


class Rig:
    """The content feature as the app assembles it, with a virtual clock and a recording bot."""

    def __init__(self, db: Database, deepseek: DeepSeekStandIn | None, clock: Clock, **overrides) -> None:
        values = dict(database_url=str(db.url), telegram_chat_id=CHANNEL, timezone="Europe/Berlin",
                      gmgn_promo_link="https://gmgn.ai/?ref=sandbox")
        if deepseek is not None:
            values.update(deepseek_key=deepseek.api_key, deepseek_api_url=deepseek.base_url)
        values.update(overrides)
        self.settings = make_settings(**values)
        self.db, self.clock = db, clock
        self.session = RecordingSession()
        self.bot = Bot("42:TEST-TOKEN-abcdefghijklmnopqrstuv", session=self.session,
                       default=DefaultBotProperties(parse_mode="HTML"))
        s = self.settings
        self.client = DeepSeekClient(s.deepseek_api_url, s.deepseek_key.get_secret_value() if s.deepseek_key else None,
                                     s.deepseek_model, attempts=s.telegram_content_max_retries, timeout=0.3,
                                     backoff=0)
        self.content = ContentService(db, self.client, s, ChannelPosts(), clock=clock)
        notifier = Notifier(self.bot, UserService(db), build_i18n(), s.admin_ids)
        self.publisher = ContentPublisher(self.bot, self.content, notifier, s, clock=clock)

    def channel_posts(self) -> list[str]:
        return self.session.texts_to(CHANNEL)

    async def close(self) -> None:
        await self.client.close()


@pytest.fixture
async def rig(database, deepseek) -> AsyncIterator[Rig]:
    r = Rig(database, deepseek, Clock())
    yield r
    await r.close()


async def generations(db: Database) -> list[ContentGeneration]:
    async with db.session() as s:
        return list(await s.scalars(select(ContentGeneration).order_by(ContentGeneration.id)))


async def posts(db: Database) -> list[ContentPost]:
    async with db.session() as s:
        return list(await s.scalars(select(ContentPost).order_by(ContentPost.id)))


# --------------------------------------------------------------------------- generation

async def test_generation_success_is_fed_live_data_and_logged(rig, deepseek):
    async def track_record():
        return "Last 30 days: 18 of 25 signals hit a take-profit"

    async def broken():
        raise RuntimeError("whales are still being built")

    rig.content.feeders.update(track_record=track_record, top_whale=broken)
    draft = await rig.content.generate("promo", "liquidity")

    assert not draft.fallback_used and draft.error is None
    assert "promo" in draft.text.lower() and "liquidity" in draft.text.lower()
    assert draft.text.endswith('🔗 <a href="https://gmgn.ai/?ref=sandbox">Trade on GMGN</a>')
    (call,) = deepseek.calls
    user = call.messages[-1]["content"]
    assert user.startswith("Write a promo post. Topic: liquidity.")
    assert "Basic $9.99/month, Pro $29.99/month, Enterprise $99.99/month" in user  # plan prices, live
    assert "18 of 25 signals" in user
    (log,) = await generations(rig.db)
    assert (log.kind, log.topic, log.model, log.fallback_used, log.error) == (
        "promo", "liquidity", "deepseek-chat", False, None)
    assert json.loads(log.prompt) == call.messages and log.output.strip() in draft.text
    assert log.total_tokens == log.prompt_tokens + log.completion_tokens and log.completion_tokens > 0
    assert log.latency_ms is not None and log.latency_ms >= 0 and log.attempts == 1 and log.text == draft.text


@pytest.mark.parametrize("mode", ["500", "timeout", "garbage", "empty"])
async def test_every_failure_mode_ends_in_the_template(rig, deepseek, mode):
    deepseek.fail_mode = mode
    draft = await rig.content.generate("tip", "momentum")

    assert draft.fallback_used and draft.error
    assert draft.text == TEMPLATES["tip"].format(topic="momentum", Topic="Momentum", facts="")
    assert len(deepseek.calls) == rig.settings.telegram_content_max_retries == 2  # every attempt was made
    (log,) = await generations(rig.db)
    assert log.fallback_used and log.attempts == 2 and log.error == draft.error and log.text == draft.text
    expected = {"500": "HTTP 500", "timeout": "timed out", "garbage": "invalid JSON", "empty": "empty"}[mode]
    assert expected in log.error


async def test_a_failure_then_success_uses_the_model(rig, deepseek):
    deepseek.fail_mode, deepseek.fail_count = "500", 1
    draft = await rig.content.generate("market", "momentum")
    assert not draft.fallback_used and "market" in draft.text.lower()
    assert (await generations(rig.db))[0].attempts == 2


async def test_missing_key_goes_straight_to_the_template(database, deepseek):
    rig = Rig(database, None, Clock())
    try:
        draft = await rig.content.generate("community", "risk management")
    finally:
        await rig.close()
    assert draft.fallback_used and draft.error == "DEEPSEEK_KEY is not set"
    assert draft.text.startswith("💬 <b>Community question: Risk management</b>")
    assert deepseek.calls == []


async def test_hostile_model_output_is_escaped_and_cut(rig, deepseek):
    deepseek.fail_mode = "hostile"
    await rig.publisher.post_now("hostile", "market")

    (post,) = rig.channel_posts()
    assert not (await generations(rig.db))[0].fallback_used
    assert "<script" not in post and "javascript:" not in post and "<img" not in post
    assert u16(post) <= MAX_POST_CHARS
    text, _ = parse_text(post, "HTML")  # Telegram's parser accepts it
    assert text.startswith("<script>alert(1)</script>unclosed")
    assert (await generations(rig.db))[0].output.startswith("<script>")  # the raw answer is kept in the log


# --------------------------------------------------------------------------- rotation

async def test_kinds_rotate_and_each_kind_meets_every_topic(rig):
    for n in range(8):
        result = await rig.publisher.post_now(f"r{n}")
        assert result.status == "posted"
    rows = await posts(rig.db)
    assert [p.kind for p in rows] == ["market", "tip", "promo", "community"] * 2
    assert [p.topic for p in rows if p.kind == "market"] == ["momentum", "liquidity"]
    assert len(rig.channel_posts()) == 8 and all(p.status == "posted" and p.message_id for p in rows)


async def test_failed_posts_do_not_advance_the_rotation(rig):
    rig.session.blocked.add(CHANNEL)  # the bot was removed from the channel
    failed = await rig.publisher.post_now("a")
    assert failed.status == "failed" and "Forbidden" in failed.error
    rig.session.blocked.clear()
    assert (await rig.publisher.post_now("b")).kind == "market"


# --------------------------------------------------------------------------- one post per slot

async def test_two_overlapping_runs_post_a_slot_once(rig):
    rig.clock.now = BERLIN_0900 + timedelta(seconds=2)
    results = await asyncio.gather(rig.publisher.run_slot(time(9, 0)), rig.publisher.run_slot(time(9, 0)))
    assert sorted(r.status for r in results) == ["posted", "taken"]
    assert len(rig.channel_posts()) == 1
    (row,) = await posts(rig.db)
    assert row.slot_key == "2026-11-21T09:00@Europe/Berlin" and row.status == "posted" and row.source == "schedule"


async def test_two_processes_on_one_database_and_a_restart_post_once(database, deepseek):
    clock = Clock()
    clock.now = BERLIN_0900 + timedelta(seconds=5)
    other_db = Database(str(database.url))  # a second process: its own engine and connections
    first, second = Rig(database, deepseek, clock), Rig(other_db, deepseek, clock)
    try:
        await asyncio.gather(first.publisher.run_slot(time(9, 0)), second.publisher.run_slot(time(9, 0)),
                             first.publisher.catch_up(), second.publisher.catch_up())
        assert len(first.channel_posts()) + len(second.channel_posts()) == 1

        clock.advance(minutes=10)  # a restart within the grace window: a fresh process catches up
        restarted = Rig(Database(str(database.url)), deepseek, clock)
        try:
            assert await restarted.publisher.catch_up() == []
            assert (await restarted.publisher.run_slot(time(9, 0))).status == "taken"
            assert restarted.channel_posts() == []
        finally:
            await restarted.close()
            await restarted.db.close()
    finally:
        await first.close()
        await second.close()
        await other_db.close()
    assert [p.status for p in await posts(database)] == ["posted"]


async def test_missed_slot_is_posted_late_once_within_the_grace(rig):
    rig.clock.now = BERLIN_0900 + timedelta(minutes=20)  # the bot was down at 09:00 and is back at 09:20
    (late,) = await rig.publisher.catch_up()
    assert late.status == "posted" and len(rig.channel_posts()) == 1
    assert await rig.publisher.catch_up() == []  # and not again
    assert len(rig.channel_posts()) == 1


async def test_slots_missed_past_the_grace_are_skipped_and_logged(rig):
    rig.clock.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    await rig.publisher.post_now("earlier")  # the bot has run since yesterday morning
    rig.clock.now = BERLIN_0900 + timedelta(hours=4)  # back at 13:00: 09:00 and yesterday's 14:00, 19:00 missed
    results = await rig.publisher.catch_up()
    assert [r.status for r in results] == ["skipped"] * 3
    assert len(rig.channel_posts()) == 1  # only the earlier manual post
    skipped = [p for p in await posts(rig.db) if p.status == "skipped"]
    assert [p.slot_key for p in skipped] == ["2026-11-20T14:00@Europe/Berlin", "2026-11-20T19:00@Europe/Berlin",
                                             "2026-11-21T09:00@Europe/Berlin"]
    assert "missed by 240 min" in skipped[-1].error
    assert await rig.publisher.catch_up() == []  # logged once


async def test_first_start_does_not_log_a_day_of_missed_slots(rig):
    rig.clock.now = BERLIN_0900 + timedelta(hours=4)
    assert await rig.publisher.catch_up() == []
    assert await posts(rig.db) == []


async def test_a_post_interrupted_by_a_crash_is_marked_not_repeated(rig):
    rig.clock.now = BERLIN_0900
    claim = await rig.content.claim(rig.content.slot_key(BERLIN_0900), BERLIN_0900, "schedule")
    assert claim is not None  # ... and the process died here
    rig.clock.advance(minutes=20)
    assert await rig.publisher.catch_up() == []
    (row,) = await posts(rig.db)
    assert row.status == "interrupted" and rig.channel_posts() == []


async def test_channel_refusing_a_scheduled_post_alerts_admins(rig):
    rig.session.blocked.add(CHANNEL)
    rig.clock.now = BERLIN_0900
    result = await rig.publisher.run_slot(time(9, 0))
    assert result.status == "failed"
    (alert,) = rig.session.texts_to(ADMIN_ID)
    assert "was not published" in alert and "Forbidden" in alert
    assert (await posts(rig.db))[0].status == "failed"


# --------------------------------------------------------------------------- dry run

async def test_dry_run_sends_to_admins_not_the_channel(database, deepseek):
    rig = Rig(database, deepseek, Clock(), telegram_content_dry_run=True, admin_ids=[ADMIN_ID, 9002])
    try:
        rig.clock.now = BERLIN_0900
        result = await rig.publisher.run_slot(time(9, 0))
    finally:
        await rig.close()
    assert result.status == "dry_run" and rig.channel_posts() == []
    for admin in (ADMIN_ID, 9002):
        (message,) = rig.session.texts_to(admin)
        assert message.startswith("🧪 <b>Dry run</b>") and "market" in message.lower()
    (row,) = await posts(database)
    assert row.status == "dry_run" and row.text and row.message_id is None


# --------------------------------------------------------------------------- the schedule

async def test_upcoming_slots_follow_the_time_zone_and_its_clock_change(database):
    rig = Rig(database, None, Clock(), telegram_content_schedules="19:00,09:00")
    try:
        rig.clock.now = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Berlin moves to summer time on the 29th
        assert rig.content.upcoming(3) == [datetime(2026, 3, 28, 18, 0, tzinfo=UTC),
                                           datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
                                           datetime(2026, 3, 29, 17, 0, tzinfo=UTC)]
    finally:
        await rig.close()


# --------------------------------------------------------------------------- live facts from other features

async def test_track_record_and_top_whale_feed_the_prompts(database):
    signals, whales = SignalService(database, tz=ZoneInfo("UTC")), WhaleService(database, clock=Clock())
    track_record, top_whale = track_record_fact(signals), top_whale_fact(whales)
    assert await track_record() is None and await top_whale() is None  # nothing to say yet: left out

    for ref, exit_event in (("s1", EventIn(type="tp_hit", level=1, price="110")),
                            ("s2", EventIn(type="sl_hit", price="95"))):
        await signals.ingest(SignalIn(id=ref, ecosystem="crypto", symbol="SOL/USDT", side="long", entry="100",
                                      take_profits=["110"], stop_loss="95"))
        await signals.add_event(ref, exit_event)
    assert await track_record() == "Our signals, last 30 days: 2 closed, 1 won (50%), cumulative return +5.0%."

    await whales.ingest([{"id": f"tx-{i}", "wallet": "WhaleWallet123456", "chain": "solana", "label": "Big <fish>",
                          "symbol": "SOL", "side": "sell", "usd_value": "1000", "pnl_usd": "250",
                          "ts": "2026-11-21T11:00:00Z"} for i in range(5)])
    assert await top_whale() == ("This week's top whale on our leaderboard: Big <fish> (solana), PnL $1,250.00 "
                                 "over 5 trades.")

    rig = Rig(database, None, Clock())
    try:
        rig.content.feeders.update(track_record=track_record, top_whale=top_whale)
        draft = await rig.content.generate("market", "momentum")  # no key: the template carries the facts too
    finally:
        await rig.close()
    assert "• Our signals, last 30 days: 2 closed" in draft.text and "Big &lt;fish&gt; (solana)" in draft.text
    prompt = (await generations(database))[0].prompt
    assert "This week's top whale" in prompt and "cumulative return +5.0%" in prompt
