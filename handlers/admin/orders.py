"""Admins: /refund <order_id> (always confirmed first), /refund_done <order_id> <tx>, /orders <user_id>.

The confirmation (`RefundAct`) is the one refund flow of the bot: the user card's refund buttons
open it too."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.screens import refuse, reply_target, show
from bot.wiring import Services
from handlers.user.orders import orders_text
from presentation.formatting import order_title, usd
from presentation.refunds import admin_request_line, owed_text
from presentation.texts import provider_name, status_label
from processing.refunds import HandRefundProblem, Owed, Preview, RefundAct, RefundProblem, RefundResult, SentCb
from services.refunds import RefundKind, RequestState

MAX_ORDER_ID = 2**31 - 1


class RecordTx(StatesGroup):
    reference = State()


def order_id_arg(text: str | None) -> int | None:
    """An order id as an admin types it ("42" or "#42"); None for anything else (letters, "²", 30 digits)."""
    value = (text or "").strip().lstrip("#")
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 0 < int(value) <= MAX_ORDER_ID:
        return None
    return int(value)


def refund_problem(order_id: int, refusal: RefundProblem, *, status: str | None = None,
                   credited_to: int | None = None, detail: str = "") -> str:
    """Why a refund did not happen, in words (`status`, `credited_to`, `detail`: as the refusal has them)."""
    match refusal:
        case RefundProblem.NOT_FOUND:
            return _("Order #{id} doesn't exist.").format(id=order_id)
        case RefundProblem.NO_MONEY:
            return _("Order #{id} is {status}: nothing to refund.").format(id=order_id,
                                                                        status=status_label(status or "?"))
        case RefundProblem.NO_EXCESS:
            return _("Order #{id} has no overpaid amount left to refund.").format(id=order_id)
        case RefundProblem.CREDITED:
            return _("Order #{id} can't be refunded on its own: its unused plan time was credited to upgrade "
                     "order #{upgrade}, so refunding it would pay that value twice. Refund order #{upgrade} "
                     "instead: that takes back the higher plan and gives this order's time back; refund #{id} "
                     "after that if needed.").format(id=order_id, upgrade=credited_to)
        case RefundProblem.ALREADY:
            return _("Order #{id} is already being refunded.").format(id=order_id)
        case RefundProblem.PROVIDER_UNAVAILABLE:
            reason = _("its payment provider is switched off, so the payment can't be returned")
        case _:
            reason = html.escape(detail.removeprefix("telegram:"))
    return _("Refund of order #{id} failed: {reason}. Nothing was changed.").format(id=order_id, reason=reason)


def _owed_line(item: Owed) -> str:
    amount = owed_text(item.amount, item.asset)
    if item.automatic:
        return _("• {amount} will be sent back automatically ({provider})").format(
            amount=amount, provider=html.escape(provider_name(item.payment.provider)))
    return _("• {amount} on-chain ({provider}): the buyer is asked for an address, then you send it by hand "
             "and record the transaction").format(amount=amount,
                                                  provider=html.escape(provider_name(item.payment.provider)))


def preview_text(preview: Preview) -> str:
    order = preview.order
    lines = [_("↩️ <b>Refund order #{id}</b> to user <code>{user}</code>?").format(id=order.id, user=order.user_id),
             f"{html.escape(order_title(order))} · {usd(order.amount_cents)} · {status_label(order.status)}"]
    if preview.kind == RefundKind.EXCESS:
        lines.append(_("Only what was paid over the price goes back; the order stays as it is."))
    elif preview.takes_back:
        lines.append(_("Takes back: {what}.").format(what=preview.takes_back()))
    lines.append(_("Money back:") if preview.owed else _("No payment to send back."))
    lines += [_owed_line(item) for item in preview.owed]
    return "\n".join(lines)


def preview_markup(preview: Preview, back: int) -> InlineKeyboardMarkup:
    order_id = preview.order.id
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Confirm refund"), callback_data=RefundAct(action="yes", order_id=order_id,
                                                                       kind=preview.kind, back=back))
    if preview.kind == RefundKind.FULL and preview.excess:
        over = ", ".join(owed_text(o.amount, o.asset) for o in preview.excess)
        builder.button(text=_("↩️ Refund only the overpaid {amount}").format(amount=over),
                       callback_data=RefundAct(action="yes", order_id=order_id, kind=RefundKind.EXCESS, back=back))
    builder.button(text=_("Cancel"), callback_data=RefundAct(action="no", order_id=order_id, back=back))
    builder.adjust(1)
    return builder.as_markup()


def result_text(result: RefundResult) -> str:
    if result.kind == RefundKind.FULL:
        lines = [_("↩️ Order #{id} refunded; the buyer has been told what changes.").format(id=result.order_id)]
        if result.taken_back is not None:
            lines.append(result.taken_back.text())
        else:
            lines.append(_("⚠️ Taking the product back failed ({error}); it is retried every minute.").format(
                error=html.escape(result.takeback_error or "?")))
    else:
        lines = [_("↩️ Refunding the overpaid part of order #{id}; the buyer has been told.").format(
            id=result.order_id)]
    lines += [admin_request_line(r) for r in result.requests]
    return "\n".join(lines)


def back_markup(user_id: int) -> InlineKeyboardMarkup | None:
    if not user_id:
        return None
    from handlers.admin.users import UserAct  # the card imports this module

    builder = InlineKeyboardBuilder()
    builder.button(text=_("⬅️ Back to the user"), callback_data=UserAct(action="card", user_id=user_id))
    return builder.as_markup()


def sent_answer(problem: HandRefundProblem | None) -> str:
    if problem is None:
        return _("✅ Recorded; the buyer has been sent the transaction.")
    if problem == HandRefundProblem.STATE:
        return _("That refund is not waiting to be sent by hand (already recorded?). Nothing was changed.")
    return _("No such refund. Nothing was changed.")


async def ask_refund(event: Message | CallbackQuery, services: Services, command: CommandObject | None = None,
                     callback_data: RefundAct | None = None) -> None:
    """/refund ORDER_ID and the Refund buttons: what refunding would do, with Confirm / Cancel. The user
    card's button shows it in the card (Back returns there); an overpayment alert's opens a new message."""
    if callback_data is None:
        order_id = order_id_arg(command.args if command else None)
        if order_id is None:
            await event.answer(_("Usage: /refund ORDER_ID, e.g. /refund 42"))
            return
        kind, back = RefundKind.FULL, 0
    else:
        order_id, back = callback_data.order_id, callback_data.back
        kind = callback_data.kind if callback_data.kind in (RefundKind.FULL, RefundKind.EXCESS) else RefundKind.FULL
    preview = await services.refunds.preview(order_id, kind)
    if preview.refusal:
        await refuse(event, refund_problem(order_id, preview.refusal, status=preview.order and preview.order.status,
                                           credited_to=preview.credited_to))
        return
    text, markup = preview_text(preview), preview_markup(preview, back)
    if back:
        await show(event, text, markup)
    else:
        await (await reply_target(event)).answer(text, reply_markup=markup)


async def confirmed(query: CallbackQuery, callback_data: RefundAct, services: Services) -> None:
    if callback_data.kind not in (RefundKind.FULL, RefundKind.EXCESS):
        await refuse(query, _("This button is no longer active."))
        return
    result = await services.refunds.refund(callback_data.order_id, admin_id=query.from_user.id, kind=callback_data.kind)
    if not result.ok:
        await refuse(query, refund_problem(callback_data.order_id, result.refusal, status=result.order_status,
                                           credited_to=result.credited_to, detail=result.detail))
        return
    await show(query, result_text(result), back_markup(callback_data.back), note=_("Refund recorded."))


async def cancelled(query: CallbackQuery, callback_data: RefundAct) -> None:
    await show(query, _("Refund of order #{id} cancelled; nothing was changed.").format(id=callback_data.order_id),
               back_markup(callback_data.back))


async def record_start(query: CallbackQuery, callback_data: SentCb, services: Services, state: FSMContext) -> None:
    request = await services.refunds.request(callback_data.request_id)
    if request is None or request.state == RequestState.SENT:
        await refuse(query, _("That refund is already recorded as sent."))
        return
    await state.set_state(RecordTx.reference)
    await state.update_data(refund_request=request.id)
    await (await reply_target(query)).answer(_("Send the transaction hash (or the transfer's reference) of the "
                                               "refund for order #{id}. /cancel to stop.").format(id=request.order_id))


async def record_reference(message: Message, services: Services, state: FSMContext) -> None:
    request_id = (await state.get_data()).get("refund_request", 0)
    problem = await services.refunds.record_sent(request_id, message.text, admin_id=message.from_user.id)
    if problem == HandRefundProblem.BAD_REFERENCE:
        await message.answer(_("That doesn't look like a transaction reference (letters, digits, - _ :, "
                               "6–200 characters). Send it again, or /cancel."))
        return
    await state.clear()
    await message.answer(sent_answer(problem))


async def refund_done(message: Message, command: CommandObject, services: Services) -> None:
    refunds = services.refunds
    args = (command.args or "").split()
    order_id = order_id_arg(args[0]) if len(args) == 2 else None
    if order_id is None:
        await message.answer(_("Usage: /refund_done ORDER_ID TX_HASH, e.g. /refund_done 42 9f3c…e1"))
        return
    request = await refunds.open_for_order(order_id)
    if request is None:
        await message.answer(_("Order #{id} has no refund waiting to be sent by hand.").format(id=order_id))
        return
    problem = await refunds.record_sent(request.id, args[1], admin_id=message.from_user.id)
    if problem == HandRefundProblem.BAD_REFERENCE:
        await message.answer(_("That doesn't look like a transaction reference (letters, digits, - _ :, "
                               "6–200 characters)."))
        return
    await message.answer(sent_answer(problem))


async def user_orders(message: Message, command: CommandObject, services: Services) -> None:
    user_id = int(command.args)
    items = await services.orders.for_user(user_id, limit=20)
    title = _("🧾 <b>Orders of user {id}</b>").format(id=user_id)
    await message.answer(orders_text(items, services.settings, title=title) if items else
                         _("User {id} has no orders.").format(id=user_id))


def build_router() -> Router:
    router = Router(name="admin_orders")
    router.message.register(ask_refund, Command("refund"))
    router.callback_query.register(ask_refund, RefundAct.filter(F.action == "ask"))
    router.callback_query.register(confirmed, RefundAct.filter(F.action == "yes"))
    router.callback_query.register(cancelled, RefundAct.filter(F.action == "no"))
    router.callback_query.register(record_start, SentCb.filter())
    router.message.register(record_reference, StateFilter(RecordTx.reference), F.text, ~F.text.startswith("/"))
    router.message.register(refund_done, Command("refund_done"))
    router.message.register(user_orders, Command("orders", magic=F.args.regexp(r"^[0-9]{1,15}$")))
    return router
