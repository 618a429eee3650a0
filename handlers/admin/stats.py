"""/stats: today's money and the month's health, the developer API's revenue and calls per UTC day, a 30-day
revenue chart, and a CSV of orders."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy import select

from bot.screens import reply_target
from bot.wiring import Services
from config.settings import Settings
from db.base import utcnow
from db.engine import Database
from db.models import Order
from handlers.admin.panel import AdminMenu
from presentation.api_admin import stats_lines
from presentation.formatting import month_day, percent, usd
from presentation.texts import product_name, provider_name
from services.analytics import Dashboard, dashboard
from services.api_analytics import ApiFigures, api_figures
from services.charts import revenue_chart
from services.plans import PLANS

MAX_EXPORT_DAYS = 366


def money(cents: Decimal | int | None) -> str:
    """Cents that may hold a fraction (a mean), shown to the cent rounded half up: 729.75 is $7.30."""
    return "—" if cents is None else usd(int(Decimal(cents).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def stats_text(d: Dashboard, settings: Settings, api: ApiFigures | None = None) -> str:
    month = d.revenue["30d"]
    products = " · ".join(f"{product_name(k[8:])} {usd(v)}" for k, v in month.items() if k.startswith("product:"))
    providers = " · ".join(f"{provider_name(k[9:])} {usd(v)}" for k, v in month.items()
                           if k.startswith("provider:"))
    per_day = " · ".join(f"{month_day(datetime.combine(day, time()))}: {n}" for day, n in d.orders_per_day)
    plans = " · ".join(f"{p.name} {d.subscribers.get(code, 0)}" for code, p in PLANS.items() if p.is_paid)
    return "\n".join([
        _("📊 <b>Stats</b> ({tz})").format(tz=settings.timezone),
        _("Revenue: today {today} · 7 days {week} · 30 days {month}").format(
            today=usd(d.revenue["today"]["total"]), week=usd(d.revenue["7d"]["total"]), month=usd(month["total"])),
        _("30 days by product: {items}").format(items=products or "—"),
        _("30 days by provider: {items}").format(items=providers or "—"),
        _("Orders per day, last 7 days: {items}").format(items=per_day),
        ngettext("Last 30 days: {orders} order · paid {paid_rate} · delivered {delivered_rate} · revenue per "
                 "order {rpo} · average order {aov}",
                 "Last 30 days: {orders} orders · paid {paid_rate} · delivered {delivered_rate} · revenue per "
                 "order {rpo} · average order {aov}", d.month.orders).format(
            orders=d.month.orders, paid_rate=percent(d.month.payment_success_rate, digits=0),
            delivered_rate=percent(d.month.delivery_success_rate, digits=0), rpo=money(d.month.revenue_per_order_cents),
            aov=money(d.month.average_order_value_cents)),
        _("Subscribers: {plans} · MRR {mrr} · churn (30 days) {churn}").format(
            plans=plans, mrr=usd(d.mrr_cents), churn=percent(d.churn, digits=0)),
        _("Users: {total} · new today {today} · new this week {week} · blocked the bot {blocked}").format(
            total=d.users_total, today=d.users_new_today, week=d.users_new_week, blocked=d.users_blocked),
        *(stats_lines(api) if api is not None else ()),
    ])


def stats_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("⬇️ Orders CSV, 30 days"), callback_data=AdminMenu(action="export"))
    return builder.as_markup()


async def orders_csv(database: Database, since: datetime) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["order_id", "created_at_utc", "paid_at_utc", "user_id", "product", "product_ref", "title",
                     "amount_usd", "provider", "status"])
    async with database.session() as session:
        for o in await session.scalars(select(Order).where(Order.created_at >= since).order_by(Order.id)):
            writer.writerow([o.id, o.created_at.isoformat(), o.paid_at.isoformat() if o.paid_at else "", o.user_id,
                             o.product, o.product_ref, o.title, f"{o.amount_cents // 100}.{o.amount_cents % 100:02d}",
                             o.provider or "", o.status])
    return out.getvalue().encode("utf-8-sig")  # the BOM makes spreadsheet apps read UTF-8


async def stats(event: Message | CallbackQuery, bot: Bot, services: Services) -> None:
    """/stats and the panel's Stats button: the figures, then the chart, as new messages."""
    chat_id = (await reply_target(event)).chat.id
    now = utcnow()
    d = await dashboard(services.db, services.settings.tz, now)
    await services.api_meter.flush()  # this process's calls counted since the last write
    api = await api_figures(services.db, now)
    await bot.send_message(chat_id, stats_text(d, services.settings, api), reply_markup=stats_keyboard())
    # drawing takes a few hundred ms of CPU: off the event loop, so other users aren't kept waiting
    chart = await asyncio.to_thread(revenue_chart, d.daily_revenue, _("Revenue per day, last 30 days"))
    await bot.send_photo(chat_id, BufferedInputFile(chart, "revenue.png"))


async def export(event: Message | CallbackQuery, bot: Bot, services: Services,
                 command: CommandObject | None = None) -> None:
    """/export [DAYS] and the Orders CSV buttons (30 days): a CSV of the orders."""
    target = await reply_target(event)
    arg = ((command.args if command else None) or "30").strip()
    if not (arg.isascii() and arg.isdigit()) or not 1 <= int(arg) <= MAX_EXPORT_DAYS:
        await target.answer(_("Usage: /export DAYS (1 to {max}), e.g. /export 30").format(max=MAX_EXPORT_DAYS))
        return
    days = int(arg)
    data = await orders_csv(services.db, utcnow() - timedelta(days=days))
    await bot.send_document(target.chat.id, BufferedInputFile(data, f"orders-{days}d.csv"),
                            caption=_("Orders of the last {days} days").format(days=days))


def build_router() -> Router:
    router = Router(name="admin_stats")
    router.message.register(stats, Command("stats"))
    router.callback_query.register(stats, AdminMenu.filter(F.action == "stats"))
    router.message.register(export, Command("export"))
    router.callback_query.register(export, AdminMenu.filter(F.action == "export"))
    return router
