"""/signal for marketplace providers who do not code: a guided form (market, pair, side, entry, targets, stop,
timeframe, note, then a preview to publish) and the provider's open signals, to report a target hit, the stop
or a close. Every answer is checked by the ingest API's own model as it is given (a wrong one is asked again,
with why); publishing is the API's call (`SignalService.ingest` / `add_event` with the provider's id): the
same hash chain, the same delivery to the provider's subscribers. Anyone but an approved provider is told
where to go; nothing is stored for them."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Index, RowId
from bot.screens import refuse, show
from bot.wiring import Services
from db.models_marketplace import Provider
from presentation import provider_signals as words
from services.marketplace import State as ProviderState
from services.money import plain
from services.provider_signals import (
    OPEN_SHOWN,
    STEPS,
    TIMEFRAMES,
    OpenSignal,
    check_answers,
    new_form_id,
    open_signals,
    own_signal,
    read_price,
    read_prices,
    sender_ref,
)
from services.signals import EventIn, EventOutcome, InvalidInput, SignalIn, validate

EVENT_TYPES = ("tp_hit", "sl_hit", "closed")


class SignalDo(CallbackData, prefix="psg"):
    do: str  # "home", "new", "eco", "side", "tf", "skip", "publish", "cancel"
    arg: str = ""  # the ecosystem's position, the side, the timeframe, the form's id


class SignalPick(CallbackData, prefix="pso"):
    id: RowId  # one of the provider's own signals


class SignalMark(CallbackData, prefix="psm"):
    id: RowId
    type: str  # "tp_hit", "sl_hit", "closed"
    level: Index = 0
    sure: Index = 0  # 1: the confirmation was tapped


class SignalForm(StatesGroup):
    ecosystem = State()
    symbol = State()
    side = State()
    entry = State()
    take_profits = State()
    stop_loss = State()
    timeframe = State()
    note = State()
    preview = State()
    close_price = State()


async def _publisher(event: Message | CallbackQuery, services: Services) -> Provider | None:
    """The caller's provider if it may publish now; anyone else is told why not (nothing changes)."""
    provider = await services.marketplace.mine(event.from_user.id)
    if provider is not None and provider.status == ProviderState.APPROVED:
        return provider
    if provider is not None and provider.status == ProviderState.SUSPENDED:
        await refuse(event, words.suspended(provider.reason))
    elif provider is not None and provider.status == ProviderState.PENDING:
        await refuse(event, words.pending())
    else:
        await refuse(event, words.not_provider())
    return None


def _home_button(builder: InlineKeyboardBuilder) -> None:
    builder.button(text=words.back_label(), callback_data=SignalDo(do="home"))


# ------------------------------------------------------------------------------------------ the first screen

async def show_home(event: Message | CallbackQuery, services: Services, state: FSMContext) -> None:
    """/signal, and the button on the provider's dashboard: New signal, and the open signals."""
    await state.clear()
    provider = await _publisher(event, services)
    if provider is None:
        return
    opened = await open_signals(services.signals, provider.id)
    builder = InlineKeyboardBuilder()
    builder.button(text=words.new_label(), callback_data=SignalDo(do="new"))
    for signal in opened:
        builder.button(text=words.open_label(signal), callback_data=SignalPick(id=signal.id))
    builder.adjust(1)
    await show(event, words.home(provider.name, opened, OPEN_SHOWN), builder.as_markup())


# ------------------------------------------------------------------------------------------ the form

def _question(step: str, data: dict, provider: Provider) -> tuple[str, InlineKeyboardMarkup]:
    """A step's question and its buttons."""
    builder = InlineKeyboardBuilder()
    if step == "ecosystem":
        for i, name in enumerate(provider.ecosystems):
            builder.button(text=name, callback_data=SignalDo(do="eco", arg=str(i)))
    elif step == "side":
        for side in ("long", "short"):
            builder.button(text=words.side_label(side), callback_data=SignalDo(do="side", arg=side))
    elif step == "timeframe":
        for timeframe in TIMEFRAMES:
            builder.button(text=words.timeframe_label(timeframe), callback_data=SignalDo(do="tf", arg=timeframe))
    if step in ("timeframe", "note"):
        builder.button(text=words.skip_label(), callback_data=SignalDo(do="skip"))
    builder.button(text=words.cancel_label(), callback_data=SignalDo(do="cancel"))
    rows = {"ecosystem": [2] * ((len(provider.ecosystems) + 1) // 2) + [1], "side": [2, 1],
            "timeframe": [len(TIMEFRAMES), 2], "note": [2]}.get(step, [1])
    builder.adjust(*rows)
    return words.ask(step, side=data.get("side"), entry=data.get("entry")), builder.as_markup()


def _answers(data: dict) -> dict:
    """The form's answers so far, as the API's body (the form's id as the sender's id)."""
    return {"id": data["form"], **{step: data[step] for step in STEPS if step in data}}


def _read(step: str, text: str) -> str | list[str]:
    """A typed answer as the API's body has it (prices as decimal strings); InvalidInput if it cannot be read."""
    if step in ("entry", "stop_loss"):
        return read_price(text, decimal_comma=words.decimal_comma(), field=step)
    if step == "take_profits":
        return read_prices(text, decimal_comma=words.decimal_comma())
    return text


async def _advance(event: Message | CallbackQuery, state: FSMContext, services: Services, provider: Provider,
                   step: str, value: str | None = None, *, typed: str | None = None) -> None:
    """Check the answer to `step` (a button's `value`, or `typed` text) with the answers before it; keep it and
    ask the next question, or ask again with the reason."""
    data = await state.get_data()
    try:
        value = _read(step, typed) if typed is not None else value
        signal = check_answers({**_answers(data), step: value})
    except InvalidInput as exc:
        text, markup = _question(step, data, provider)
        await show(event, words.wrong(exc.field, exc.message) + "\n\n" + text, markup)
        return
    data = await state.update_data({step: value})
    following = STEPS[STEPS.index(step) + 1:]
    if following:
        await state.set_state(getattr(SignalForm, following[0]))
        await show(event, *_question(following[0], data, provider))
        return
    await _preview(event, state, services, provider, signal)


async def _preview(event: Message | CallbackQuery, state: FSMContext, services: Services, provider: Provider,
                   signal: SignalIn | None = None) -> None:
    data = await state.get_data()
    signal = signal or check_answers(_answers(data))
    await state.set_state(SignalForm.preview)
    builder = InlineKeyboardBuilder()
    builder.button(text=words.publish_label(), callback_data=SignalDo(do="publish", arg=data["form"]))
    builder.button(text=words.cancel_label(), callback_data=SignalDo(do="cancel"))
    builder.adjust(2)
    await show(event, words.preview(signal, await services.marketplace.subscribers(provider.id)),
               builder.as_markup())


async def form_action(query: CallbackQuery, callback_data: SignalDo, services: Services,
                      state: FSMContext) -> None:
    """The form's buttons: start, a market, a side, a timeframe, Skip, Publish, Cancel."""
    do, arg = callback_data.do, callback_data.arg
    if do == "cancel":
        await state.clear()
        await show(query, _("Cancelled."))
        return
    provider = await _publisher(query, services)
    if provider is None:
        return
    current = await state.get_state()
    if do == "new":
        await state.set_data({"form": new_form_id()})
        await state.set_state(SignalForm.ecosystem)
        await show(query, *_question("ecosystem", {}, provider))
    elif do == "eco" and current == SignalForm.ecosystem and arg.isascii() and arg.isdigit() \
            and int(arg) < len(provider.ecosystems):
        await _advance(query, state, services, provider, "ecosystem", provider.ecosystems[int(arg)])
    elif do == "side" and current == SignalForm.side and arg in ("long", "short"):
        await _advance(query, state, services, provider, "side", arg)
    elif do == "tf" and current == SignalForm.timeframe and arg in TIMEFRAMES:
        await _advance(query, state, services, provider, "timeframe", arg)
    elif do == "skip" and current == SignalForm.timeframe:
        await _advance(query, state, services, provider, "timeframe", None)
    elif do == "skip" and current == SignalForm.note:
        await _advance(query, state, services, provider, "note", None)
    elif do == "publish":
        await _publish(query, state, services, provider, arg)
    else:
        await refuse(query, words.stale())


async def _publish(query: CallbackQuery, state: FSMContext, services: Services, provider: Provider,
                   form: str) -> None:
    """The API's ingest with the form's id as the sender's id: a second tap (or two at once) is its duplicate.
    The answers stay after publishing (only the step is left), so a second tap is answered as such."""
    data = await state.get_data()
    if not form or data.get("form") != form or "stop_loss" not in data:
        await refuse(query, words.stale())
        return
    try:
        signal = check_answers(_answers(data))
    except InvalidInput:
        await refuse(query, words.stale())
        return
    result = await services.signals.ingest(signal, provider_id=provider.id)
    await state.set_state(None)
    builder = InlineKeyboardBuilder()
    _home_button(builder)
    if not result.created:
        await show(query, words.already_published(result.signal_id), builder.as_markup())
        return
    services.signal_delivery.wake()
    await show(query, words.published(result.signal_id, result.recipients), builder.as_markup())


async def form_typed(message: Message, state: FSMContext, services: Services) -> None:
    """A typed answer to the current step (or the closing price of an open signal)."""
    provider = await _publisher(message, services)
    if provider is None:
        await state.clear()
        return
    step = (await state.get_state() or "").partition(":")[2]
    text = message.text or ""
    if step in ("ecosystem", "side"):
        question, markup = _question(step, await state.get_data(), provider)
        await message.answer(words.press_a_button() + "\n\n" + question, reply_markup=markup)
        return
    if step == "preview":  # the preview again, with its buttons
        await _preview(message, state, services, provider)
        return
    if step == "close_price":
        await _close_price(message, state, provider, services, text)
    else:
        await _advance(message, state, services, provider, step, typed=text)


async def not_text(message: Message) -> None:
    builder = InlineKeyboardBuilder()
    builder.button(text=words.cancel_label(), callback_data=SignalDo(do="cancel"))
    await message.answer(words.answer_with_text(), reply_markup=builder.as_markup())


# ------------------------------------------------------------------------------------------ events

async def _open_signal(query: CallbackQuery, services: Services, signal_id: int) -> OpenSignal | None:
    """The tapping provider's own open signal; None (the tap answered with why) otherwise."""
    provider = await _publisher(query, services)
    if provider is None:
        return None
    found = await own_signal(services.signals, provider.id, signal_id)
    if found is None:
        await refuse(query, words.not_yours())
        return None
    if found.closed:
        await refuse(query, words.event_closed())
        return None
    return found


async def pick(query: CallbackQuery, callback_data: SignalPick, services: Services, state: FSMContext) -> None:
    """One of the provider's open signals: a button per target not yet hit, the stop, a close at a price."""
    await state.clear()
    found = await _open_signal(query, services, callback_data.id)
    if found is None:
        return
    signal, builder = found.signal, InlineKeyboardBuilder()
    for level, price in enumerate(signal.take_profits, 1):
        if level not in found.hit:
            builder.button(text=words.tp_label(level, price),
                           callback_data=SignalMark(id=signal.id, type="tp_hit", level=level))
    builder.button(text=words.sl_label(signal.stop_loss), callback_data=SignalMark(id=signal.id, type="sl_hit"))
    builder.button(text=words.close_label(), callback_data=SignalMark(id=signal.id, type="closed"))
    _home_button(builder)
    builder.adjust(1)
    await show(query, words.signal_card(found, services.settings.tz), builder.as_markup())


def _confirm_markup(signal_id: int, type_: str, level: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=words.confirm_label(), callback_data=SignalMark(id=signal_id, type=type_, level=level,
                                                                        sure=1))
    builder.button(text=words.back_label(), callback_data=SignalPick(id=signal_id))
    builder.adjust(2)
    return builder.as_markup()


async def mark(query: CallbackQuery, callback_data: SignalMark, services: Services, state: FSMContext) -> None:
    """A target hit, the stop or a close: asked to confirm, then the API's add_event on the provider's chain."""
    found = await _open_signal(query, services, callback_data.id)
    if found is None:
        return
    signal, type_, level = found.signal, callback_data.type, callback_data.level
    if type_ not in EVENT_TYPES:
        await refuse(query, words.stale())
        return
    if type_ == "tp_hit" and not 1 <= level <= len(signal.take_profits):
        await refuse(query, words.wrong_level(len(signal.take_profits)))
        return
    data = await state.get_data()
    if type_ == "closed" and not callback_data.sure:
        await state.set_data({"signal": signal.id})
        await state.set_state(SignalForm.close_price)
        builder = InlineKeyboardBuilder()
        builder.button(text=words.back_label(), callback_data=SignalPick(id=signal.id))
        await show(query, words.ask_close_price(signal), builder.as_markup())
        return
    if type_ == "closed" and (data.get("signal") != signal.id or "close_price" not in data):
        await refuse(query, words.stale())
        return
    price = {"tp_hit": lambda: signal.take_profits[level - 1], "sl_hit": lambda: plain(signal.stop_loss),
             "closed": lambda: data["close_price"]}[type_]()
    if not callback_data.sure:
        await show(query, words.confirm_event(signal, type_, level, price), _confirm_markup(signal.id, type_, level))
        return
    body = {"type": type_, "price": str(price), **({"level": level} if type_ == "tp_hit" else {})}
    try:
        result = await services.signals.add_event(sender_ref(signal), validate(EventIn, body),
                                                  provider_id=signal.provider_id)
    except InvalidInput as exc:
        await refuse(query, words.wrong(exc.field, exc.message))
        return
    if type_ == "closed":
        await state.clear()
    builder = InlineKeyboardBuilder()
    _home_button(builder)
    if result.status is EventOutcome.NOT_FOUND:
        await refuse(query, words.not_yours())
    elif result.status is EventOutcome.CLOSED:
        await refuse(query, words.event_closed())
    elif result.status is EventOutcome.DUPLICATE:
        await show(query, words.event_duplicate(), builder.as_markup())
    else:
        services.signal_delivery.wake()
        await show(query, words.event_recorded(result.recipients), builder.as_markup())


async def _close_price(message: Message, state: FSMContext, provider: Provider, services: Services,
                       text: str) -> None:
    """The typed closing price: checked as the API's event, then the confirmation."""
    data = await state.get_data()
    found = await own_signal(services.signals, provider.id, int(data.get("signal") or 0))
    if found is None or found.closed:
        await state.clear()
        await message.answer(words.event_closed() if found is not None else words.not_yours())
        return
    try:
        price = read_price(text, decimal_comma=words.decimal_comma())
        event = validate(EventIn, {"type": "closed", "price": price})
    except InvalidInput as exc:
        builder = InlineKeyboardBuilder()
        builder.button(text=words.back_label(), callback_data=SignalPick(id=found.signal.id))
        await message.answer(words.wrong(exc.field, exc.message) + "\n\n" + words.ask_close_price(found.signal),
                             reply_markup=builder.as_markup())
        return
    await state.update_data(close_price=plain(event.price))
    await message.answer(words.confirm_event(found.signal, "closed", 0, event.price),
                         reply_markup=_confirm_markup(found.signal.id, "closed", 0))


def build_router() -> Router:
    router = Router(name="provider_signals")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(show_home, Command("signal"))
    router.callback_query.register(show_home, SignalDo.filter(F.do == "home"))
    router.callback_query.register(form_action, SignalDo.filter())
    router.callback_query.register(pick, SignalPick.filter())
    router.callback_query.register(mark, SignalMark.filter())
    typed = StateFilter(*(getattr(SignalForm, step) for step in STEPS), SignalForm.preview, SignalForm.close_price)
    router.message.register(form_typed, typed, F.text, ~F.text.startswith("/"))
    router.message.register(not_text, typed)
    return router
