"""/tokens: pick a model, a package or a custom amount, pay, get an OpenRouter key."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Count, Index
from bot.keyboards import Menu
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from handlers.user.checkout import offer_payment
from presentation.ai_tokens import per_million
from presentation.formatting import number, usd
from services.ai_tokens import PACKAGES, AiTokenShop


class TokModel(CallbackData, prefix="tm"):
    i: Index


class TokBuy(CallbackData, prefix="tb"):
    i: Index
    tokens: Count


class TokCustom(CallbackData, prefix="tc"):
    i: Index


class CustomAmount(StatesGroup):
    tokens = State()


def package_names() -> dict[str, str]:
    return {"starter": _("Starter"), "standard": _("Standard"), "professional": _("Professional"),
            "enterprise": _("Enterprise")}


def problem_text(problem: str, shop: AiTokenShop, high: int = 0) -> str:
    return {
        "not_configured": _("AI tokens are not available right now."),
        "unknown_model": _("This model is not available any more. Please pick another one: /tokens"),
        "not_a_number": _("Please send a whole number of tokens, digits only, from {low} to {high}. "
                          "/cancel to stop."),
        "too_few": _("The smallest order is {low} tokens. Send a number from {low} to {high}."),
        "too_many": _("That's more than one order can hold for this model: up to {high} tokens "
                      "(orders are capped at {cap}). Send a number from {low} to {high}."),
        "no_headroom": _("AI tokens are temporarily unavailable. We've told the team; please try again "
                         "a little later."),
    }[problem].format(low=number(shop.rules.min_tokens), high=number(high), cap=usd(int(shop.rules.cap * 100)))


async def models_screen(shop: AiTokenShop) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    models = [m for m in await shop.prices.models() if shop.rules.sellable(m)] if shop.can_deliver else []
    for model in models:
        builder.button(text=f"{model.name} · {per_million(model, shop.rules.markup)}",
                       callback_data=TokModel(i=shop.prices.index(model.id)))
    builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))
    builder.adjust(1)
    if not shop.can_deliver:
        text = problem_text("not_configured", shop)
    elif not models:
        text = _("🤖 Prices are unavailable right now — OpenRouter isn't answering. Please try again in a few "
                 "minutes.")
    else:
        text = _("🤖 <b>AI tokens</b>\n\nPick a model. Prices are per 1M output tokens, everything included. "
                 "You get your own OpenRouter API key with the credit you buy.")
    return text, builder.as_markup()


async def packages_screen(shop: AiTokenShop, index: int) -> tuple[str, InlineKeyboardMarkup] | None:
    model = await shop.prices.model(index)
    if model is None or not shop.rules.sellable(model):
        return None
    names = package_names()
    builder = InlineKeyboardBuilder()
    for name, quote in shop.rules.packages(model):
        builder.button(text=f"{names[name]} · {number(quote.tokens)} — {usd(quote.total_cents)}",
                       callback_data=TokBuy(i=index, tokens=quote.tokens))
    builder.button(text=_("✍️ Custom amount"), callback_data=TokCustom(i=index))
    builder.button(text=_("⬅️ Models"), callback_data=Menu(section="tokens"))
    builder.adjust(1)
    limit = shop.rules.max_tokens(model)
    hidden = [tokens for _name, tokens in PACKAGES if tokens > limit]
    text = _("🤖 <b>{name}</b>\n<code>{id}</code>\n\nChoose a package:").format(name=model.name, id=model.id)
    if hidden:
        text += "\n\n" + _("One order holds up to {limit} tokens of this model ({cap} cap), so bigger "
                           "packages are not offered.").format(limit=number(limit), cap=usd(int(shop.rules.cap * 100)))
    return text, builder.as_markup()


async def show_models(event: Message | CallbackQuery, services: Services, state: FSMContext) -> None:
    """/tokens and its menu button: the models on sale (leaving a custom amount being typed)."""
    await state.clear()
    await show(event, *await models_screen(services.ai_tokens))


async def pick_model(query: CallbackQuery, callback_data: TokModel, services: Services) -> None:
    screen = await packages_screen(services.ai_tokens, callback_data.i)
    if screen is None:
        await refuse(query, problem_text("unknown_model", services.ai_tokens))
        return
    await show(query, *screen)


async def place(target: Message, user_id: int, index: int, tokens: int, *, edit: bool,
                services: Services) -> str | None:
    """Create the order and offer its payment; the problem if there is none to pay."""
    placed = await services.ai_tokens.place(user_id, index, tokens)
    if placed.problem == "no_headroom":
        await services.alerts.low_headroom_at_sale()
    if placed.problem:
        return placed.problem
    await offer_payment(target, placed.order, services.checkout, edit=edit)
    return None


async def buy_package(query: CallbackQuery, callback_data: TokBuy, services: Services) -> None:
    problem = await place(query.message, query.from_user.id, callback_data.i, callback_data.tokens, edit=True,
                          services=services)
    if problem:
        await refuse(query, problem_text(problem, services.ai_tokens))
    else:
        await acknowledge(query)


async def ask_amount(query: CallbackQuery, callback_data: TokCustom, services: Services, state: FSMContext) -> None:
    shop = services.ai_tokens
    model = await shop.prices.model(callback_data.i)
    if model is None or not shop.rules.sellable(model):
        await refuse(query, problem_text("unknown_model", shop))
        return
    await state.set_state(CustomAmount.tokens)
    await state.update_data(model_index=callback_data.i)
    await show(query, _("✍️ How many tokens of {name}? Send a whole number from {low} to {high}.\n\n"
                        "/cancel to stop.").format(name=model.name, low=number(shop.rules.min_tokens),
                                                   high=number(shop.rules.max_tokens(model))))


async def custom_amount(message: Message, state: FSMContext, services: Services) -> None:
    shop = services.ai_tokens
    index = (await state.get_data())["model_index"]
    model = await shop.prices.model(index)
    if model is None:
        await state.clear()
        await message.answer(problem_text("unknown_model", shop))
        return
    high = shop.rules.max_tokens(model)
    tokens, problem = shop.rules.parse_custom(message.text, model)
    if problem is None:
        problem = await place(message, message.from_user.id, index, tokens, edit=False, services=services)
    if problem in ("not_a_number", "too_few", "too_many"):
        await message.answer(problem_text(problem, shop, high=high))  # stays in the flow
        return
    await state.clear()
    if problem:
        await message.answer(problem_text(problem, shop, high=high))


async def custom_not_text(message: Message, services: Services, state: FSMContext) -> None:
    shop = services.ai_tokens
    model = await shop.prices.model((await state.get_data())["model_index"])
    high = shop.rules.max_tokens(model) if model else 0
    await message.answer(problem_text("not_a_number", shop, high=high))


def build_router() -> Router:
    router = Router(name="ai_tokens")
    router.message.register(show_models, Command("tokens"))
    router.callback_query.register(show_models, Menu.filter(F.section == "tokens"))
    router.callback_query.register(pick_model, TokModel.filter())
    router.callback_query.register(buy_package, TokBuy.filter())
    router.callback_query.register(ask_amount, TokCustom.filter())
    router.message.register(custom_amount, StateFilter(CustomAmount.tokens), F.text, ~F.text.startswith("/"))
    router.message.register(custom_not_text, StateFilter(CustomAmount.tokens))
    return router
