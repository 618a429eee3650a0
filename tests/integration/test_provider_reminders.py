"""Renewal reminders for marketplace subscriptions (issue 19): 3 days and 1 day before a user's time with a
provider ends, once each (a second run, another replica or a restart sends nothing again: the mark is a row),
with a "Renew" button that places a new order for the provider; a renewal moves the end and the new end gets
its own reminders; a suspended provider's subscribers get none."""

from datetime import timedelta

import pytest

from db.base import utcnow
from handlers.user.marketplace import MarketBuy
from presentation.provider_reminders import RenewProvider
from processing.provider_reminders import ProviderReminders
from services.marketplace import PRODUCT, Review
from services.orders import Status
from services.provider_notices import ProviderNotices
from tests.conftest import ADMIN_ID, make_settings
from tests.integration.test_marketplace import approved_provider, paid_order
from tests.support.harness import Harness

PROVIDER_USER, ALICE = 800, 801


@pytest.fixture
async def h(database_url):
    harness = await Harness(make_settings(database_url=database_url)).start()
    await harness.users.seen(ALICE, username=None, first_name="Alice", language_code="en")
    await harness.users.accept_terms(ALICE)
    yield harness
    await harness.close()


def at(h, later: timedelta) -> None:
    """Time moves on for the subscriptions and the reminders."""
    clock = lambda: utcnow() + later  # noqa: E731
    h.app.marketplace.clock = h.app.provider_reminders.notices.clock = clock


def reminders_to(h, user_id: int) -> list[str]:
    return [t for t in h.session.texts_to(user_id) if t.startswith("⏰ Your subscription to")]


async def test_a_reminder_3_days_and_1_day_before_the_end_once_each_with_a_renew_button(h):
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha", price_cents=2500)
    await paid_order(h, ALICE, provider_id)
    at(h, timedelta(days=26))  # 4 days left: nothing yet
    assert await h.app.provider_reminders.run() == 0

    at(h, timedelta(days=27, hours=1))
    assert await h.app.provider_reminders.run() == 1
    [text] = reminders_to(h, ALICE)
    assert "<b>Alpha</b> ends in 3 days" in text and "the new month is added to what's left" in text
    [message] = h.session.of("SendMessage")[-1:]
    [[button]] = message.reply_markup.inline_keyboard
    assert button.text == "🔁 Renew · $25.00"
    assert await h.app.provider_reminders.run() == 0  # run again: nothing twice
    replica = ProviderReminders(h.app.marketplace, ProviderNotices(h.db, clock=h.app.provider_reminders.notices.clock),
                                h.app.notifier, h.app.settings.tz)
    assert await replica.run() == 0  # another replica, or this one restarted: the mark is in the database
    assert len(reminders_to(h, ALICE)) == 1

    at(h, timedelta(days=29, hours=12))
    assert await h.app.provider_reminders.run() == 1 and await replica.run() == 0
    assert "<b>Alpha</b> ends within a day" in reminders_to(h, ALICE)[-1]
    assert [n.kind for n in await h.app.provider_reminders.notices.sent(ALICE)] == ["remind_3d", "remind_1d"]

    await h.press(ALICE, button.callback_data)  # Renew: a new month's order, offered for payment
    [renewal] = [o for o in await h.app.orders.for_user(ALICE) if o.status == Status.PENDING]
    assert renewal.product == PRODUCT and renewal.product_ref == f"provider:{provider_id}"
    assert renewal.amount_cents == 2500


async def test_a_renewal_moves_the_end_and_the_new_end_gets_its_own_reminders(h):
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha")
    await paid_order(h, ALICE, provider_id)
    at(h, timedelta(days=28))
    assert await h.app.provider_reminders.run() == 1
    await paid_order(h, ALICE, provider_id)  # renewed (stacked): the end is now day 60
    at(h, timedelta(days=29, hours=12))  # the old end's 1-day moment: not a reminder any more
    assert await h.app.provider_reminders.run() == 0
    at(h, timedelta(days=58))
    assert await h.app.provider_reminders.run() == 1
    assert len(reminders_to(h, ALICE)) == 2
    ends = [n.ends_at for n in await h.app.provider_reminders.notices.sent(ALICE)]
    assert ends[1] - ends[0] == timedelta(days=30)


async def test_a_suspended_providers_subscribers_are_not_reminded(h):
    provider_id = await approved_provider(h, PROVIDER_USER, "Alpha")
    await paid_order(h, ALICE, provider_id)
    await h.app.marketplace.review(provider_id, Review.SUSPEND, ADMIN_ID, "checking")
    at(h, timedelta(days=28))
    assert await h.app.provider_reminders.run() == 0 and reminders_to(h, ALICE) == []


def test_the_renew_button_is_the_cards_subscribe_button():
    assert RenewProvider(id=7).pack() == MarketBuy(id=7).pack()
