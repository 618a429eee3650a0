"""The buyer's part of an on-chain refund: tap "Send my refund address", then send the address."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.screens import refuse, reply_target
from bot.wiring import Services
from presentation.refunds import owed_text
from processing.refunds import AWAITING_ADDRESS, AddressCb
from services.refunds import network_of


class RefundAddress(StatesGroup):
    address = State()


async def ask_address(query: CallbackQuery, callback_data: AddressCb, services: Services, state: FSMContext) -> None:
    request = await services.refunds.request(callback_data.request_id)
    if request is None or request.user_id != query.from_user.id:
        await refuse(query, _("This button is no longer active."))
        return
    if request.state != AWAITING_ADDRESS:
        await refuse(query, _("We already have the address for this refund."))
        return
    await state.set_state(RefundAddress.address)
    await state.update_data(refund_request=request.id)
    await (await reply_target(query)).answer(_(
        "Send the <b>{network}</b> address that should receive {amount} (refund of order #{id}). "
        "Double-check it: money sent on-chain can't be called back. /cancel to stop.").format(
        network=html.escape(network_of(request.asset)), amount=owed_text(request.amount, request.asset),
        id=request.order_id))


async def got_address(message: Message, services: Services, state: FSMContext) -> None:
    refunds = services.refunds
    request_id = (await state.get_data()).get("refund_request", 0)
    problem = await refunds.set_address(request_id, message.from_user.id, message.text)
    if problem == "bad_address":
        request = await refunds.request(request_id)
        await message.answer(_("That isn't a valid {network} address. Please send it again, or /cancel.").format(
            network=html.escape(network_of(request.asset))))
        return
    await state.clear()
    if problem is not None:
        await message.answer(_("We already have the address for this refund; nothing was changed."))


def build_router() -> Router:
    router = Router(name="refund_address")
    router.callback_query.register(ask_address, AddressCb.filter())
    router.message.register(got_address, StateFilter(RefundAddress.address), F.text, ~F.text.startswith("/"))
    return router
