"""/market's board wording: the ranked providers with their figures, the sort and filter buttons' labels, a
provider card's verified figures, and the integrity flags admins see in /providers. Numbers are written as
the reader writes them (presentation.formatting)."""

from __future__ import annotations

import html

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from presentation.formatting import decimal_text, number, percent, usd
from services.marketplace_board import DRAWDOWN_CAPS, PRICE_CAPS, SORTS, WIN_FLOORS, Card, Entry, Page, View
from services.marketplace_integrity import FAST_WITHIN, LATE_AFTER, Flag, Kind
from services.marketplace_ranking import ACTIVE_DAYS, MIN_CLOSED, MIN_HISTORY_DAYS, Score, Unranked


def _e(value: str | None) -> str:
    return html.escape(value or "", quote=False)


def sort_name(index: int) -> str:
    return {"score": _("score"), "price": _("price"), "winrate": _("win rate"),
            "drawdown": _("drawdown")}[SORTS[index]]


def price_choice(index: int) -> str:
    cap = PRICE_CAPS[index]
    return _("any") if cap is None else _("up to {price}").format(price=usd(cap))


def win_choice(index: int) -> str:
    floor = WIN_FLOORS[index]
    return _("any") if floor is None else _("{rate} or more").format(rate=percent(floor, digits=0))


def drawdown_choice(index: int) -> str:
    cap = DRAWDOWN_CAPS[index]
    return _("any") if cap is None else _("up to {rate}").format(rate=percent(cap, digits=0))


def market_choice(ecosystem: str) -> str:
    return ecosystem or _("all")


def score_text(score: Score) -> str:
    return decimal_text(score.score, digits=1) if score.score is not None else _("new")


def board(page: Page, view: View, any_provider: bool) -> str:
    lines = [_("🏪 <b>Signal marketplace</b>"), "",
             _("🏠 <b>House signals</b> — the operator's own: subscribe with /plans, track record in /performance.")]
    if not any_provider:
        return "\n".join([*lines, "", _("No signal providers yet. Trade well? Apply with /provider.")])
    lines += ["", _("Ranked by a score from 0 to 100: return, drawdown, consistency and what subscribers got. A "
                    "provider is ranked after {closed} closed signals over {days} days and with a signal in the "
                    "last {active} days; until then it is new.").format(closed=MIN_CLOSED, days=MIN_HISTORY_DAYS,
                                                                         active=ACTIVE_DAYS),
              _("Sort: {sort} · market: {market} · price: {price} · win rate: {win} · drawdown: {drawdown}").format(
                  sort=sort_name(view.sort), market=_e(market_choice(view.ecosystem)), price=price_choice(view.price),
                  win=win_choice(view.win), drawdown=drawdown_choice(view.drawdown)), ""]
    if not page.entries:
        lines.append(_("No provider matches these filters."))
        return "\n".join(lines)
    for i, entry in enumerate(page.entries, start=page.offset + 1):
        lines.append(row(i, entry))
    if page.total > len(page.entries):
        lines += ["", _("{first}–{last} of {total}").format(first=page.offset + 1,
                                                             last=page.offset + len(page.entries), total=page.total)]
    return "\n".join(lines)


def row(position: int, entry: Entry) -> str:
    figures = _("win rate {win} · max drawdown {drawdown} · return {ret}").format(
        win=percent(entry.win_rate), drawdown=percent(entry.max_drawdown),
        ret=percent(entry.cumulative_return, signed=True)) if entry.closed else _("no closed signals yet")
    head = _("{position}. <b>{name}</b> · score {score}").format(
        position=position, name=_e(entry.name), score=score_text(entry.score))
    tail = _("{price}/mo · {count} subscribers").format(price=usd(entry.price_cents), count=entry.subscribers)
    return f"{head}\n    {figures} · {tail}"


def button(position: int, entry: Entry) -> str:
    return f"{position}. {entry.name} · {score_text(entry.score)}"


def sort_button(view: View) -> str:
    return _("↕️ Sort: {value}").format(value=sort_name(view.sort))


def market_button(view: View) -> str:
    return _("🌐 Market: {value}").format(value=market_choice(view.ecosystem))


def price_button(view: View) -> str:
    return _("💲 Price: {value}").format(value=price_choice(view.price))


def win_button(view: View) -> str:
    return _("🎯 Win rate: {value}").format(value=win_choice(view.win))


def drawdown_button(view: View) -> str:
    return _("📉 Drawdown: {value}").format(value=drawdown_choice(view.drawdown))


# ------------------------------------------------------------------------------------------ the card

def unranked_reason(reason: Unranked) -> str:
    return {Unranked.FEW_SIGNALS: _("fewer than {count} closed signals").format(count=MIN_CLOSED),
            Unranked.SHORT_HISTORY: _("less than {days} days of history").format(days=MIN_HISTORY_DAYS),
            Unranked.INACTIVE: _("no signal in the last {days} days").format(days=ACTIVE_DAYS)}[reason]


def figures(card: Card) -> str:
    """The card's verified figures: 30 days, 90 days and all time, and the score."""
    names = {"30d": _("30 days"), "90d": _("90 days"), "all": _("All time")}
    lines = [_("📊 <b>Verified figures</b> (each signal at equal size, from the platform's arrival times):")]
    for key, period in card.figures.items():
        f = period.figures
        head = f"<b>{names[key]}</b>: " + ngettext("{count} closed signal", "{count} closed signals",
                                                    f.trades).format(count=f.trades)
        if f.trades:
            head += " · " + _("win rate {win} · average {r} R · return {ret} · max drawdown {drawdown} · "
                              "Sharpe {sharpe}").format(
                win=percent(f.win_rate), r=decimal_text(f.avg_r, digits=2) if f.avg_r is not None else "—",
                ret=percent(f.cumulative_return, signed=True), drawdown=percent(f.max_drawdown),
                sharpe=decimal_text(f.sharpe, digits=2) if f.sharpe is not None else "—")
        head += " · " + _("{rate} signals a week · {days} active days").format(
            rate=decimal_text(period.signals_per_week, digits=1), days=period.active_days)
        lines.append(head)
    if card.score.score is not None:
        lines.append(_("Score: <b>{score}</b> of 100").format(score=decimal_text(card.score.score, digits=1)))
    else:
        lines.append(_("Not ranked yet: {reason}.").format(reason=unranked_reason(card.score.unranked)))
    return "\n".join(lines)


def back_to_menu() -> str:
    return _("⬅️ Back to menu")


def chart_button() -> str:
    return _("📈 Equity chart")


def chart_title() -> str:
    return _("Equity curve, equal size per signal")


def chart_caption(name: str) -> str:
    return _("📈 {name}: equity curve (all time)").format(name=name)


def no_chart() -> str:
    return _("No closed signals yet: nothing to chart.")


# ------------------------------------------------------------------------------------------ /providers

def flag_line(flag: Flag) -> str:
    """An integrity flag and its reason, for the admins."""
    example = _e(flag.example or "—")
    if flag.kind is Kind.LATE:
        return _("⚠️ Late events: {count} of {of} events with a claimed time arrived more than {minutes} min after "
                 "it (first: signal {example}).").format(count=flag.count, of=flag.of, example=example,
                                                          minutes=int(LATE_AFTER.total_seconds() // 60))
    if flag.kind is Kind.IMPLAUSIBLE:
        return _("⚠️ Implausible prices: {count} of {of} targets, stops and closes do not fit the signal's own "
                 "levels (first: signal {example}).").format(count=flag.count, of=flag.of, example=example)
    if flag.kind is Kind.FAST:
        return _("⚠️ Quick round trips: {count} of {of} closed signals were closed within {seconds} s of "
                 "arriving (first: signal {example}).").format(count=flag.count, of=flag.of, example=example,
                                                                seconds=int(FAST_WITHIN.total_seconds()))
    return _("⚠️ Improbable win streak: {count} wins in a row among {of} closed signals; the chance of such a "
             "run at the provider's other win rate is {chance} (from signal {example}).").format(
        count=flag.count, of=flag.of, chance=_chance(flag.probability), example=example)


def _chance(probability: float | None) -> str:
    if not probability:
        return "0"
    return "1 : " + number(round(1 / probability)) if probability < 1 else "1"


def flag_mark(flags: list[Flag]) -> str:
    return " ⚠️" if flags else ""
