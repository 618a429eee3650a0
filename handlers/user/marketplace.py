"""/market (signal providers on sale, a provider's card, subscribing) and /provider (the application, a guided
conversation; then the provider's dashboard: state, subscribers, balance, pending, paid)."""

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
from bot.keyboards import Menu
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from handlers.user.checkout import offer_payment
from handlers.user.market_board import MarketOpen, add_chart_button, card_figures, show_board
from handlers.user.provider_signals import SignalDo
from handlers.user.ratings import RateOpen, RatingsList
from presentation import marketplace as words
from presentation import payouts as payout_words
from presentation import ratings as rating_words
from services.earnings import seller_account
from services.marketplace import (
    Application,
    Problem,
    Refused,
    parse_address,
    parse_description,
    parse_ecosystems,
    parse_name,
    parse_price,
    seller_of,
)
from services.marketplace import State as ProviderState
from services.marketplace_board import View


class MarketBuy(CallbackData, prefix="mkb"):
    id: RowId


class ProviderDo(CallbackData, prefix="prv"):
    do: str  # "apply", "telegram", "address", "submit", "cancel", "payouts", "home"


class ProviderFlow(StatesGroup):
    name = State()
    description = State()
    ecosystems = State()
    price = State()
    payout = State()
    address = State()
    confirm = State()


def _back(builder: InlineKeyboardBuilder) -> None:
    builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))


# ------------------------------------------------------------------------------------------ /market

async def show_market(event: Message | CallbackQuery, services: Services, state: FSMContext) -> None:
    """/market and its menu button: the approved providers ranked by score (handlers.user.market_board)."""
    await state.clear()
    await show_board(event, services, View())


async def open_provider(query: CallbackQuery, callback_data: MarketOpen, services: Services,
                        state: FSMContext) -> None:
    await state.clear()  # e.g. a review that was offered and not written
    if callback_data.id == 0:
        await show_market(query, services, state)
        return
    provider = await services.marketplace.get(callback_data.id)
    if provider is None or provider.status != ProviderState.APPROVED:
        await refuse(query, words.not_on_sale())
        return
    market = services.marketplace
    until = await market.subscribed_until(query.from_user.id, provider.id)
    builder = InlineKeyboardBuilder()
    if provider.user_id != query.from_user.id:
        builder.button(text=words.subscribe_label(provider), callback_data=MarketBuy(id=provider.id))
    add_chart_button(builder, provider.id)
    if provider.user_id != query.from_user.id:
        builder.button(text=rating_words.rate_label(), callback_data=RateOpen(id=provider.id))
    builder.button(text=_("⬅️ Signal marketplace"), callback_data=MarketOpen(id=0))
    builder.adjust(1)
    figures, card = await card_figures(services, provider.id)
    text = words.card(provider, card.subscribers, until, services.settings.tz)
    rated = rating_words.card_block(await services.ratings.summary(provider.id))
    await show(query, f"{text}\n\n{figures}\n\n{rated}", builder.as_markup())


async def buy(query: CallbackQuery, callback_data: MarketBuy, services: Services) -> None:
    order = await services.marketplace.place(query.from_user.id, callback_data.id)
    if order is None:
        await refuse(query, words.not_on_sale())
        return
    await acknowledge(query)
    await offer_payment(query.message, order, services.checkout, edit=True)


# ------------------------------------------------------------------------------------------ /provider

async def show_provider(event: Message | CallbackQuery, services: Services, state: FSMContext) -> None:
    """/provider: apply (nobody yet, or rejected), the review's wait, or the provider's dashboard."""
    await state.clear()
    settings, market = services.settings, services.marketplace
    provider = await market.mine(event.from_user.id)
    builder = InlineKeyboardBuilder()
    if provider is None or provider.status == ProviderState.REJECTED:
        builder.button(text=_("📝 Apply"), callback_data=ProviderDo(do="apply"))
        _back(builder)
        builder.adjust(1)
        await show(event, words.intro(provider, settings.marketplace_provider_share, settings.payout_hold_days),
                   builder.as_markup())
        return
    if provider.status == ProviderState.PENDING:
        await show(event, words.pending(provider))
        return
    balance = await services.earnings.balance(seller_of(provider.id))
    if provider.status == ProviderState.APPROVED:
        builder.button(text=_("📈 Publish a signal"), callback_data=SignalDo(do="home"))
    builder.button(text=_("💸 Payouts and statement"), callback_data=ProviderDo(do="payouts"))
    builder.button(text=rating_words.ratings_label(), callback_data=RatingsList())
    builder.adjust(1)
    await show(event, words.dashboard(provider, await market.subscribers(provider.id), balance, settings.tz),
               builder.as_markup())


async def show_statement(query: CallbackQuery, services: Services) -> None:
    """A provider's payouts and the latest movements of its balance."""
    provider = await services.marketplace.mine(query.from_user.id)
    if provider is None or provider.status in (ProviderState.PENDING, ProviderState.REJECTED):
        await refuse(query, _("This button is no longer active."))
        return
    seller = seller_of(provider.id)
    balance = await services.earnings.balance(seller)
    history = await services.ledger.account_history(seller_account(seller, "payable"), 20)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("⬅️ Back"), callback_data=ProviderDo(do="home"))
    await show(query, payout_words.statement(balance, await services.payouts.of_seller(seller), history,
                                             services.settings.tz), builder.as_markup())


def _cancel_markup():
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Cancel"), callback_data=ProviderDo(do="cancel"))
    return builder.as_markup()


async def provider_action(query: CallbackQuery, callback_data: ProviderDo, services: Services,
                          state: FSMContext) -> None:
    do = callback_data.do
    if do == "apply":
        provider = await services.marketplace.mine(query.from_user.id)
        if provider is not None and provider.status != ProviderState.REJECTED:
            await refuse(query, words.problem(Problem.ALREADY, *_range(services)))
            return
        await state.set_state(ProviderFlow.name)
        await show(query, words.ask_name(), _cancel_markup())
    elif do == "cancel":
        await state.clear()
        await show(query, _("Cancelled."))
    elif do == "payouts":
        await show_statement(query, services)
    elif do == "home":
        await show_provider(query, services, state)
    elif do in ("telegram", "address") and await state.get_state() == ProviderFlow.payout:
        await state.update_data(method=do, address=None)
        if do == "address":
            await state.set_state(ProviderFlow.address)
            await show(query, words.ask_address(), _cancel_markup())
        else:
            await _confirm(query, state)
    elif do == "submit" and await state.get_state() == ProviderFlow.confirm:
        await _submit(query, services, state)
    else:
        await refuse(query, _("This button is no longer active."))


def _range(services: Services):
    return services.settings.marketplace_price_range_usd


async def _step(message: Message, state: FSMContext, services: Services) -> None:
    """One typed answer of the application: checked, kept, and the next question asked (a refused answer is
    asked again, with why)."""
    current, text = await state.get_state(), message.text or ""
    low, high = _range(services)
    try:
        if current == ProviderFlow.name:
            await state.update_data(name=parse_name(text))
            await state.set_state(ProviderFlow.description)
            await message.answer(words.ask_description(), reply_markup=_cancel_markup())
        elif current == ProviderFlow.description:
            await state.update_data(description=parse_description(text))
            await state.set_state(ProviderFlow.ecosystems)
            await message.answer(words.ask_ecosystems(), reply_markup=_cancel_markup())
        elif current == ProviderFlow.ecosystems:
            await state.update_data(ecosystems=list(parse_ecosystems(text)))
            await state.set_state(ProviderFlow.price)
            await message.answer(words.ask_price(low, high), reply_markup=_cancel_markup())
        elif current == ProviderFlow.price:
            await state.update_data(price_cents=parse_price(text, (low, high)))
            await state.set_state(ProviderFlow.payout)
            builder = InlineKeyboardBuilder()
            for method in ("telegram", "address"):
                builder.button(text=words.payout_label(method), callback_data=ProviderDo(do=method))
            builder.button(text=_("Cancel"), callback_data=ProviderDo(do="cancel"))
            builder.adjust(1)
            await message.answer(words.ask_payout(), reply_markup=builder.as_markup())
        elif current == ProviderFlow.address:
            await state.update_data(address=parse_address(text))
            await _confirm(message, state)
    except Refused as refused:
        await message.answer(words.problem(refused.problem, low, high), reply_markup=_cancel_markup())


async def _confirm(event: Message | CallbackQuery, state: FSMContext) -> None:
    await state.set_state(ProviderFlow.confirm)
    data = await state.get_data()
    builder = InlineKeyboardBuilder()
    builder.button(text=_("📨 Submit"), callback_data=ProviderDo(do="submit"))
    builder.button(text=_("Cancel"), callback_data=ProviderDo(do="cancel"))
    builder.adjust(2)
    await show(event, words.summary(data["name"], data["description"], data["ecosystems"], data["price_cents"],
                                    data["method"], data.get("address")), builder.as_markup())


async def _submit(query: CallbackQuery, services: Services, state: FSMContext) -> None:
    data = await state.get_data()
    await state.clear()
    try:
        provider = await services.marketplace.apply(query.from_user.id, Application(
            name=data["name"], description=data["description"], ecosystems=tuple(data["ecosystems"]),
            price_cents=data["price_cents"], payout_method=data["method"], payout_address=data.get("address")))
    except Refused as refused:
        await refuse(query, words.problem(refused.problem, *_range(services)))
        return
    await show(query, words.applied())
    await services.notifier.alert_admins(lambda: words.admins_new_application(provider))


async def not_text(message: Message) -> None:
    await message.answer(_("Please answer with text, or tap Cancel."), reply_markup=_cancel_markup())


def build_router() -> Router:
    router = Router(name="marketplace")
    router.message.filter(F.chat.type == "private")  # applications and payments: in the private chat
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(show_market, Command("market"))
    router.callback_query.register(show_market, Menu.filter(F.section == "market"))
    router.callback_query.register(open_provider, MarketOpen.filter())
    router.callback_query.register(buy, MarketBuy.filter())
    router.message.register(show_provider, Command("provider"))
    router.callback_query.register(provider_action, ProviderDo.filter())
    typed = StateFilter(ProviderFlow.name, ProviderFlow.description, ProviderFlow.ecosystems, ProviderFlow.price,
                        ProviderFlow.address)
    router.message.register(_step, typed, F.text, ~F.text.startswith("/"))
    router.message.register(not_text, typed)
    return router
