"""/signals (my subscription, latest signals, filters) and /performance (the track record + chart)."""

from __future__ import annotations

import asyncio
import html
from datetime import datetime
from decimal import Decimal

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.keyboards import Menu
from bot.screens import refuse, reply_target, show
from bot.wiring import Services
from config.settings import Settings
from db.models_signals import Signal
from presentation.formatting import date_text, datetime_text, decimal_text, percent
from services import track_record
from services.charts import equity_chart
from services.signals import SignalService, Usage


class SigMenu(CallbackData, prefix="sg"):
    action: str  # "show", "filters", "clear"


class SigFilter(CallbackData, prefix="sf"):
    kind: str
    value: str


def signal_line(signal: Signal, settings: Settings) -> str:
    when = datetime_text(signal.received_at, settings.tz)
    side = _("Long") if signal.side == "long" else _("Short")
    targets = ", ".join(decimal_text(Decimal(tp)) for tp in signal.take_profits)
    return _("{when} · <b>#{pair}</b> {side} · entry {entry} · targets {targets} · stop {stop}").format(
        when=when, pair=html.escape(signal.symbol), side=side, entry=decimal_text(signal.entry), targets=targets,
        stop=decimal_text(signal.stop_loss))


def signals_text(usage: Usage, latest: list[Signal], filters: dict[str, set[str]], settings: Settings,
                 free_delay_minutes: int) -> str:
    plan = usage.plan
    lines = [_("📡 <b>Your signals</b>"), ""]
    if plan.is_paid and usage.ends_at:
        until = date_text(usage.ends_at, settings.tz)
        lines.append(_("Plan: <b>{plan}</b> until {until}").format(plan=plan.name, until=until))
    else:
        lines.append(_("Plan: <b>Free</b> — signals reach you {minutes} minutes after paid members. "
                       "/plans to get them at once.").format(minutes=free_delay_minutes))
    if plan.signals_per_day is None:
        lines.append(ngettext("Today: {used} signal (no daily limit)", "Today: {used} signals (no daily limit)",
                              usage.today).format(used=usage.today))
    else:
        lines.append(_("Today: {used} of {cap} signals").format(used=usage.today, cap=plan.signals_per_day))
    lines.append(_("History: the last {days} days").format(days=plan.history_days))
    chosen = sorted(filters.get("ecosystem", set())) + sorted(filters.get("symbol", set()))
    lines.append(_("Filters: {filters}").format(filters=html.escape(", ".join(chosen)) if chosen
                                                else _("none — you get every signal")))
    lines += ["", _("<b>Latest signals</b>")]
    if latest:
        lines += [signal_line(s, settings) for s in latest]
    else:
        lines.append(_("No signals in your history window yet."))
    return "\n".join(lines)


def signals_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("🔎 Filters"), callback_data=SigMenu(action="filters"))
    builder.button(text=_("📊 Track record"), callback_data=SigMenu(action="performance"))
    builder.button(text=_("📈 Plans"), callback_data=Menu(section="plans"))
    builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))
    builder.adjust(2, 2)
    return builder.as_markup()


def filters_screen(choices: dict[str, list[str]], current: dict[str, set[str]]) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    sizes = []
    for kind in ("ecosystem", "symbol"):
        values = sorted(set(choices.get(kind, [])) | current.get(kind, set()))
        for value in values:
            mark = "✅ " if value in current.get(kind, set()) else ""
            builder.button(text=mark + value, callback_data=SigFilter(kind=kind, value=value))
        sizes += [3] * (len(values) // 3) + ([len(values) % 3] if len(values) % 3 else [])
    builder.button(text=_("♻️ Clear filters"), callback_data=SigMenu(action="clear"))
    builder.button(text=_("⬅️ Back"), callback_data=SigMenu(action="show"))
    builder.adjust(*sizes, 2)
    text = _("🔎 <b>Signal filters</b>\n\nTick the ecosystems and pairs you want. Nothing ticked in a row "
             "means all of it. Filters apply to new signals and to your history.")
    return text, builder.as_markup()


def pct(value: Decimal | None) -> str:
    return percent(value, digits=2, signed=True)


def num(value: Decimal | None) -> str:
    return "—" if value is None else decimal_text(value, digits=2)


def period_names() -> dict[str, str]:
    return {"7d": _("7 days"), "30d": _("30 days"), "all": _("All time")}


def figures_line(name: str, f: track_record.Figures) -> str:
    if not f.trades:
        return _("{period}: no closed signals").format(period=name)
    return _("{period}: {trades} closed · win rate {win_rate} · avg R {avg_r} · return {ret} · "
             "max drawdown {dd} · Sharpe {sharpe}").format(
        period=name, trades=f.trades, win_rate=pct(f.win_rate).lstrip("+"), avg_r=num(f.avg_r),
        ret=pct(f.cumulative_return), dd=pct(f.max_drawdown).lstrip("+"), sharpe=num(f.sharpe))


def performance_text(trades: list[track_record.Trade], check: track_record.ChainCheck, now: datetime) -> str:
    names = period_names()
    lines = [_("📊 <b>Track record</b>"),
             _("Computed from the stored signals and their events; equal size per trade."), ""]
    sections = [(_("All ecosystems"), None)] + [(eco, eco) for eco in sorted({t.ecosystem for t in trades})]
    for title, ecosystem in sections:
        lines.append(f"<b>{html.escape(title)}</b>")
        for key, figures in track_record.by_period(trades, now, ecosystem).items():
            lines.append(figures_line(names[key], figures))
        lines.append("")
    head = f"<code>{check.head[:16]}…</code>"
    if check.ok:
        lines.append(ngettext("🔗 Chain of {n} signal, head {head}: ✅ recomputed and intact.",
                              "🔗 Chain of {n} signals, head {head}: ✅ recomputed and intact.", check.length).format(
            n=check.length, head=head))
    else:
        lines.append(ngettext("🔗 Chain of {n} signal, head {head}: ❌ broken at {where} — stored history was "
                              "changed.", "🔗 Chain of {n} signals, head {head}: ❌ broken at {where} — stored history "
                              "was changed.", check.length).format(
            n=check.length, head=head, where=html.escape(check.broken_at or "?")))
    return "\n".join(lines)


async def show_signals(event: Message | CallbackQuery, services: Services) -> None:
    """/signals and its Back button: the subscription, today's usage, the filters and the latest signals."""
    signals, user_id = services.signals, event.from_user.id
    current = await services.subscriptions.current(user_id)
    usage = await signals.usage(user_id, current.plan, current.ends_at)
    filters = await signals.filters(user_id)
    latest = await signals.latest(current.plan, filters)
    text = signals_text(usage, latest, filters, services.settings, int(signals.free_delay.total_seconds() // 60))
    await show(event, text, signals_keyboard())


async def show_filters(query: CallbackQuery, signals: SignalService, choices: dict | None = None, *,
                       note: str | None = None) -> None:
    text, markup = filters_screen(choices or await signals.choices(), await signals.filters(query.from_user.id))
    await show(query, text, markup, note=note)


async def filters(query: CallbackQuery, services: Services) -> None:
    await show_filters(query, services.signals)


async def clear(query: CallbackQuery, services: Services) -> None:
    await services.signals.clear_filters(query.from_user.id)
    await show_filters(query, services.signals, note=_("Filters cleared: you get every signal."))


async def toggle(query: CallbackQuery, callback_data: SigFilter, services: Services) -> None:
    signals = services.signals
    choices = await signals.choices()
    current = await signals.filters(query.from_user.id)
    known = set(choices.get(callback_data.kind, [])) | current.get(callback_data.kind, set())
    if callback_data.value not in known:  # forged or stale button: change nothing
        await refuse(query, _("This filter is not available any more."))
        return
    await signals.toggle_filter(query.from_user.id, callback_data.kind, callback_data.value)
    await show_filters(query, signals, choices)


async def performance(event: Message | CallbackQuery, services: Services) -> None:
    """/performance and its button: the track record, then the equity chart."""
    message, signals = await reply_target(event), services.signals
    trades, check = await signals.track_record()
    now = signals.clock()
    await message.answer(performance_text(trades, check, now))
    if not trades:
        return
    series = {_("All"): track_record.figures(trades).equity}
    for ecosystem in sorted({t.ecosystem for t in trades}):
        series[ecosystem] = track_record.figures([t for t in trades if t.ecosystem == ecosystem]).equity
    png = await asyncio.to_thread(equity_chart, series, _("Equity curve, equal size per signal"))
    await message.answer_photo(BufferedInputFile(png, "equity.png"), caption=_("📈 Equity curve (all time)"))


def build_router() -> Router:
    router = Router(name="signals")
    router.message.register(show_signals, Command("signals"))
    router.callback_query.register(show_signals, SigMenu.filter(F.action == "show"))
    router.callback_query.register(filters, SigMenu.filter(F.action == "filters"))
    router.callback_query.register(clear, SigMenu.filter(F.action == "clear"))
    router.callback_query.register(toggle, SigFilter.filter())
    router.message.register(performance, Command("performance"))
    router.callback_query.register(performance, SigMenu.filter(F.action == "performance"))
    return router
