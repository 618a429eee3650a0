"""/user <id or @username>: who a user is (their developer-API keys, use and credit too), and the actions an
admin takes on them (ban, refund, revoke an API key)."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Index, RowId, TelegramId
from bot.screens import acknowledge, refuse, reply_target, show
from bot.wiring import Services
from db.base import utcnow
from db.models import User
from handlers.admin.orders import RefundAct
from handlers.admin.panel import AdminMenu
from presentation import api_admin
from presentation.formatting import date_text, datetime_text, language_name, order_title, usd
from presentation.texts import status_label
from services.api_analytics import user_api_usage
from services.customers import orders_page, summary
from services.orders import MONEY_IN
from services.whale_input import short_address


class UserAct(CallbackData, prefix="uact"):
    action: str  # ban, unban, card (refunds: handlers.admin.orders.RefundAct)
    user_id: TelegramId
    order_id: RowId = 0


class UserKey(CallbackData, prefix="ukey"):
    action: str  # ask, yes (revoke one of the user's API keys, confirmed)
    user_id: TelegramId
    key_id: RowId


class UserOrders(CallbackData, prefix="uord"):
    user_id: TelegramId
    page: Index


class FindUser(StatesGroup):
    query = State()  # the panel's Find a user button waits for an id or @username


ORDERS_PER_PAGE = 5


def flag_text(flags) -> str:
    names = {"paid_over": _("overpaid"), "paid_partial": _("part-paid"), "paid_late": _("paid late"),
             "fulfil_failed": _("delivery failed"), "refunded": _("refunded"), "extra_payment": _("extra payment")}
    return ", ".join(f"{names.get(k, k)} ×{n}" for k, n in sorted(flags.items()))


async def card(user: User, services: Services, page: int = 0) -> tuple[str, InlineKeyboardMarkup]:
    """The card; `page` pages through every order of the user."""
    orders, settings = services.orders, services.settings
    plan = await services.subscriptions.current(user.id)
    money = await summary(orders.db, user.id)
    pages = max(1, -(-money.orders // ORDERS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    items = await orders_page(orders.db, user.id, page, ORDERS_PER_PAGE)
    state = (_("🚫 banned from the bot") if user.is_banned else
             _("⛔️ has blocked the bot") if user.is_blocked else _("✅ active"))
    lines = [
        _("👤 <b>{name}</b> {username} · id <code>{id}</code>").format(
            name=html.escape(user.first_name or "—"), username=f"@{user.username}" if user.username else "",
            id=user.id),
        _("Language: {lang} · first seen {first} · last seen {last}").format(
            lang=language_name(user.language), first=datetime_text(user.first_seen, settings.tz),
            last=datetime_text(user.last_seen, settings.tz)),
        _("Status: {state}").format(state=state),
        _("Plan: {plan}").format(plan=plan.plan.name + (
            _(" until {date}").format(date=datetime_text(plan.ends_at, settings.tz)) if plan.ends_at
            else "")),
    ]
    if user.referrer_id:
        lines.append(_("Referred by <code>{id}</code>").format(id=user.referrer_id))
    follows = await services.whales.follows(user.id)
    if follows:
        lines.append(ngettext("Follows {count} wallet: {wallets}", "Follows {count} wallets: {wallets}",
                              len(follows)).format(count=len(follows), wallets=", ".join(
            html.escape(w.label or short_address(w.address)) for _f, w in follows[:5])))
    lines.append(ngettext("💰 Lifetime value: <b>{value}</b> · refunded {refunded} · {count} order",
                          "💰 Lifetime value: <b>{value}</b> · refunded {refunded} · {count} orders",
                          money.orders).format(
        value=usd(money.lifetime_cents), refunded=usd(money.refunded_cents), count=money.orders))
    if money.flags:
        lines.append(_("⚠️ Flags: {flags}").format(flags=flag_text(money.flags)))
    keys = await services.api_keys.keys(user.id)
    await services.api_meter.flush()  # this process's calls counted since the last write
    lines += api_admin.card_lines(keys, await user_api_usage(services.db, user.id, utcnow()),
                                  await services.ledger.credit(user.id), settings.tz)
    lines.append(_("Orders (page {page} of {pages}):").format(page=page + 1, pages=pages) if items
                 else _("No orders."))
    lines += [f"#{o.id} · {date_text(o.created_at, settings.tz)} · {html.escape(order_title(o))} · "
              f"{usd(o.amount_cents)} · {status_label(o.status)}" for o in items]
    builder = InlineKeyboardBuilder()
    if user.is_banned:
        builder.button(text=_("✅ Unban"), callback_data=UserAct(action="unban", user_id=user.id))
    elif not settings.is_admin(user.id):
        builder.button(text=_("🚫 Ban from the bot"), callback_data=UserAct(action="ban", user_id=user.id))
    for key in keys:
        builder.button(text=api_admin.revoke_label(key),
                       callback_data=UserKey(action="ask", user_id=user.id, key_id=key.id))
    for order in items:
        if order.status in MONEY_IN and order.status != "refunded":
            builder.button(text=_("↩️ Refund #{id}").format(id=order.id),
                           callback_data=RefundAct(action="ask", order_id=order.id, back=user.id))
    if page > 0:
        builder.button(text=_("◀️ Newer orders"), callback_data=UserOrders(user_id=user.id, page=page - 1))
    if page + 1 < pages:
        builder.button(text=_("Older orders ▶️"), callback_data=UserOrders(user_id=user.id, page=page + 1))
    builder.adjust(1)
    lines.append("\n" + _("Grant a plan: /grant {id} pro 30").format(id=user.id))
    return "\n".join(lines), builder.as_markup()


async def user_card(event: Message | CallbackQuery, services: Services, command: CommandObject | None = None,
                    callback_data: UserAct | UserOrders | None = None) -> None:
    """/user ID|@username, the card's page buttons and the Back to the user buttons: the user's card."""
    if callback_data is None:
        args = command.args if command else None
        if not args or not args.strip():
            await event.answer(_("Usage: /user ID or /user @username (someone who has used the bot)."))
            return
        user = await services.users.find(args)
        if user is None:
            await event.answer(_("No user {who} has used this bot.").format(who=html.escape(args.strip())))
            return
    else:
        user = await services.users.get(callback_data.user_id)
        if user is None:
            await refuse(event, _("No such user."))
            return
    page = callback_data.page if isinstance(callback_data, UserOrders) else 0
    text, markup = await card(user, services, page)
    await show(event, text, markup)


async def ask_user(query: CallbackQuery, state: FSMContext) -> None:
    """The panel's Find a user button: the next message is the id or @username, as after /user."""
    await state.set_state(FindUser.query)
    await (await reply_target(query)).answer(
        _("👤 Send the user's id or @username. /cancel to stop."))


async def found_user(message: Message, state: FSMContext, services: Services) -> None:
    await state.clear()
    await user_card(message, services, CommandObject(prefix="/", command="user", args=message.text.strip()))


async def ban(query: CallbackQuery, callback_data: UserAct, services: Services) -> None:
    banned = callback_data.action == "ban"
    if banned and services.settings.is_admin(callback_data.user_id):
        await refuse(query, _("Admins can't be banned."))
        return
    before = await services.users.set_banned(callback_data.user_id, banned)
    if before is None:
        await refuse(query, _("No such user."))
        return
    await services.audit.record(query.from_user.id, "ban" if banned else "unban", f"user:{callback_data.user_id}",
                       before={"banned": before}, after={"banned": banned})
    text, markup = await card(await services.users.get(callback_data.user_id), services)
    await show(query, text, markup, note=_("Banned.") if banned else _("Unbanned."))


async def ask_revoke_key(query: CallbackQuery, callback_data: UserKey, services: Services) -> None:
    """The card's Revoke API key button: which key, with Confirm / Cancel (back to the card)."""
    key = await services.api_keys.get(callback_data.user_id, callback_data.key_id)
    if key is None:
        await refuse(query, api_admin.key_not_active())
        return
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Revoke the key"), callback_data=UserKey(action="yes", user_id=key.user_id,
                                                                    key_id=key.id))
    builder.button(text=_("Cancel"), callback_data=UserAct(action="card", user_id=key.user_id))
    builder.adjust(1)
    await show(query, api_admin.ask_revoke(key, services.settings.tz), builder.as_markup())


async def revoke_key(query: CallbackQuery, callback_data: UserKey, services: Services) -> None:
    """Confirmed: the key stops working at once, the audit log says who revoked which key of whom, and the
    user is told in their language."""
    key = await services.api_keys.revoke_any(callback_data.key_id, user_id=callback_data.user_id)
    if key is None:  # already off, someone else's, or no such key: a stale or forged button
        await refuse(query, api_admin.key_not_active())
        return
    await services.audit.record(
        query.from_user.id, "api_key_revoke", f"user:{key.user_id} api_key:{key.id}",
        before={"key": key.prefix, "name": key.name, "revoked": False}, after={"revoked": True})
    await services.notifier.send(key.user_id, lambda: api_admin.revoked_notice(key))
    user = await services.users.get(key.user_id)
    if user is None:
        await acknowledge(query, api_admin.revoked_note())
        return
    text, markup = await card(user, services)
    await show(query, text, markup, note=api_admin.revoked_note())


def build_router() -> Router:
    router = Router(name="admin_users")
    router.message.register(user_card, Command("user"))
    router.callback_query.register(ask_user, AdminMenu.filter(F.action == "user"))
    router.message.register(found_user, StateFilter(FindUser.query), F.text, ~F.text.startswith("/"))
    router.callback_query.register(user_card, UserAct.filter(F.action == "card"))
    router.callback_query.register(user_card, UserOrders.filter())
    router.callback_query.register(ban, UserAct.filter(F.action.in_({"ban", "unban"})))
    router.callback_query.register(ask_revoke_key, UserKey.filter(F.action == "ask"))
    router.callback_query.register(revoke_key, UserKey.filter(F.action == "yes"))
    return router
