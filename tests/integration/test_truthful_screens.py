"""Screens that tell the truth (issue #16), through the real app with a recording session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiogram.exceptions import TelegramRetryAfter

from tests.conftest import ADMIN_ID
from tests.support.harness import Harness

USER = 601


def last_text(h: Harness) -> str:
    return h.session.texts_to(USER)[-1]


async def test_a_board_with_one_ranked_wallet_does_not_score_it_0(harness):
    ts = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    await harness.app.whales.ingest([{"id": f"lone-{i}", "wallet": "LoneWhaleAddressLongEnough01", "chain": "solana",
                                      "symbol": "SOL", "side": "sell", "usd_value": "10000", "pnl_usd": "250",
                                      "ts": ts} for i in range(5)])
    await harness.send(USER, "/whales")
    text = last_text(harness)
    assert "1. " in text and "score 100" in text and "score 0" not in text


async def test_user_lookup_of_an_unknown_id_says_there_is_no_such_user(harness):
    await harness.send(ADMIN_ID, "/user 99999")
    reply = harness.session.texts_to(ADMIN_ID)[-1]
    assert reply == "No user 99999 has used this bot."
    await harness.send(ADMIN_ID, "/user @<nobody>")
    assert harness.session.texts_to(ADMIN_ID)[-1] == "No user @&lt;nobody&gt; has used this bot."
    await harness.send(ADMIN_ID, "/user")
    assert harness.session.texts_to(ADMIN_ID)[-1].startswith("Usage: /user ID")


async def audience(h: Harness, *ids: int) -> None:
    for uid in ids:
        await h.users.seen(uid, username=None, first_name="U", language_code="en")


async def test_broadcast_progress_reaches_its_final_counts_after_cancel(harness):
    h = harness
    await audience(h, *range(700, 710))
    broadcast = await h.app.broadcasts.create(ADMIN_ID, ADMIN_ID, 5, "all")
    await h.app.broadcasts.set_progress_message(broadcast.id, ADMIN_ID, 77)
    send, pressed = h.session.make_request, []

    async def admin_cancels_during_the_second_copy(bot, method, **kwargs):
        if type(method).__name__ == "CopyMessage" and len(h.session.of("CopyMessage")) == 1 and not pressed:
            pressed.append(True)
            await h.press(ADMIN_ID, f"bcx:{broadcast.id}", message_id=77)
        return await send(bot, method, **kwargs)

    h.session.make_request = admin_cancels_during_the_second_copy
    from processing.signal_delivery import SignalDelivery

    # the copies already claimed go out after the cancel, as they do when a batch is on its way
    worker = SignalDelivery(h.db, h.bot, h.app.i18n, concurrency=1, recheck_every=100)
    assert await worker.run_once() == 10
    assert len(h.session.of("CopyMessage")) == 10
    await h.app.broadcast_progress.tick()
    final = [m for m in h.session.of("EditMessageText") if m.message_id == 77][-1]
    assert "cancelled" in final.text and "Sent: 10 of 10" in final.text and "Waiting: 0" in final.text
    assert final.reply_markup is None
    edits = len(h.session.of("EditMessageText"))
    await h.app.broadcast_progress.tick()  # closed: nothing more to show
    assert len(h.session.of("EditMessageText")) == edits


async def test_a_final_progress_edit_lost_to_flood_control_is_made_again(harness):
    h = harness
    await audience(h, 720, 721)
    broadcast = await h.app.broadcasts.create(ADMIN_ID, ADMIN_ID, 5, "all")
    await h.app.broadcasts.set_progress_message(broadcast.id, ADMIN_ID, 78)
    for _ in range(5):
        if not await h.app.signal_delivery.run_once():
            break
    send, refused = h.session.make_request, []

    async def flood_control(bot, method, **kwargs):
        if type(method).__name__ == "EditMessageText" and len(refused) < 6:  # more than the gate retries
            refused.append(method)
            raise TelegramRetryAfter(method=method, message="Too Many Requests: retry after 0", retry_after=0)
        return await send(bot, method, **kwargs)

    h.session.make_request = flood_control
    await h.app.broadcast_progress.tick()
    assert refused and not h.session.of("EditMessageText")
    await h.app.broadcast_progress.tick()
    [final] = h.session.of("EditMessageText")
    assert final.message_id == 78 and "finished" in final.text and "Sent: 2 of 2" in final.text
