"""/api: developer API keys (create, list, roll, revoke), prepaid API credit (buy) and the outbound webhook
(set the URL, status and latest deliveries, rotate the secret, remove)."""

from __future__ import annotations

from datetime import timedelta

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Count, Index, RowId
from bot.keyboards import Menu
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from db.models_api import ApiKey
from handlers.user.checkout import offer_payment
from presentation import api as words
from presentation.formatting import usd
from services.api_credit import PACKAGES_CENTS, parse_amount
from services.api_keys import MAX_NAME, TooManyKeys
from services.api_webhooks import Refusal, WebhookRefused

#: Grace periods a rolled key may keep working (hours) — the buttons; anything else is forged.
GRACE_HOURS = (0, 1, 24)


class ApiDo(CallbackData, prefix="api"):
    do: str  # "new", "credit", "custom"


class ApiKeyOpen(CallbackData, prefix="ak"):
    id: RowId


class ApiKeyRoll(CallbackData, prefix="akr"):
    id: RowId
    hours: Index = -1  # -1: ask


class ApiKeyRevoke(CallbackData, prefix="akx"):
    id: RowId
    sure: bool = False


class ApiBuy(CallbackData, prefix="apb"):
    cents: Count


class ApiHook(CallbackData, prefix="awh"):
    do: str  # "open", "set", "rotate", "rotate_yes", "remove", "remove_yes"


class ApiFlow(StatesGroup):
    name = State()
    amount = State()
    webhook_url = State()


def back(builder: InlineKeyboardBuilder, section: str = "api") -> None:
    if section == "api":
        builder.button(text=_("⬅️ Developer API"), callback_data=Menu(section="api"))
    else:
        builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))


def home_markup(keys: list[ApiKey]) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for key in keys:
        builder.button(text=words.key_label(key), callback_data=ApiKeyOpen(id=key.id))
    builder.button(text=_("➕ New key"), callback_data=ApiDo(do="new"))
    builder.button(text=_("💳 Buy credit"), callback_data=ApiDo(do="credit"))
    builder.button(text=_("🔔 Webhook"), callback_data=ApiHook(do="open"))
    back(builder, "home")
    builder.adjust(1)
    return builder.as_markup()


async def show_home(event: Message | CallbackQuery, services: Services, state: FSMContext) -> None:
    """/api and its menu button: the keys and the credit (leaving a name or amount being typed)."""
    await state.clear()
    user_id = event.from_user.id
    keys = await services.api_keys.keys(user_id)
    text = words.home(keys, await services.ledger.credit(user_id), services.settings.tz,
                      services.settings.http_base_url)
    await show(event, text, home_markup(keys))


async def ask_name(query: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(ApiFlow.name)
    builder = InlineKeyboardBuilder()
    back(builder)
    await show(query, words.ask_name(), builder.as_markup())


async def create_key(message: Message, state: FSMContext, services: Services) -> None:
    name = " ".join((message.text or "").split())
    if not name or len(name) > MAX_NAME:
        await message.answer(words.bad_name())  # stays in the flow
        return
    await state.clear()
    try:
        key, raw = await services.api_keys.create(message.from_user.id, name)
    except TooManyKeys:
        await message.answer(words.too_many_keys())
        return
    builder = InlineKeyboardBuilder()
    back(builder)
    await message.answer(words.key_shown(key, raw), reply_markup=builder.as_markup())


async def name_not_text(message: Message) -> None:
    await message.answer(words.bad_name())


async def open_key(query: CallbackQuery, callback_data: ApiKeyOpen, services: Services) -> None:
    key = await services.api_keys.get(query.from_user.id, callback_data.id)
    if key is None:
        await refuse(query, words.key_gone())
        return
    builder = InlineKeyboardBuilder()
    if key.grace_until is None:
        builder.button(text=_("🔄 Roll"), callback_data=ApiKeyRoll(id=key.id))
    builder.button(text=_("🚫 Revoke"), callback_data=ApiKeyRevoke(id=key.id))
    back(builder)
    builder.adjust(*((2, 1) if key.grace_until is None else (1,)))
    await show(query, words.key_card(key, services.settings.tz), builder.as_markup())


async def roll_key(query: CallbackQuery, callback_data: ApiKeyRoll, services: Services) -> None:
    user_id, keys = query.from_user.id, services.api_keys
    key = await keys.get(user_id, callback_data.id)
    if key is None or key.grace_until is not None:
        await refuse(query, words.key_gone())
        return
    if callback_data.hours == -1:
        builder = InlineKeyboardBuilder()
        for hours in GRACE_HOURS:
            builder.button(text=words.grace_label(hours), callback_data=ApiKeyRoll(id=key.id, hours=hours))
        builder.button(text=_("Cancel"), callback_data=ApiKeyOpen(id=key.id))
        builder.adjust(len(GRACE_HOURS), 1)
        await show(query, words.ask_grace(key), builder.as_markup())
        return
    if callback_data.hours not in GRACE_HOURS:
        await refuse(query, words.key_gone())
        return
    done = await keys.roll(user_id, key.id, timedelta(hours=callback_data.hours))
    if done is None:
        await refuse(query, words.key_gone())
        return
    new, raw = done
    old = await keys.get(user_id, key.id)  # still usable: in its grace period
    until = old.grace_until if old is not None else None
    builder = InlineKeyboardBuilder()
    back(builder)
    await show(query, words.rolled(new, raw, until, services.settings.tz), builder.as_markup())


async def revoke_key(query: CallbackQuery, callback_data: ApiKeyRevoke, services: Services) -> None:
    user_id = query.from_user.id
    key = await services.api_keys.get(user_id, callback_data.id)
    if key is None:
        await refuse(query, words.key_gone())
        return
    builder = InlineKeyboardBuilder()
    if not callback_data.sure:
        builder.button(text=_("🚫 Yes, revoke"), callback_data=ApiKeyRevoke(id=key.id, sure=True))
        builder.button(text=_("Cancel"), callback_data=ApiKeyOpen(id=key.id))
        builder.adjust(2)
        await show(query, words.ask_revoke(key), builder.as_markup())
        return
    if not await services.api_keys.revoke(user_id, key.id):
        await refuse(query, words.key_gone())
        return
    back(builder)
    await show(query, words.revoked(key), builder.as_markup())


async def credit_screen(query: CallbackQuery, services: Services) -> None:
    user_id = query.from_user.id
    builder = InlineKeyboardBuilder()
    for cents in PACKAGES_CENTS:
        builder.button(text=usd(cents), callback_data=ApiBuy(cents=cents))
    builder.button(text=_("✍️ Custom amount"), callback_data=ApiDo(do="custom"))
    back(builder)
    builder.adjust(len(PACKAGES_CENTS), 1, 1)
    text = words.credit_screen(await services.ledger.credit(user_id), await services.ledger.history(user_id, 5))
    await show(query, text, builder.as_markup())


async def buy(query: CallbackQuery, callback_data: ApiBuy, services: Services) -> None:
    placed = await services.api_credit.place(query.from_user.id, callback_data.cents)
    if placed.problem:
        await refuse(query, words.amount_problem(placed.problem))
        return
    await acknowledge(query)
    await offer_payment(query.message, placed.order, services.checkout, edit=True)


async def ask_amount(query: CallbackQuery, state: FSMContext) -> None:
    await state.set_state(ApiFlow.amount)
    await show(query, words.ask_amount())


async def custom_amount(message: Message, state: FSMContext, services: Services) -> None:
    cents, problem = parse_amount(message.text)
    placed = await services.api_credit.place(message.from_user.id, cents) if problem is None else None
    problem = problem or placed.problem
    if problem:
        await message.answer(words.amount_problem(problem))  # stays in the flow
        return
    await state.clear()
    await offer_payment(message, placed.order, services.checkout, edit=False)


async def amount_not_text(message: Message) -> None:
    await message.answer(words.amount_problem(parse_amount(None)[1]))


async def action(query: CallbackQuery, callback_data: ApiDo, services: Services, state: FSMContext) -> None:
    if callback_data.do == "new":
        await ask_name(query, state)
    elif callback_data.do == "credit":
        await state.clear()
        await credit_screen(query, services)
    elif callback_data.do == "custom":
        await ask_amount(query, state)
    else:
        await refuse(query, words.key_gone())


# ------------------------------------------------------------------------------------------ webhook

async def webhook_screen(query: CallbackQuery, services: Services) -> None:
    user_id = query.from_user.id
    hook = await services.webhooks.get(user_id)
    paid = (await services.subscriptions.current_plan(user_id)).is_paid
    deliveries = await services.webhooks.deliveries(user_id, 10) if hook is not None else []
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✍️ Change URL") if hook else _("✍️ Set URL"), callback_data=ApiHook(do="set"))
    if hook is not None:
        builder.button(text=_("🔄 Refresh"), callback_data=ApiHook(do="open"))
        builder.button(text=_("🔑 Rotate secret"), callback_data=ApiHook(do="rotate"))
        builder.button(text=_("🗑 Remove"), callback_data=ApiHook(do="remove"))
    back(builder)
    builder.adjust(*((2, 2, 1) if hook is not None else (1, 1)))
    await show(query, words.webhook_screen(hook, deliveries, paid, services.settings.tz), builder.as_markup())


async def ask_webhook_url(query: CallbackQuery, state: FSMContext, services: Services) -> None:
    if not (await services.subscriptions.current_plan(query.from_user.id)).is_paid:
        await refuse(query, words.webhook_refused(Refusal.PAID_ONLY))
        return
    await state.set_state(ApiFlow.webhook_url)
    builder = InlineKeyboardBuilder()
    builder.button(text=_("Cancel"), callback_data=ApiHook(do="open"))
    await show(query, words.ask_webhook_url(), builder.as_markup())


async def set_webhook(message: Message, state: FSMContext, services: Services) -> None:
    try:
        hook, secret = await services.webhooks.register(message.from_user.id, message.text or "")
    except WebhookRefused as exc:
        if exc.refusal == Refusal.PAID_ONLY:
            await state.clear()
        await message.answer(words.webhook_refused(exc.refusal))  # otherwise stays in the flow
        return
    await state.clear()
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🔔 Webhook"), callback_data=ApiHook(do="open"))
    back(builder)
    builder.adjust(1)
    await message.answer(words.webhook_set(hook, secret), reply_markup=builder.as_markup())


async def webhook_url_not_text(message: Message) -> None:
    await message.answer(words.webhook_refused(Refusal.BAD_URL))


async def webhook_action(query: CallbackQuery, callback_data: ApiHook, services: Services, state: FSMContext) -> None:
    do, user_id, builder = callback_data.do, query.from_user.id, InlineKeyboardBuilder()
    if do == "set":
        await ask_webhook_url(query, state, services)
        return
    await state.clear()
    if do == "open":
        await webhook_screen(query, services)
        return
    if do not in ("rotate", "rotate_yes", "remove", "remove_yes") or await services.webhooks.get(user_id) is None:
        await refuse(query, words.webhook_gone())
        return
    if do in ("rotate", "remove"):
        builder.button(text=_("🔑 Yes, new secret") if do == "rotate" else _("🗑 Yes, remove"),
                       callback_data=ApiHook(do=f"{do}_yes"))
        builder.button(text=_("Cancel"), callback_data=ApiHook(do="open"))
        builder.adjust(2)
        await show(query, words.ask_rotate() if do == "rotate" else words.ask_remove_webhook(), builder.as_markup())
        return
    if do == "rotate_yes":
        secret = await services.webhooks.rotate_secret(user_id)
        if secret is None:
            await refuse(query, words.webhook_gone())
            return
        text = words.secret_rotated(secret)
    else:
        if not await services.webhooks.remove(user_id):
            await refuse(query, words.webhook_gone())
            return
        text = words.webhook_removed()
    builder.button(text=_("🔔 Webhook"), callback_data=ApiHook(do="open"))
    back(builder)
    builder.adjust(1)
    await show(query, text, builder.as_markup())


def build_router() -> Router:
    router = Router(name="api")
    # keys, secrets and download links are shown here: only in a private chat, never in a group
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(show_home, Command("api"))
    router.callback_query.register(show_home, Menu.filter(F.section == "api"))
    router.callback_query.register(action, ApiDo.filter())
    router.callback_query.register(open_key, ApiKeyOpen.filter())
    router.callback_query.register(roll_key, ApiKeyRoll.filter())
    router.callback_query.register(revoke_key, ApiKeyRevoke.filter())
    router.callback_query.register(buy, ApiBuy.filter(F.cents.in_(PACKAGES_CENTS)))  # custom amounts are typed
    router.callback_query.register(webhook_action, ApiHook.filter())
    router.message.register(create_key, StateFilter(ApiFlow.name), F.text, ~F.text.startswith("/"))
    router.message.register(name_not_text, StateFilter(ApiFlow.name))
    router.message.register(custom_amount, StateFilter(ApiFlow.amount), F.text, ~F.text.startswith("/"))
    router.message.register(amount_not_text, StateFilter(ApiFlow.amount))
    router.message.register(set_webhook, StateFilter(ApiFlow.webhook_url), F.text, ~F.text.startswith("/"))
    router.message.register(webhook_url_not_text, StateFilter(ApiFlow.webhook_url))
    return router
