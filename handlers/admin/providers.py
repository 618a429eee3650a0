"""Admins: /providers — the marketplace's review queue (applications first, then approved and suspended
providers, ⚠️ on those with integrity flags): a provider's card with its flags and their reasons
(services.marketplace_integrity), approve, reject (with a reason), suspend (with a reason) and reinstate. Each
decision is a conditional state change, recorded in the audit log with its before and after, and the provider
is told."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import RowId
from bot.screens import refuse, show
from bot.wiring import Services
from presentation import market_board as board_words
from presentation import marketplace as words
from presentation import suspension as suspension_words
from services.marketplace import MAX_REASON, NEEDS_REASON, TRANSITIONS, Review


class ProviderCard(CallbackData, prefix="apv"):
    id: RowId  # 0: the queue


class ProviderReview(CallbackData, prefix="apr"):
    id: RowId
    review: Review


class ReasonAsk(StatesGroup):
    reason = State()


async def show_queue(event: Message | CallbackQuery, services: Services, state: FSMContext) -> None:
    await state.clear()
    providers = (await services.marketplace.queue())[:40]
    flags = await services.market_board.flags([p.id for p in providers])
    builder = InlineKeyboardBuilder()
    for provider in providers:
        builder.button(text=words.queue_label(provider) + board_words.flag_mark(flags[provider.id]),
                       callback_data=ProviderCard(id=provider.id))
    builder.adjust(1)
    await show(event, words.queue(providers), builder.as_markup())


async def show_card(query: CallbackQuery, callback_data: ProviderCard, services: Services,
                    state: FSMContext) -> None:
    if callback_data.id == 0:
        await show_queue(query, services, state)
        return
    provider = await services.marketplace.get(callback_data.id)
    if provider is None:
        await refuse(query, words.review_stale())
        return
    builder = InlineKeyboardBuilder()
    for review, (before, _after) in TRANSITIONS.items():
        if provider.status == before:
            builder.button(text=words.review_label(review), callback_data=ProviderReview(id=provider.id,
                                                                                         review=review))
    builder.button(text=_("⬅️ Providers"), callback_data=ProviderCard(id=0))
    builder.adjust(2, 1)
    subscribers = await services.marketplace.subscribers(provider.id)
    text = words.admin_card(provider, subscribers, services.settings.tz)
    flags = (await services.market_board.flags([provider.id]))[provider.id]
    if flags:  # integrity flags for review (services.marketplace_integrity)
        text += "\n\n" + "\n".join(board_words.flag_line(flag) for flag in flags)
    await show(query, text, builder.as_markup())


async def review_tap(query: CallbackQuery, callback_data: ProviderReview, services: Services,
                     state: FSMContext) -> None:
    if callback_data.review in NEEDS_REASON:
        provider = await services.marketplace.get(callback_data.id)
        if provider is None or provider.status != TRANSITIONS[callback_data.review][0]:
            await refuse(query, words.review_stale())
            return
        await state.set_state(ReasonAsk.reason)
        await state.update_data(provider_id=callback_data.id, review=callback_data.review.value)
        await show(query, words.ask_reason(callback_data.review))
        return
    await decide(query, services, callback_data.id, callback_data.review, None)


async def reason_typed(message: Message, services: Services, state: FSMContext) -> None:
    data = await state.get_data()
    await state.clear()
    await decide(message, services, int(data["provider_id"]), Review(data["review"]),
                 (message.text or "")[:MAX_REASON])


async def decide(event: Message | CallbackQuery, services: Services, provider_id: int, review: Review,
                 reason: str | None) -> None:
    admin_id = event.from_user.id
    done = await services.marketplace.review(provider_id, review, admin_id, reason)
    if done is None:
        await refuse(event, words.review_stale())
        return
    before, provider = done
    await services.audit.record(admin_id, f"provider_{review.value}", f"provider:{provider.id}",
                                before={"status": before.value},
                                after={"status": provider.status, "reason": provider.reason})
    await services.notifier.send(provider.user_id, lambda: words.told(review, provider))
    builder = InlineKeyboardBuilder()
    builder.button(text=_("⬅️ Providers"), callback_data=ProviderCard(id=0))
    await show(event, words.reviewed(review, provider), builder.as_markup())
    if review is Review.SUSPEND:  # its subscribers told, their unused time refunded (processing.suspension)
        refunded = await services.suspension.settle(provider.id, admin_id)
        if refunded:
            await services.notifier.send(admin_id, lambda: suspension_words.admin_refunded(provider.name, refunded))


def build_router() -> Router:
    router = Router(name="admin_providers")
    router.message.register(show_queue, Command("providers"))
    router.callback_query.register(show_card, ProviderCard.filter())
    router.callback_query.register(review_tap, ProviderReview.filter())
    router.message.register(reason_typed, StateFilter(ReasonAsk.reason), F.text, ~F.text.startswith("/"))
    return router
