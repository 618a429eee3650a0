"""Provider ratings (issue 19): 1–5 stars and a short review from a provider's card, only after 7 days of
subscription (refused before, with how long is left), one per user per provider (rating again edits it), shown
with counts on the card; the provider replies once (a second reply is refused); in English and Russian."""

from datetime import timedelta

import pytest

from db.base import utcnow
from services.ratings import Problem, RatingRefused
from tests.integration.test_marketplace import approved_provider, paid_order

PROVIDER_USER, ALICE, BOB, IVAN = 801, 802, 803, 804


def alert(h) -> str:
    return h.session.of("AnswerCallbackQuery")[-1].text


def shown(h, chat_id) -> str:
    return h.session.texts_to(chat_id)[-1]


async def test_rate_after_seven_days_edit_it_and_the_provider_replies_once(harness):
    h = harness
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha")
    for user_id in (ALICE, BOB):
        await h.users.seen(user_id, username=None, first_name="U", language_code="en")
        await paid_order(h, user_id, provider_id)
    later = timedelta(days=3)
    h.app.ratings.clock = lambda: utcnow() + later

    await h.press(ALICE, f"mkt:{provider_id}")
    assert "⭐ No ratings yet" in shown(h, ALICE)
    await h.press(ALICE, f"rto:{provider_id}")
    assert alert(h) == "You can rate a provider after 7 days of subscription: 4 more days."
    await h.press(ALICE, f"rts:{provider_id}:5")  # a forged star tap: refused the same way
    assert alert(h) == "You can rate a provider after 7 days of subscription: 4 more days."
    assert (await h.app.ratings.summary(provider_id)).count == 0

    later = timedelta(days=8)
    await h.press(ALICE, f"rto:{provider_id}")
    assert "How would you rate <b>Alpha</b>?" in shown(h, ALICE)
    await h.press(ALICE, f"rts:{provider_id}:4")
    assert "Rating saved: ★★★★☆." in shown(h, ALICE)
    await h.send(ALICE, "Solid calls, clear stops")
    assert shown(h, ALICE) == "Review saved. Thank you!"
    await h.press(ALICE, f"rto:{provider_id}")
    assert "Your rating now: ★★★★☆" in shown(h, ALICE)
    await h.press(ALICE, f"rts:{provider_id}:5")  # a second rating edits the first
    assert "Rating updated: ★★★★★." in shown(h, ALICE)
    await h.press(BOB, f"rts:{provider_id}:2")
    summary = await h.app.ratings.summary(provider_id)
    assert (summary.count, str(summary.average)) == (2, "3.5")

    await h.press(ALICE, f"mkt:{provider_id}")  # ✅ Done: back to the card, no review offered any more
    await h.send(ALICE, "just chatting")
    assert (await h.app.ratings.mine(ALICE, provider_id)).review == "Solid calls, clear stops"
    await h.press(ALICE, f"mkt:{provider_id}")
    card = shown(h, ALICE)
    assert "⭐ 3.5 of 5 · 2 ratings" in card and "★★★★★ Solid calls, clear stops" in card and "★★☆☆☆" in card

    await h.press(PROVIDER_USER, f"rto:{provider_id}")
    assert alert(h) == "You cannot rate your own signals."
    await h.send(PROVIDER_USER, "/provider")
    await h.press(PROVIDER_USER, "rtl")
    listing = shown(h, PROVIDER_USER)
    assert "⭐ 3.5 of 5 · 2 ratings" in listing and "Solid calls, clear stops" in listing
    rating = await h.app.ratings.mine(ALICE, provider_id)
    await h.press(PROVIDER_USER, f"rtr:{rating.id}")
    assert "one reply per review" in shown(h, PROVIDER_USER)
    await h.send(PROVIDER_USER, "Thanks, more to come")
    assert shown(h, PROVIDER_USER) == "Reply published under the review."
    await h.press(PROVIDER_USER, f"rtr:{rating.id}")
    assert alert(h) == "You have already replied to this review: a review gets one reply."
    with pytest.raises(RatingRefused) as refused:
        await h.app.ratings.reply(PROVIDER_USER, rating.id, "Second reply")
    assert refused.value.problem is Problem.REPLIED
    with pytest.raises(RatingRefused) as refused:
        await h.app.ratings.reply(BOB, rating.id, "Not my review to answer")
    assert refused.value.problem is Problem.NOT_YOURS
    assert (await h.app.ratings.mine(ALICE, provider_id)).reply == "Thanks, more to come"

    await h.press(BOB, f"mkt:{provider_id}")
    assert "↩️ Provider: Thanks, more to come" in shown(h, BOB)


async def test_ratings_read_russian(harness):
    h = harness
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha")
    await h.users.seen(IVAN, username=None, first_name="Иван", language_code="ru")
    await paid_order(h, IVAN, provider_id)
    ivan = h.user(IVAN, first_name="Иван", language_code="ru")
    await h.press(ivan, f"rto:{provider_id}")
    assert alert(h) == "Оценить автора сигналов можно после 7 дней подписки: осталось 7 дней."
    h.app.ratings.clock = lambda: utcnow() + timedelta(days=9)
    await h.press(ivan, f"rts:{provider_id}:3")
    assert "Оценка сохранена: ★★★☆☆." in shown(h, IVAN)
    await h.press(ivan, f"mkt:{provider_id}")
    assert "⭐ 3,0 из 5 · 1 оценка" in shown(h, IVAN)
