"""/plans: compare the plans, see your own, buy a month or a year, get the private channel invite."""

from __future__ import annotations

from datetime import datetime

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.keyboards import Menu, link_button
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from config.settings import Settings
from db.models import Order
from handlers.user.checkout import offer_payment
from presentation.formatting import number, usd
from presentation.plans import format_end, join_label
from services.channel import PrivateChannel
from services.plan_sales import PERIODS
from services.plan_upgrade import AFTER, CREDIT
from services.plans import PLANS, Plan
from services.subscriptions import Current


class PlanBuy(CallbackData, prefix="pb"):
    plan: str
    period: str


class PlanInvite(CallbackData, prefix="pinv"):
    pass


def plan_lines(plan: Plan) -> str:
    if plan.is_paid:
        head = _("<b>{name}</b> — {month} a month or {year} a year (2 months free)").format(
            name=plan.name, month=usd(PERIODS["month"].price_cents(plan)), year=usd(PERIODS["year"].price_cents(plan)))
    else:
        head = _("<b>{name}</b> — free").format(name=plan.name)
    per_day = (_("unlimited signals a day") if plan.signals_per_day is None
               else ngettext("{count} signal a day", "{count} signals a day", plan.signals_per_day).format(
                   count=number(plan.signals_per_day)))
    history = ngettext("{days} day of history", "{days} days of history", plan.history_days).format(
        days=plan.history_days)
    whales = (ngettext("follow up to {count} whale wallet", "follow up to {count} whale wallets",
                       plan.whale_follows).format(count=plan.whale_follows) if plan.whale_follows
              else _("no whale follows"))
    return f"{head}\n{per_day} · {history} · {whales}"


def plans_screen(current: Current, settings: Settings, channel: PrivateChannel,
                 in_channel: bool = False) -> tuple[str, InlineKeyboardMarkup]:
    """The plans and the user's own; the channel invite button only for a paying user not in the channel."""
    parts = [_("📈 <b>Signal plans</b>")] + [plan_lines(p) for p in PLANS.values()]
    if current.plan.is_paid and current.ends_at is not None:
        parts.append(_("Your plan: <b>{plan}</b> until {ends}. Buying more adds to the time that's left; a higher "
                       "plan credits your unused time, a lower one starts when this one ends.").format(
            plan=current.plan.name, ends=format_end(current.ends_at, settings.tz)))
    else:
        parts.append(_("Your plan: <b>Free</b>."))
    builder = InlineKeyboardBuilder()
    for plan in PLANS.values():
        if not plan.is_paid:
            continue
        builder.button(text=_("{name} · month {price}").format(name=plan.name, price=usd(plan.monthly_cents)),
                       callback_data=PlanBuy(plan=plan.code, period="month"))
        builder.button(text=_("{name} · year {price}").format(name=plan.name, price=usd(plan.annual_cents)),
                       callback_data=PlanBuy(plan=plan.code, period="year"))
    rows = [2] * sum(1 for p in PLANS.values() if p.is_paid)
    if current.plan.is_paid and channel.enabled and not in_channel:
        builder.button(text=_("🔑 Private channel invite"), callback_data=PlanInvite())
        rows.append(1)
    builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))
    builder.adjust(*rows, 1)
    return "\n\n".join(parts), builder.as_markup()


def change_note(order: Order, settings: Settings) -> str | None:
    """What buying this plan does to the time the user already has, said before payment."""
    change = (order.details or {}).get("plan_change") or {}
    mode, other = change.get("mode"), PLANS.get(change.get("from_plan") or "")
    plan = PLANS.get((order.details or {}).get("plan") or "")
    if mode is None or other is None or plan is None:
        return None
    until = format_end(datetime.fromisoformat(change["until"]), settings.tz) if change.get("until") else "—"
    if mode == CREDIT:
        return _("⬆️ Upgrade: your {old} time (until {until}) ends when {new} starts; its unused value is "
                 "credited above, to the cent.").format(old=other.name, until=until, new=plan.name)
    if mode == AFTER:
        return _("⬆️ Upgrade: your {old} time left (until {until}) is worth more than this order, so it is kept: "
                 "it pauses while {new} runs and resumes after it.").format(old=other.name, until=until,
                                                                            new=plan.name)
    return _("⬇️ You're on {old} until {until}. {new} starts then, so none of your {old} time is lost.").format(
        old=other.name, until=until, new=plan.name)


async def show_plans(event: Message | CallbackQuery, services: Services) -> None:
    current, channel = await services.subscriptions.current(event.from_user.id), services.channel
    in_channel = current.plan.is_paid and channel.enabled and await channel.is_member(event.from_user.id)
    await show(event, *plans_screen(current, services.settings, channel, in_channel))


async def buy(query: CallbackQuery, callback_data: PlanBuy, services: Services) -> None:
    placed = await services.plan_shop.place(query.from_user.id, callback_data.plan, callback_data.period)
    if placed.problem:
        await refuse(query, _("This plan isn't available. Open /plans for the current choice."))
        return
    await offer_payment(query.message, placed.order, services.checkout, edit=True,
                        note=change_note(placed.order, services.settings))
    await acknowledge(query)


async def invite(query: CallbackQuery, services: Services) -> None:
    """A one-use invite to the private channel, for a paying member who is not in it."""
    channel = services.channel
    current = await services.subscriptions.current(query.from_user.id)
    if not current.plan.is_paid or not channel.enabled:
        await refuse(query, _("The private channel is for paid plans. Pick one in /plans."))
        return
    if await channel.is_member(query.from_user.id):
        await refuse(query, _("You're already in the private channel."))
        return
    link = await channel.invite(query.from_user.id, until=current.ends_at)
    if link is None:
        await refuse(query, _("The invite link can't be made right now. Please try again in a minute."))
        return
    await query.message.answer(_("🔑 Your private channel invite (one person, one use): {link}").format(link=link),
                               reply_markup=link_button(join_label(), link))
    await acknowledge(query)


def build_router() -> Router:
    router = Router(name="plans")
    router.message.register(show_plans, Command("plans"))
    router.callback_query.register(show_plans, Menu.filter(F.section == "plans"))
    router.callback_query.register(buy, PlanBuy.filter())
    router.callback_query.register(invite, PlanInvite.filter())
    return router
