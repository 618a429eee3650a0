"""Admins: /payouts — what sellers are owed, a payout run now (transfers to their Telegram accounts, manual
payouts listed), and recording a manual payout's reference. Runs and records are audited."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import RowId
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from presentation import payouts as words
from services.payouts import MANUAL, PayoutRefused, RunReport


class PayoutDo(CallbackData, prefix="pout"):
    do: str  # "home", "run", "record"
    id: RowId = 0


class ReferenceAsk(StatesGroup):
    reference = State()


def _markup(manual, extra: bool = True):
    builder = InlineKeyboardBuilder()
    if extra:
        builder.button(text=_("▶️ Run payouts now"), callback_data=PayoutDo(do="run"))
    for item in manual[:20]:
        builder.button(text=words.manual_label(item), callback_data=PayoutDo(do="record", id=item.id))
    builder.adjust(1)
    return builder.as_markup()


async def show_payouts(event: Message | CallbackQuery, services: Services, state: FSMContext) -> None:
    await state.clear()
    payouts = services.payouts
    last, due, total = await payouts.overview()
    manual = await payouts.open_manual()
    names = {}
    for item in manual:
        payee = await payouts.payee(item.seller)
        names[item.seller] = payee.name if payee is not None else item.seller
    await show(event, words.overview(last, due, total, manual, names, services.settings.tz), _markup(manual))


async def payout_tap(query: CallbackQuery, callback_data: PayoutDo, services: Services, state: FSMContext) -> None:
    if callback_data.do == "home":
        await show_payouts(query, services, state)
    elif callback_data.do == "run":
        await start_run(query, services)
    elif callback_data.do == "record":
        item = await services.payouts.get(callback_data.id)
        if item is None or item.state != MANUAL:
            await refuse(query, words.stale())
            return
        await state.set_state(ReferenceAsk.reference)
        await state.update_data(item_id=item.id)
        await show(query, words.ask_reference(item))
    else:
        await refuse(query, _("This button is no longer active."))


async def start_run(query: CallbackQuery, services: Services) -> None:
    """A payout run in the background: a progress message now, edited as transfers complete and finally into
    the run's report; refused while a run is going (any admin's, on any replica)."""
    admin_id = query.from_user.id

    async def finished(report: RunReport) -> InlineKeyboardMarkup | None:
        await services.audit.record(admin_id, "payout_run", f"payout_run:{report.run_id}", before={},
                                    after={"paid": len(report.paid), "manual": len(report.manual),
                                           "failed": len(report.failed), "waiting": len(report.waiting)})
        return _markup(report.manual, extra=False) if report.manual else None

    started = await services.payout_job.start(admin_id, query.message.chat.id, finished)
    if started.going is not None:
        await refuse(query, words.already_going(started.going))
        return
    await acknowledge(query, _("Paying in the background…"))


async def reference_typed(message: Message, services: Services, state: FSMContext) -> None:
    item_id = int((await state.get_data())["item_id"])
    try:
        item = await services.payouts.record_manual(item_id, message.text or "", message.from_user.id)
    except PayoutRefused as refused:
        if refused.why == "reference":
            await message.answer(words.bad_reference())
            return
        await state.clear()
        await message.answer(words.stale())
        return
    await state.clear()
    await services.audit.record(message.from_user.id, "payout_manual", f"payout:{item.id}",
                                before={"state": MANUAL}, after={"state": item.state, "reference": item.reference})
    await message.answer(words.recorded(item))
    await services.payout_job.tell_payees()


def build_router() -> Router:
    router = Router(name="admin_payouts")
    router.message.register(show_payouts, Command("payouts"))
    router.callback_query.register(payout_tap, PayoutDo.filter())
    router.message.register(reference_typed, StateFilter(ReferenceAsk.reference), F.text, ~F.text.startswith("/"))
    return router
