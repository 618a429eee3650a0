"""Ratings of signal providers: from a provider's card (/market) a subscriber of 7 days or more taps 1–5 stars and
may add a short review (rating again edits it); from /provider, the provider reads its ratings and replies to
each review once."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import RowId
from bot.screens import refuse, show
from bot.wiring import Services
from handlers.user.market_board import MarketOpen
from presentation import ratings as words
from services.marketplace import State as ProviderState
from services.ratings import Problem, RatingRefused


class RateOpen(CallbackData, prefix="rto"):
    id: RowId  # the provider


class RateStars(CallbackData, prefix="rts"):
    id: RowId  # the provider
    stars: int


class RatingsList(CallbackData, prefix="rtl"):
    pass


class ReplyOpen(CallbackData, prefix="rtr"):
    id: RowId  # the rating


class RatingFlow(StatesGroup):
    review = State()
    reply = State()


def _back_to_card(provider_id: int, label: str | None = None):
    builder = InlineKeyboardBuilder()
    builder.button(text=label or _("⬅️ Back"), callback_data=MarketOpen(id=provider_id))
    return builder.as_markup()


async def open_rating(query: CallbackQuery, callback_data: RateOpen, services: Services, state: FSMContext) -> None:
    await state.clear()
    provider = await services.marketplace.get(callback_data.id)
    if provider is None or provider.status != ProviderState.APPROVED:
        await refuse(query, _("This button is no longer active."))
        return
    try:  # refused before the stars are shown: own provider, or too soon
        await services.ratings.check(query.from_user.id, provider.id)
    except RatingRefused as refused:
        await refuse(query, words.problem(refused.problem, refused.days_left))
        return
    builder = InlineKeyboardBuilder()
    for stars in range(1, 6):
        builder.button(text="⭐" * stars, callback_data=RateStars(id=provider.id, stars=stars))
    builder.button(text=_("⬅️ Back"), callback_data=MarketOpen(id=provider.id))
    builder.adjust(1)
    mine = await services.ratings.mine(query.from_user.id, provider.id)
    await show(query, words.ask_stars(provider.name, mine), builder.as_markup())


async def rate(query: CallbackQuery, callback_data: RateStars, services: Services, state: FSMContext) -> None:
    try:
        rating, created = await services.ratings.rate(query.from_user.id, callback_data.id, callback_data.stars)
    except RatingRefused as refused:
        await refuse(query, words.problem(refused.problem, refused.days_left))
        return
    await state.set_state(RatingFlow.review)
    await state.update_data(provider_id=callback_data.id)
    await show(query, words.saved(rating.stars, created), _back_to_card(callback_data.id, words.done_label()))


async def review_typed(message: Message, services: Services, state: FSMContext) -> None:
    provider_id = int((await state.get_data())["provider_id"])
    try:
        await services.ratings.review(message.from_user.id, provider_id, message.text or "")
    except RatingRefused as refused:
        await message.answer(words.problem(refused.problem))
        return
    await state.clear()
    await message.answer(words.review_saved(), reply_markup=_back_to_card(provider_id))


async def show_ratings(query: CallbackQuery, services: Services, state: FSMContext) -> None:
    """The provider's ratings, each unanswered review with a reply button."""
    await state.clear()
    provider = await services.marketplace.mine(query.from_user.id)
    if provider is None:
        await refuse(query, _("This button is no longer active."))
        return
    summary = await services.ratings.summary(provider.id, latest=20)
    builder = InlineKeyboardBuilder()
    for rating in summary.latest:
        if rating.review and not rating.reply:
            builder.button(text=words.reply_label(rating), callback_data=ReplyOpen(id=rating.id))
    builder.adjust(1)
    await show(query, words.provider_list(summary), builder.as_markup())


async def open_reply(query: CallbackQuery, callback_data: ReplyOpen, services: Services, state: FSMContext) -> None:
    rating = await services.ratings.get(callback_data.id)
    provider = await services.marketplace.mine(query.from_user.id)
    if rating is None or provider is None or rating.provider_id != provider.id:
        await refuse(query, _("This button is no longer active."))
        return
    if rating.reply:
        await refuse(query, words.problem(Problem.REPLIED))
        return
    await state.set_state(RatingFlow.reply)
    await state.update_data(rating_id=rating.id)
    await show(query, words.ask_reply(rating))


async def reply_typed(message: Message, services: Services, state: FSMContext) -> None:
    rating_id = int((await state.get_data())["rating_id"])
    try:
        await services.ratings.reply(message.from_user.id, rating_id, message.text or "")
    except RatingRefused as refused:
        await message.answer(words.problem(refused.problem))
        if refused.problem is not Problem.TEXT:
            await state.clear()
        return
    await state.clear()
    await message.answer(words.reply_saved())


def build_router() -> Router:
    router = Router(name="ratings")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.callback_query.register(open_rating, RateOpen.filter())
    router.callback_query.register(rate, RateStars.filter())
    router.callback_query.register(show_ratings, RatingsList.filter())
    router.callback_query.register(open_reply, ReplyOpen.filter())
    router.message.register(review_typed, StateFilter(RatingFlow.review), F.text, ~F.text.startswith("/"))
    router.message.register(reply_typed, StateFilter(RatingFlow.reply), F.text, ~F.text.startswith("/"))
    return router
