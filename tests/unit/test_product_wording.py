"""The built-in products' messages, rendered in presentation/ from the data their fulfillers return
(services never build the text): the key delivery, the plan activation, what a refund takes back."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from presentation.ai_tokens import AiTokenTexts, ai_tokens_product, per_million
from presentation.plans import PlanTexts, plan_product
from services.ai_tokens import IssuedKey
from services.openrouter import ModelPrice
from services.plan_sales import PlanActivated
from services.plans import FREE, PLANS
from services.subscriptions import CreditBack, PlanTakenBack

ENDS = datetime(2027, 1, 2, 10, 30, tzinfo=UTC)
STARTS = datetime(2026, 12, 20, 8, 0, tzinfo=UTC)


def test_the_key_delivery_shows_the_key_its_model_and_how_to_use_it(i18n_context):
    text = AiTokenTexts().delivered(IssuedKey("sk-or-v1-secret", "openai/gpt-4o", 5000, "https://or.example/api/v1"))
    assert "<code>sk-or-v1-secret</code>" in text
    assert "<code>openai/gpt-4o</code> · 5,000 tokens" in text
    assert "curl https://or.example/api/v1/chat/completions" in text


def test_a_key_refund_names_the_key_or_says_none_was_issued(i18n_context):
    texts = AiTokenTexts()
    assert texts.takes_back("ab12") == "the API key …ab12 is switched off at once"
    assert texts.takes_back(None) == "nothing: no key was delivered yet, and none will be"
    assert texts.taken_back("ab12") == "🔑 Your API key …ab12 has been switched off."
    assert texts.taken_back(None) == "🔑 No key will be issued for this order."
    assert texts.credit_left("ab12", Decimal("1.5"), Decimal("2")) == "🔑 Key …ab12: $1.50 of $2.00 credit left"


def test_the_model_buttons_show_our_price_per_million_tokens():
    model = ModelPrice("m", "Model", Decimal(0), Decimal("0.00001"))
    assert per_million(model, Decimal("0.2")) == "$12.00"


def test_plan_activation_says_until_when_in_the_operators_time_zone(i18n_context):
    texts = PlanTexts(ZoneInfo("Europe/Berlin"))
    text = texts.activated(PlanActivated("Pro", ENDS, None, "https://t.me/+invite", invite_failed=False))
    assert text.splitlines() == [
        "✅ <b>Pro plan active</b> until 2027-01-02 11:30 CET.",
        "🔑 Your private channel invite (one person, one use): https://t.me/+invite",
        "Renew any time in /plans: new time is added to what's left."]


def test_a_plan_waiting_for_a_higher_one_says_when_it_starts_and_a_missing_invite_is_explained(i18n_context):
    text = PlanTexts(ZoneInfo("UTC")).activated(PlanActivated("Basic", ENDS, STARTS, None, invite_failed=True))
    assert "it starts 2026-12-20 08:00 UTC, when your current plan's time ends, and runs until 2027-01-02" in text
    assert "The private channel invite could not be made right now" in text


def test_a_plan_refund_says_what_came_back_and_what_the_buyer_is_on_now(i18n_context):
    texts = PlanTexts(ZoneInfo("UTC"))
    upgrade = PlanTakenBack(12.0, (CreditBack("Basic", 7.5),), PLANS["basic"], ENDS, left_channel=False)
    assert texts.taken_back(upgrade).splitlines() == [
        "📅 The plan time bought with this order has been removed.",
        "↩️ The 7.5 days of your <b>Basic</b> plan that were credited to this upgrade are yours again: they "
        "resume now.",
        "You keep the <b>Basic</b> plan you paid for separately."]
    last = PlanTakenBack(30.0, (), FREE, None, left_channel=True)
    assert texts.taken_back(last).splitlines()[1:] == [
        "You're on the Free plan now.", "Your access to the private channel has ended."]
    assert texts.takes_back(CreditBack("Basic", 7.5)).endswith(
        "; the credit it used is void, so the 7.5 days of the Basic plan it ended resume")


def test_the_products_registered_from_presentation_speak_its_words():
    parts = SimpleNamespace(ai_tokens=None, openrouter=None, vault=None, subscriptions=None, channel=None,
                            settings=SimpleNamespace(tz=ZoneInfo("Asia/Tokyo")))
    assert isinstance(ai_tokens_product(parts).fulfiller.wording, AiTokenTexts)
    wording = plan_product(parts).fulfiller.wording
    assert isinstance(wording, PlanTexts) and wording.tz == ZoneInfo("Asia/Tokyo")
