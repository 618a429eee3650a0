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
from handlers.user.checkout import offer_payment
from processing.alerts import AdminAlerts
from services.ai_tokens import PACKAGES, AiTokenShop, per_million
from services.checkout import CheckoutService
from services.money import usd


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
        "not_a_number": _("Please send a whole number of tokens, digits only, from {low:,} to {high:,}. "
                          "/cancel to stop."),
        "too_few": _("The smallest order is {low:,} tokens. Send a number from {low:,} to {high:,}."),
        "too_many": _("That's more than one order can hold for this model: up to {high:,} tokens "
                      "(orders are capped at {cap}). Send a number from {low:,} to {high:,}."),
        "no_headroom": _("AI tokens are temporarily unavailable. We've told the team; please try again "
                         "a little later."),
    }[problem].format(low=shop.rules.min_tokens, high=high, cap=usd(int(shop.rules.cap * 100)))


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
        builder.button(text=f"{names[name]} · {quote.tokens:,} — {usd(quote.total_cents)}",
                       callback_data=TokBuy(i=index, tokens=quote.tokens))
    builder.button(text=_("✍️ Custom amount"), callback_data=TokCustom(i=index))
    builder.button(text=_("⬅️ Models"), callback_data=Menu(section="tokens"))
    builder.adjust(1)
    limit = shop.rules.max_tokens(model)
    hidden = [tokens for _name, tokens in PACKAGES if tokens > limit]
    text = _("🤖 <b>{name}</b>\n<code>{id}</code>\n\nChoose a package:").format(name=model.name, id=model.id)
    if hidden:
        text += "\n\n" + _("One order holds up to {limit:,} tokens of this model ({cap} cap), so bigger "
                           "packages are not offered.").format(limit=limit, cap=usd(int(shop.rules.cap * 100)))
    return text, builder.as_markup()


def build_router() -> Router:
    router = Router(name="ai_tokens")

    @router.message(Command("tokens"))
    async def tokens_command(message: Message, ai_tokens: AiTokenShop):
        text, markup = await models_screen(ai_tokens)
        await message.answer(text, reply_markup=markup)

    @router.callback_query(Menu.filter(F.section == "tokens"))
    async def tokens_menu(query: CallbackQuery, ai_tokens: AiTokenShop, state: FSMContext):
        await state.clear()
        text, markup = await models_screen(ai_tokens)
        await query.message.edit_text(text, reply_markup=markup)
        await query.answer()

    @router.callback_query(TokModel.filter())
    async def pick_model(query: CallbackQuery, callback_data: TokModel, ai_tokens: AiTokenShop):
        screen = await packages_screen(ai_tokens, callback_data.i)
        if screen is None:
            await query.answer(problem_text("unknown_model", ai_tokens), show_alert=True)
            return
        await query.message.edit_text(screen[0], reply_markup=screen[1])
        await query.answer()

    async def place(target: Message, user_id: int, index: int, tokens: int, *, edit: bool, ai_tokens: AiTokenShop,
                    checkout: CheckoutService, alerts: AdminAlerts) -> str | None:
        placed = await ai_tokens.place(user_id, index, tokens)
        if placed.problem == "no_headroom":
            await alerts.low_headroom_at_sale()
        if placed.problem:
            return placed.problem
        await offer_payment(target, placed.order, checkout, edit=edit)
        return None

    @router.callback_query(TokBuy.filter())
    async def buy_package(query: CallbackQuery, callback_data: TokBuy, ai_tokens: AiTokenShop,
                          checkout: CheckoutService, alerts: AdminAlerts):
        problem = await place(query.message, query.from_user.id, callback_data.i, callback_data.tokens, edit=True,
                              ai_tokens=ai_tokens, checkout=checkout, alerts=alerts)
        await query.answer(problem_text(problem, ai_tokens) if problem else None, show_alert=bool(problem))

    @router.callback_query(TokCustom.filter())
    async def ask_amount(query: CallbackQuery, callback_data: TokCustom, ai_tokens: AiTokenShop,
                         state: FSMContext):
        model = await ai_tokens.prices.model(callback_data.i)
        if model is None or not ai_tokens.rules.sellable(model):
            await query.answer(problem_text("unknown_model", ai_tokens), show_alert=True)
            return
        await state.set_state(CustomAmount.tokens)
        await state.update_data(model_index=callback_data.i)
        await query.message.edit_text(_("✍️ How many tokens of {name}? Send a whole number from {low:,} to "
                                        "{high:,}.\n\n/cancel to stop.").format(
            name=model.name, low=ai_tokens.rules.min_tokens, high=ai_tokens.rules.max_tokens(model)))
        await query.answer()

    @router.message(StateFilter(CustomAmount.tokens), F.text, ~F.text.startswith("/"))
    async def custom_amount(message: Message, state: FSMContext, ai_tokens: AiTokenShop, checkout: CheckoutService,
                            alerts: AdminAlerts):
        index = (await state.get_data())["model_index"]
        model = await ai_tokens.prices.model(index)
        if model is None:
            await state.clear()
            await message.answer(problem_text("unknown_model", ai_tokens))
            return
        high = ai_tokens.rules.max_tokens(model)
        tokens, problem = ai_tokens.rules.parse_custom(message.text, model)
        if problem is None:
            problem = await place(message, message.from_user.id, index, tokens, edit=False, ai_tokens=ai_tokens,
                                  checkout=checkout, alerts=alerts)
        if problem in ("not_a_number", "too_few", "too_many"):
            await message.answer(problem_text(problem, ai_tokens, high=high))  # stays in the flow
            return
        await state.clear()
        if problem:
            await message.answer(problem_text(problem, ai_tokens, high=high))

    @router.message(StateFilter(CustomAmount.tokens))
    async def custom_not_text(message: Message, ai_tokens: AiTokenShop, state: FSMContext):
        model = await ai_tokens.prices.model((await state.get_data())["model_index"])
        high = ai_tokens.rules.max_tokens(model) if model else 0
        await message.answer(problem_text("not_a_number", ai_tokens, high=high))

    return router
