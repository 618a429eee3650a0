"""Admins: /grant <user_id> <plan> <days> — add plan time by hand (support, partners, make-goods); the panel's
Grant a plan button asks for the same three words."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from bot.screens import reply_target
from bot.wiring import Services
from handlers.admin.panel import AdminMenu
from presentation.plans import format_end
from services.plans import PLANS

MAX_DAYS = 3650


class GrantAsk(StatesGroup):
    args = State()  # the panel's button waits for USER_ID PLAN DAYS


def usage() -> str:
    plans = ", ".join(p.code for p in PLANS.values() if p.is_paid)
    return _("Usage: /grant USER_ID PLAN DAYS, e.g. /grant 123456789 pro 30\nPlans: {plans}. Days: 1 to {max}.").format(
        plans=plans, max=MAX_DAYS)


def granted_text(plan_name: str, days: int, ends: str, link: str | None) -> str:
    lines = [_("🎁 You've been given the <b>{plan}</b> plan for {days} days. It's active until {ends}.").format(
        plan=plan_name, days=days, ends=ends)]
    if link:
        lines.append(_("🔑 Your private channel invite (one person, one use): {link}").format(link=link))
    lines.append(_("See your plan any time in /plans."))
    return "\n".join(lines)


async def grant(message: Message, command: CommandObject, services: Services) -> None:
    await grant_plan(message, command.args or "", services)


async def ask_grant(query: CallbackQuery, state: FSMContext) -> None:
    """The panel's Grant a plan button: the next message is what follows /grant."""
    await state.set_state(GrantAsk.args)
    plans = ", ".join(p.code for p in PLANS.values() if p.is_paid)
    await (await reply_target(query)).answer(
        _("🎁 Send USER_ID PLAN DAYS, e.g. <code>123456789 pro 30</code>\nPlans: {plans}. /cancel to stop.").format(
            plans=plans))


async def grant_typed(message: Message, state: FSMContext, services: Services) -> None:
    await state.clear()
    await grant_plan(message, message.text, services)


async def grant_plan(message: Message, arguments: str, services: Services) -> None:
    """/grant's work on its arguments, typed after the command or sent after the panel's button."""
    subscriptions, channel = services.subscriptions, services.channel
    args = arguments.split()
    if len(args) != 3:
        await message.answer(usage())
        return
    user_arg, plan_code, days_arg = args[0], args[1].lower(), args[2]
    if not (user_arg.isascii() and user_arg.isdigit()) or len(user_arg) > 15:
        await message.answer(_("The user id must be a number.") + "\n" + usage())
        return
    plan = PLANS.get(plan_code)
    if plan is None or not plan.is_paid:
        await message.answer(_("There's no paid plan called that.") + "\n" + usage())
        return
    if not (days_arg.isascii() and days_arg.isdigit()) or len(days_arg) > 6:
        await message.answer(_("Days must be a whole number.") + "\n" + usage())
        return
    days = int(days_arg)
    if not 1 <= days <= MAX_DAYS:
        await message.answer(_("Days must be from 1 to {max}.").format(max=MAX_DAYS) + "\n" + usage())
        return
    user_id = int(user_arg)
    if await services.users.get(user_id) is None:
        await message.answer(_("User {id} hasn't used the bot yet, so they can't be given a plan.").format(
            id=user_id))
        return
    before = await subscriptions.current(user_id)
    period = await subscriptions.add_time(user_id, plan.code, days, source="grant",
                                          granted_by=message.from_user.id)
    await services.audit.record(message.from_user.id, "grant", f"user:{user_id}",
                       before={"plan": before.plan.code, "ends_at": before.ends_at and before.ends_at.isoformat()},
                       after={"plan": plan.code, "days": days, "ends_at": period.ends_at.isoformat()})
    ends = format_end(period.ends_at, services.settings.tz)
    member = await channel.is_member(user_id)
    link = None if member else await channel.invite(user_id, until=period.ends_at)
    sent = await services.notifier.send(user_id, lambda: granted_text(plan.name, days, ends, link))
    lines = [ngettext("✅ User {id} has the {plan} plan until {ends} ({days} day added).",
                      "✅ User {id} has the {plan} plan until {ends} ({days} days added).", days).format(
        id=user_id, plan=plan.name, ends=ends, days=days)]
    if sent is None:
        lines.append(_("They couldn't be told: they may have blocked the bot."))
    elif channel.enabled and link is None and not member:
        lines.append(_("The channel invite couldn't be made; they can get one from /plans."))
    await message.answer("\n".join(lines))


def build_router() -> Router:
    router = Router(name="admin_grant")
    router.message.register(grant, Command("grant"))
    router.callback_query.register(ask_grant, AdminMenu.filter(F.action == "grant"))
    router.message.register(grant_typed, StateFilter(GrantAsk.args), F.text, ~F.text.startswith("/"))
    return router
