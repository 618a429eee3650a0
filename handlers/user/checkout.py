"""Paying for any order: method choice, terms once, the invoice, "Check payment", cancel."""

from __future__ import annotations

import html

from aiogram import Bot, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import RowId
from bot.edits import edit_or_keep
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from config.settings import Settings
from db.models import Invoice, Order
from presentation.formatting import amount_text, datetime_text, order_title, usd
from presentation.texts import asset_name, status_label
from services.checkout import CheckoutService, qr_png
from services.payments.registry import editable_messages
from services.terms import terms_text
from services.users import UserInfo


class PayWith(CallbackData, prefix="pay"):
    order_id: RowId
    method: str


class AcceptTerms(CallbackData, prefix="terms"):
    order_id: RowId
    method: str


class CheckPay(CallbackData, prefix="chk"):
    order_id: RowId


class CancelOrder(CallbackData, prefix="cxl"):
    order_id: RowId


PROBLEMS = {
    "not_found": lambda: _("This order doesn't exist."),
    "not_yours": lambda: _("This order isn't yours."),
    "not_pending": lambda: _("This order is no longer awaiting payment. See /orders."),
    "expired": lambda: _("This order has expired. Please start a new one."),
    "unknown_method": lambda: _("This payment method isn't available."),
    "unavailable": lambda: _("The payment provider isn't answering right now. Please try again in a minute "
                             "or choose another method."),
}


def order_summary(order: Order) -> str:
    credit = (order.details or {}).get("credit")
    if credit:  # base, credit and total, as recorded on the order
        return _("🧾 <b>Order #{id}</b>\n{title}\nPrice: {base}\nCredit: −{credit} ({cause})\n"
                 "Total: <b>{amount}</b>").format(
            id=order.id, title=html.escape(order_title(order)), base=usd(int(order.details["base_cents"])),
            credit=usd(int(credit["cents"])), cause=credit_cause(credit), amount=usd(order.amount_cents))
    return _("🧾 <b>Order #{id}</b>\n{title}\nTotal: <b>{amount}</b>").format(
        id=order.id, title=html.escape(order_title(order)), amount=usd(order.amount_cents))


def credit_cause(credit: dict) -> str:
    if credit.get("cause") == "upgrade":
        return _("unused time of your {plan} plan").format(plan=html.escape(str(credit.get("from_plan", "")).title()))
    return html.escape(str(credit.get("cause", "")))


def payment_options(order: Order, checkout: CheckoutService) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for method in checkout.methods(order.amount_cents):
        builder.button(text=checkout.method_label(method, order.amount_cents),
                       callback_data=PayWith(order_id=order.id, method=method.id))
    builder.button(text=_("✖️ Cancel order"), callback_data=CancelOrder(order_id=order.id))
    builder.adjust(1)
    return builder.as_markup()


async def offer_payment(target: Message, order: Order, checkout: CheckoutService, *, edit: bool,
                        note: str | None = None) -> None:
    """What a product handler calls once it has created an order (`note`: what else the purchase
    does, said before payment)."""
    summary = order_summary(order) + (f"\n\n{note}" if note else "")
    if not checkout.methods(order.amount_cents):
        text = summary + "\n\n" + _("Payments are not set up yet. Please try again later.")
        markup = None
    else:
        text = summary + "\n\n" + _("Choose how to pay:")
        markup = payment_options(order, checkout)
    if edit:
        await edit_or_keep(target, text, markup)
    else:
        await target.answer(text, reply_markup=markup)


def invoice_text(order: Order, invoice: Invoice, settings: Settings) -> str:
    deadline = min(invoice.expires_at, order.expires_at)  # a payment after the order's time goes to review
    expires = datetime_text(deadline, settings.tz, zone=True)
    lines = [order_summary(order), ""]
    if invoice.address:
        lines.append(_("Send exactly <b>{amount}</b> to:\n<code>{address}</code>").format(
            amount=amount_text(invoice.amount, asset_name(invoice.asset)),
            address=html.escape(invoice.address)))
        lines.append(_("Send it in one transfer on this network; a different amount needs a manual check."))
    else:
        lines.append(_("Pay {amount} with the button below.").format(amount=amount_text(invoice.amount,
                                                                                          invoice.asset)))
    lines.append(_("Valid until {time}. Payment is confirmed automatically; tap \"Check payment\" if you "
                   "don't want to wait.").format(time=expires))
    return "\n".join(lines)


def invoice_keyboard(order: Order, invoice: Invoice) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if invoice.pay_url:
        builder.button(text=_("💳 Pay"), url=invoice.pay_url)
    builder.button(text=_("🔄 Check payment"), callback_data=CheckPay(order_id=order.id))
    builder.button(text=_("✖️ Cancel order"), callback_data=CancelOrder(order_id=order.id))
    builder.adjust(1)
    return builder.as_markup()


def terms_keyboard(order_id: int, method: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ I accept"), callback_data=AcceptTerms(order_id=order_id, method=method))
    builder.button(text=_("✖️ Cancel order"), callback_data=CancelOrder(order_id=order_id))
    builder.adjust(1)
    return builder.as_markup()


async def issue_invoice(query: CallbackQuery, order_id: int, method: str, services: Services, bot: Bot) -> None:
    """The invoice for `order_id` by `method`, in place of the tapped message (a QR code of an address below)."""
    checkout = services.checkout
    result = await checkout.start(order_id, query.from_user.id, method)
    if result.problem == "busy":  # a second tap while the first one's invoice is being made
        await acknowledge(query, _("Your invoice is on its way — one moment."))
        return
    if result.problem:
        await refuse(query, PROBLEMS[result.problem]())
        return
    # the provider's own invoice message (not ours to edit) is already in the chat
    own_message = result.invoice.message_id is not None and not editable_messages(result.invoice.provider)
    if result.reused and own_message:
        await refuse(query, _("Your invoice is already in this chat: tap its Pay button."))
        return
    await acknowledge(query)
    if own_message:
        await edit_or_keep(query.message, order_summary(result.order) + "\n\n" + _("⭐ Invoice sent below."))
        return
    text = invoice_text(result.order, result.invoice, services.settings)
    await edit_or_keep(query.message, text, invoice_keyboard(result.order, result.invoice))
    if result.reused:
        return
    await checkout.orders.set_invoice_message(result.invoice.id, query.message.chat.id, query.message.message_id)
    if result.invoice.address:
        await bot.send_photo(query.message.chat.id, BufferedInputFile(qr_png(result.invoice.address), "qr.png"),
                             caption=_("QR code of the address for order #{id}").format(id=order_id))


async def pay_with(query: CallbackQuery, callback_data: PayWith, services: Services, user_info: UserInfo,
                   bot: Bot) -> None:
    """A payment method chosen: the terms first if this buyer has not accepted them yet, else the invoice."""
    user = await services.users.get(query.from_user.id)
    if user is None or user.terms_accepted_at is None:
        order, problem = await services.checkout.owned_order(callback_data.order_id, query.from_user.id)
        if problem:
            await refuse(query, PROBLEMS[problem]())
            return
        terms = terms_text(user_info.language) or ""
        await show(query, _("Before your first purchase, please read and accept our terms:") + "\n\n" + terms,
                   terms_keyboard(order.id, callback_data.method))
        return
    await issue_invoice(query, callback_data.order_id, callback_data.method, services, bot)


async def accept_terms(query: CallbackQuery, callback_data: AcceptTerms, services: Services, bot: Bot) -> None:
    order, problem = await services.checkout.owned_order(callback_data.order_id, query.from_user.id)
    if problem:
        await refuse(query, PROBLEMS[problem]())
        return
    await services.users.accept_terms(query.from_user.id)
    await issue_invoice(query, order.id, callback_data.method, services, bot)


async def check_payment(query: CallbackQuery, callback_data: CheckPay, services: Services) -> None:
    order, problem = await services.checkout.owned_order(callback_data.order_id, query.from_user.id)
    if problem:
        await refuse(query, PROBLEMS[problem]())
        return
    result = await services.payments.check_now(order.id)
    if result.state == "too_soon":
        await acknowledge(query, _("Checked a moment ago — please wait a few seconds."))
    elif result.state == "unavailable":
        await refuse(query, _("The provider isn't answering; we keep checking automatically."))
    elif result.status == "pending":
        await refuse(query, _("Not paid yet. It can take a minute or two after you pay."))
    else:
        await refuse(query, _("Order #{id}: {status}").format(id=order.id, status=status_label(result.status)))


async def cancel_order(query: CallbackQuery, callback_data: CancelOrder, services: Services) -> None:
    problem = await services.checkout.cancel(callback_data.order_id, query.from_user.id)
    if problem:
        await refuse(query, PROBLEMS[problem]())
        return
    await show(query, _("✖️ Order #{id} cancelled. Nothing was charged.").format(id=callback_data.order_id))


def build_router() -> Router:
    router = Router(name="checkout")
    router.callback_query.register(pay_with, PayWith.filter())
    router.callback_query.register(accept_terms, AcceptTerms.filter())
    router.callback_query.register(check_payment, CheckPay.filter())
    router.callback_query.register(cancel_order, CancelOrder.filter())
    return router
