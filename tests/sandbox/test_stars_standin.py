"""Telegram Stars payments and channel membership in the Telegram stand-in, driven by a real aiogram
Bot and Dispatcher over HTTP: pre-checkout ok / refused / timed out, a successful_payment delivered
twice, refunds, transactions, subscription links, single-use invite links, bans."""

import asyncio
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiogram import Dispatcher, F
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)

from sandbox.telegram import SUBSCRIPTION_PERIOD, JoinRefused, TelegramStandIn

USER, OTHER = 42, 43
CHANNEL = -1001234567890
pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def tg():
    async with TelegramStandIn(rate_limit=None) as standin:
        standin.add_user(USER, "Alice")
        standin.add_user(OTHER, "Bob")
        standin.add_channel(CHANNEL, "VIP", username="sandbox_vip")
        yield standin


@dataclass
class Shop:
    """What the little test bot saw."""

    payments: list[Message] = field(default_factory=list)
    refunds: list[Message] = field(default_factory=list)
    credited: set[str] = field(default_factory=set)  # charge ids counted once


@pytest_asyncio.fixture
async def shop(tg, bot):
    """A bot that refuses payloads starting with "refuse", ignores "slow" ones, accepts the rest."""
    dp, seen = Dispatcher(), Shop()

    @dp.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery) -> None:
        if query.invoice_payload.startswith("refuse"):
            await query.answer(ok=False, error_message="Sorry, sold out")
        elif not query.invoice_payload.startswith("slow"):
            await query.answer(ok=True)

    @dp.message(F.successful_payment)
    async def paid(message: Message) -> None:
        seen.payments.append(message)
        seen.credited.add(message.successful_payment.telegram_payment_charge_id)

    @dp.message(F.refunded_payment)
    async def refunded(message: Message) -> None:
        seen.refunds.append(message)

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    yield seen
    await dp.stop_polling()
    await asyncio.wait_for(polling, 2)


async def invoice(bot, payload="order:1", amount=50, **kwargs) -> Message:
    return await bot.send_invoice(USER, title="100 AI tokens", description="Credit for GPT-4o mini",
                                  payload=payload, currency="XTR",
                                  prices=[LabeledPrice(label="Tokens", amount=amount)], **kwargs)


async def test_send_invoice_is_a_message_with_an_invoice(tg, bot):
    sent = await invoice(bot)
    assert sent.invoice.currency == "XTR" and sent.invoice.total_amount == 50
    assert sent.invoice.title == "100 AI tokens" and sent.reply_markup is None
    stored = tg.last_bot_message(USER)
    assert stored["invoice"]["total_amount"] == 50 and "payload" not in stored["invoice"]
    pay_first = InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text="Pay ⭐️50", pay=True)],
        [InlineKeyboardButton(text="Cancel", callback_data="cancel")]])
    assert (await invoice(bot, reply_markup=pay_first)).reply_markup.inline_keyboard[0][0].pay


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"reply_markup": InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text="Cancel", callback_data="cancel")]])}, "REPLY_MARKUP_BUY_EMPTY"),
    ({"prices": [LabeledPrice(label="a", amount=1), LabeledPrice(label="b", amount=2)]}, "STARS_INVOICE_INVALID"),
    ({"provider_token": "284685063:TEST:abc"}, "STARS_INVOICE_INVALID"),
    ({"currency": "USD", "provider_token": "284685063:TEST:abc"}, "PAYMENT_PROVIDER_INVALID"),
    ({"currency": "usd"}, "CURRENCY_INVALID"),
    ({"payload": "x" * 129}, "INVOICE_PAYLOAD_INVALID"),
    ({"title": "t" * 33}, "INVOICE_TITLE_INVALID"),
    ({"prices": [LabeledPrice(label="free", amount=0)]}, "CURRENCY_TOTAL_AMOUNT_INVALID"),
])
async def test_send_invoice_rejects_what_telegram_rejects(tg, bot, kwargs, error):
    params = {"chat_id": USER, "title": "Tokens", "description": "d", "payload": "p", "currency": "XTR",
              "prices": [LabeledPrice(label="Tokens", amount=5)]} | kwargs
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_invoice(**params)


async def test_pay_runs_the_pre_checkout_round_trip(tg, bot, shop):
    sent = await invoice(bot, payload="order:7")
    result = await tg.pay_invoice(USER, sent.message_id)
    assert result["ok"] is True
    charge = result["telegram_payment_charge_id"]
    assert charge.startswith("stxsandbox")
    assert tg.pre_checkout_answers[result["pre_checkout_query_id"]] == {"ok": True}
    await tg.wait_for(lambda: shop.payments)
    paid = shop.payments[0].successful_payment
    assert (paid.currency, paid.total_amount, paid.invoice_payload) == ("XTR", 50, "order:7")
    assert paid.telegram_payment_charge_id == charge and paid.provider_payment_charge_id
    assert paid.subscription_expiration_date is None and not paid.is_recurring
    service = tg.chat_messages(USER)[-1]
    assert service["from"]["id"] == USER and service["successful_payment"]["total_amount"] == 50
    transactions = (await bot.get_star_transactions()).transactions
    assert [(t.id, t.amount, t.source.user.id, t.source.invoice_payload) for t in transactions] == [
        (charge, 50, USER, "order:7")]
    # A second payment of the same invoice message is another charge (the bot decides if it is valid).
    again = await tg.pay_invoice(USER)  # the newest invoice in the chat
    assert again["ok"] and again["telegram_payment_charge_id"] != charge


async def test_refused_pre_checkout_charges_nothing(tg, bot, shop):
    sent = await invoice(bot, payload="refuse:1")
    result = await tg.pay_invoice(USER, sent.message_id)
    assert result == {"ok": False, "reason": "refused", "error_message": "Sorry, sold out",
                      "pre_checkout_query_id": result["pre_checkout_query_id"]}
    assert not tg.payments and not tg.star_transactions
    assert all("successful_payment" not in m for m in tg.chat_messages(USER))
    with pytest.raises(TelegramBadRequest, match="ERROR_TEXT_EMPTY"):
        await bot.answer_pre_checkout_query(pre_checkout_query_id="1", ok=False)


async def test_unanswered_pre_checkout_times_out(tg, bot, shop):
    tg.pre_checkout_timeout = 0.3
    sent = await invoice(bot, payload="slow:1")
    result = await tg.pay_invoice(USER, sent.message_id)
    assert result["ok"] is False and result["reason"] == "timeout"
    assert "0.3 s" in result["error_message"] and not tg.payments
    # Answering after Telegram gave up is refused, as in Telegram.
    with pytest.raises(TelegramBadRequest, match="QUERY_ID_INVALID"):
        await bot.answer_pre_checkout_query(pre_checkout_query_id=result["pre_checkout_query_id"], ok=True)
    query = next(c.result for c in tg.calls_of("getUpdates") if c.result and "pre_checkout_query" in c.result[0])
    assert query[0]["pre_checkout_query"]["invoice_payload"] == "slow:1"


async def test_successful_payment_delivered_twice_counts_once(tg, bot, shop):
    sent = await invoice(bot)
    charge = (await tg.pay_invoice(USER, sent.message_id))["telegram_payment_charge_id"]
    update = tg.resend_successful_payment(charge)
    assert update["message"]["successful_payment"]["telegram_payment_charge_id"] == charge
    await tg.wait_for(lambda: len(shop.payments) == 2)
    first, second = shop.payments
    assert first.message_id == second.message_id
    assert shop.credited == {charge}
    assert len([m for m in tg.chat_messages(USER) if "successful_payment" in m]) == 1
    with pytest.raises(ValueError, match="no payment"):
        tg.resend_successful_payment("stxunknown")


async def test_refund_once_then_already_refunded(tg, bot, shop):
    sent = await invoice(bot, payload="order:9", amount=75)
    charge = (await tg.pay_invoice(USER, sent.message_id))["telegram_payment_charge_id"]
    assert await bot.refund_star_payment(user_id=USER, telegram_payment_charge_id=charge) is True
    await tg.wait_for(lambda: shop.refunds)
    refund = shop.refunds[0].refunded_payment
    assert (refund.telegram_payment_charge_id, refund.total_amount, refund.invoice_payload) == (
        charge, 75, "order:9")
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(user_id=USER, telegram_payment_charge_id=charge)
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(user_id=USER, telegram_payment_charge_id="stxnope")
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):  # someone else's charge
        await bot.refund_star_payment(user_id=OTHER, telegram_payment_charge_id=charge)
    transactions = (await bot.get_star_transactions()).transactions
    assert [(t.id, t.amount, bool(t.source), bool(t.receiver)) for t in transactions] == [
        (charge, 75, True, False), (charge, 75, False, True)]
    assert (await bot.get_star_transactions(offset=1, limit=1)).transactions[0].receiver.user.id == USER


async def test_subscription_invoice_link(tg, bot, shop):
    link = await bot.create_invoice_link(
        title="Signals Pro", description="30 days of signals", payload="plan:pro", currency="XTR",
        prices=[LabeledPrice(label="Pro", amount=300)], subscription_period=SUBSCRIPTION_PERIOD)
    assert link.startswith(f"{tg.base_url}/sandbox/invoice/")
    with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_PERIOD_INVALID"):
        await bot.create_invoice_link(title="x", description="x", payload="x", currency="XTR",
                                      prices=[LabeledPrice(label="x", amount=1)], subscription_period=3600)
    assert tg.find_invoice(OTHER, link).payload == "plan:pro"
    now = int(tg.clock())
    result = await tg.pay_invoice(OTHER, link.rsplit("/", 1)[-1])  # a slug works as well as the link
    paid = result["message"]["successful_payment"]
    assert paid["is_recurring"] and paid["is_first_recurring"]
    assert now + SUBSCRIPTION_PERIOD <= paid["subscription_expiration_date"] <= now + SUBSCRIPTION_PERIOD + 5
    transaction = (await bot.get_star_transactions()).transactions[0]
    assert transaction.source.subscription_period == SUBSCRIPTION_PERIOD

    renewal = tg.renew_subscription(result["telegram_payment_charge_id"])["successful_payment"]
    assert renewal["is_recurring"] and "is_first_recurring" not in renewal
    assert renewal["subscription_expiration_date"] == paid["subscription_expiration_date"] + SUBSCRIPTION_PERIOD
    await tg.wait_for(lambda: len(shop.payments) == 2)
    assert await bot.edit_user_star_subscription(
        user_id=OTHER, telegram_payment_charge_id=result["telegram_payment_charge_id"], is_canceled=True)
    with pytest.raises(ValueError, match="canceled"):
        tg.renew_subscription(result["telegram_payment_charge_id"])


async def test_single_use_invite_link_and_expiry(tg, bot):
    link = await bot.create_chat_invite_link(CHANNEL, name="order 12", member_limit=1)
    assert link.invite_link.startswith("https://t.me/+sandbox") and link.member_limit == 1
    assert link.creator.id == tg.bot_user["id"] and not link.is_revoked
    assert tg.join_via_link(USER, link.invite_link)["status"] == "member"
    with pytest.raises(JoinRefused, match="INVITE_HASH_EXPIRED"):  # used up
        tg.join_via_link(OTHER, link.invite_link)
    member = await bot.get_chat_member(CHANNEL, USER)
    assert member.status == "member"
    assert (await bot.get_chat_member(CHANNEL, OTHER)).status == "left"
    assert (await bot.get_chat_member(CHANNEL, tg.bot_user["id"])).status == "administrator"

    clock = [tg.clock()]
    tg.clock = lambda: clock[0]
    timed = await bot.create_chat_invite_link(CHANNEL, expire_date=int(clock[0]) + 3600)
    clock[0] += 3601
    with pytest.raises(JoinRefused, match="INVITE_HASH_EXPIRED"):
        tg.join_via_link(OTHER, timed.invite_link)
    revoked = await bot.create_chat_invite_link(CHANNEL)
    assert (await bot.revoke_chat_invite_link(CHANNEL, revoked.invite_link)).is_revoked
    with pytest.raises(JoinRefused, match="INVITE_HASH_EXPIRED"):
        tg.join_via_link(OTHER, revoked.invite_link)
    with pytest.raises(JoinRefused, match="INVITE_HASH_INVALID"):
        tg.join_via_link(OTHER, "https://t.me/+nosuchlink")
    with pytest.raises(TelegramBadRequest, match="USAGE_LIMIT_INVALID"):
        await bot.create_chat_invite_link(CHANNEL, member_limit=0)
    with pytest.raises(TelegramBadRequest, match="supergroup and channel"):
        await bot.create_chat_invite_link(USER)


async def test_ban_and_unban(tg, bot):
    await bot.get_updates(allowed_updates=["message", "chat_member"])  # opt in to chat_member updates
    first = await bot.create_chat_invite_link(CHANNEL, member_limit=1)
    tg.join_via_link(USER, first.invite_link)
    assert await bot.ban_chat_member(CHANNEL, USER) is True
    banned = await bot.get_chat_member(CHANNEL, USER)
    assert banned.status == "kicked"
    again = await bot.create_chat_invite_link(CHANNEL, member_limit=1)
    with pytest.raises(JoinRefused, match="USER_BANNED_IN_CHANNEL"):
        tg.join_via_link(USER, again.invite_link)
    assert await bot.unban_chat_member(CHANNEL, USER, only_if_banned=True)
    assert (await bot.get_chat_member(CHANNEL, USER)).status == "left"
    tg.join_via_link(USER, again.invite_link)  # the failed attempt did not use the link up
    assert await bot.unban_chat_member(CHANNEL, USER, only_if_banned=True)  # a member stays
    assert (await bot.get_chat_member(CHANNEL, USER)).status == "member"
    assert await bot.unban_chat_member(CHANNEL, USER)  # without only_if_banned: removed
    assert (await bot.get_chat_member(CHANNEL, USER)).status == "left"
    changes = [(u["chat_member"]["old_chat_member"]["status"], u["chat_member"]["new_chat_member"]["status"])
               for u in tg.updates if "chat_member" in u]
    assert changes == [("left", "member"), ("member", "kicked"), ("kicked", "left"), ("left", "member"),
                       ("member", "left")]
    joined = next(u["chat_member"] for u in tg.updates if "chat_member" in u)
    assert joined["invite_link"]["invite_link"] == first.invite_link
    assert [m["status"] for m in tg.channel_members(CHANNEL)] == ["left"]


async def test_timed_ban_ends_by_itself(tg, bot):
    clock = [tg.clock()]
    tg.clock = lambda: clock[0]
    await bot.ban_chat_member(CHANNEL, OTHER, until_date=int(clock[0]) + 3600)
    assert (await bot.get_chat_member(CHANNEL, OTHER)).status == "kicked"
    clock[0] += 3601
    assert (await bot.get_chat_member(CHANNEL, OTHER)).status == "left"
    await bot.ban_chat_member(CHANNEL, USER, until_date=int(clock[0]) + 5)  # under 30 s: forever
    assert tg.member_status(CHANNEL, USER)["until_date"] == 0


async def test_channel_posts_are_stored(tg, bot):
    post = await bot.send_message(CHANNEL, "<b>Market</b> update", parse_mode="HTML")
    assert post.sender_chat.id == CHANNEL and post.from_user is None
    via_username = await bot.send_message("@sandbox_vip", "second")
    stored = tg.chat_messages(CHANNEL)
    assert [m["text"] for m in stored] == ["Market update", "second"]
    assert stored[1]["message_id"] == via_username.message_id
