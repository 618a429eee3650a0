"""/whales: leaderboards by period and metric, pages of 10 editing one message, wallet cards,
follow with a USD threshold (paying plans, up to the plan's maximum)."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Index, RowId
from bot.edits import edit_or_keep
from bot.keyboards import Menu
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from config.settings import Settings
from presentation.formatting import month_day, number, usd, usd_whole
from presentation.whales import chain_link, pct, short_address, side_name, signed_usd, wallet_name
from services.plans import Plan
from services.whale_follows import THRESHOLDS_USD, FollowProblem
from services.whale_rankings import FREE_TOP, METRICS, PAGE_SIZE, PERIODS, Board, BoardRow, Card

DEFAULT = ("7d", "score")


class WBoard(CallbackData, prefix="wb"):
    p: str
    m: str
    pg: Index = 0


class WCard(CallbackData, prefix="wc"):
    w: RowId
    p: str
    m: str
    pg: Index = 0


class WFollow(CallbackData, prefix="wf"):
    w: RowId
    t: Index = -1  # index into THRESHOLDS_USD; -1 shows the choice


class WUnfollow(CallbackData, prefix="wu"):
    w: RowId


class WMineUnfollow(CallbackData, prefix="wmu"):
    """Unfollow from "My wallets" (that list is shown again, not the card)."""

    w: RowId


class WMine(CallbackData, prefix="wm"):
    """"My wallets": the followed wallets, on the board or not, each with its unfollow button."""


def period_names() -> dict[str, str]:
    return {"7d": _("7 days"), "30d": _("30 days"), "all": _("All time")}


def metric_names() -> dict[str, str]:
    return {"score": _("Score"), "pnl": _("PnL"), "roi": _("ROI"), "winrate": _("Win rate"), "volume": _("Volume")}


def metric_value(row: BoardRow, metric: str) -> str:
    return {"score": _("score {score}").format(score=number(round(row.score))), "pnl": signed_usd(row.pnl_cents),
            "roi": _("ROI {roi}").format(roi=pct(row.roi)), "winrate": _("win {rate}").format(rate=pct(row.win_rate)),
            "volume": _("volume {usd}").format(usd=usd(row.volume_cents))}[metric]


def board_screen(board: Board, plan: Plan, min_trades: int) -> tuple[str, InlineKeyboardMarkup]:
    paid = plan.is_paid
    periods, metrics = period_names(), metric_names()
    lines = [_("🐋 <b>Whale leaderboard</b> · {period} · by {metric}").format(
        period=periods[board.period], metric=metrics[board.metric]), ""]
    if not board.rows:
        lines.append(_("No wallet has {count} or more trades in this period yet.").format(count=min_trades))
    for row in board.rows:
        name = wallet_name(row.address, row.label, row.verified, short=not paid, chain=row.chain if paid else None)
        lines.append(f"{row.rank}. {name}\n"
                     f"    {metric_value(row, board.metric)} · "
                     + ngettext("PnL {pnl} · {trades} trade", "PnL {pnl} · {trades} trades", row.trades).format(
                         pnl=signed_usd(row.pnl_cents), trades=row.trades))
    builder = InlineKeyboardBuilder()
    page = board.offset // PAGE_SIZE
    for row in board.rows:
        builder.button(text=f"{row.rank}. {row.label or short_address(row.address)}",
                       callback_data=WCard(w=row.wallet_id, p=board.period, m=board.metric, pg=page))
    sizes = [2] * (len(board.rows) // 2) + [1] * (len(board.rows) % 2)
    for code in PERIODS:
        mark = "• " if code == board.period else ""
        builder.button(text=mark + periods[code], callback_data=WBoard(p=code, m=board.metric))
    for code in METRICS:
        mark = "• " if code == board.metric else ""
        builder.button(text=mark + metrics[code], callback_data=WBoard(p=board.period, m=code))
    sizes += [3, 3, 2]
    pages = max(1, (board.total + PAGE_SIZE - 1) // PAGE_SIZE)
    if paid and pages > 1:
        nav = 0
        if page > 0:
            builder.button(text="◀️", callback_data=WBoard(p=board.period, m=board.metric, pg=page - 1))
            nav += 1
        builder.button(text=f"{page + 1}/{pages}", callback_data=WBoard(p=board.period, m=board.metric, pg=page))
        nav += 1
        if page + 1 < pages:
            builder.button(text="▶️", callback_data=WBoard(p=board.period, m=board.metric, pg=page + 1))
            nav += 1
        sizes.append(nav)
    if not paid:
        lines += ["", _("Free plan: the top {count}, short addresses. Paid plans see every ranked wallet and "
                        "can follow wallets for trade alerts.").format(count=FREE_TOP)]
        builder.button(text=_("📈 See plans"), callback_data=Menu(section="plans"))
        sizes.append(1)
    else:
        lines += ["", ngettext("{total} wallet ranked (at least {count} trades in the period).",
                               "{total} wallets ranked (at least {count} trades in the period).", board.total).format(
            total=board.total, count=min_trades)]
        builder.button(text=_("📋 My wallets"), callback_data=WMine())
        sizes.append(1)
    builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))
    sizes.append(1)
    builder.adjust(*sizes)
    return "\n".join(lines), builder.as_markup()


def card_text(card: Card, *, short: bool, settings: Settings) -> str:
    wallet = card.wallet
    head = _("🐋 <b>{name}</b>").format(name=html.escape(wallet.label) if wallet.label else _("Wallet"))
    if wallet.verified:
        head += " ✅ " + _("verified")
    chain = html.escape(wallet.chain) if short else chain_link(wallet.chain, wallet.address)
    lines = [head, f"<code>{html.escape(short_address(wallet.address) if short else wallet.address)}</code> · "
             f"{chain}"]
    if wallet.twitter:
        lines.append(f"𝕏 @{html.escape(wallet.twitter)}")
    lines.append("")
    for period, name in period_names().items():
        f = card.figures[period]
        lines.append(ngettext("<b>{period}</b>: PnL {pnl} · win {win} · ROI {roi} · volume {volume} · {trades} trade",
                              "<b>{period}</b>: PnL {pnl} · win {win} · ROI {roi} · volume {volume} · {trades} trades",
                              f.trades)
                     .format(period=name, pnl=signed_usd(f.pnl_cents), win=pct(f.win_rate), roi=pct(f.roi),
                             volume=usd(f.volume_cents), trades=f.trades))
    lines += ["", _("<b>Recent trades</b>")]
    if not card.recent:
        lines.append(_("none yet"))
    for trade in card.recent:
        when = month_day(trade.ts, settings.tz, time=True)
        line = f"• {when} {side_name(trade.side)} {html.escape(trade.symbol)} {usd(trade.usd_cents)}"
        if trade.pnl_cents is not None:
            line += " (" + _("PnL {pnl}").format(pnl=signed_usd(trade.pnl_cents)) + ")"
        lines.append(line)
    return "\n".join(lines)


async def card_screen(services: Services, user_id: int, data: WCard) -> tuple[str, InlineKeyboardMarkup] | None:
    """None when the wallet is unknown or not visible to this user's plan (forged button)."""
    whales = services.whales
    if data.p not in PERIODS or data.m not in METRICS:
        return None
    plan = await services.subscriptions.current_plan(user_id)
    if not plan.is_paid and await whales.rank_of(data.p, data.m, data.w, within=FREE_TOP) is None:
        return None
    card = await whales.card(data.w)
    if card is None:
        return None
    builder = InlineKeyboardBuilder()
    if plan.is_paid:
        follow = await whales.follow_of(user_id, data.w)
        if follow is None:
            builder.button(text=_("🔔 Follow"), callback_data=WFollow(w=data.w))
        else:
            builder.button(text=_("🔔 Alerts from {usd} · change").format(usd=_usd_whole(follow.threshold_cents)),
                           callback_data=WFollow(w=data.w))
            builder.button(text=_("🔕 Unfollow"), callback_data=WUnfollow(w=data.w))
    else:
        builder.button(text=_("🔔 Follow · paid plans"), callback_data=Menu(section="plans"))
    builder.button(text=_("⬅️ Leaderboard"), callback_data=WBoard(p=data.p, m=data.m, pg=data.pg))
    builder.adjust(1)
    return card_text(card, short=not plan.is_paid, settings=services.settings), builder.as_markup()


async def my_wallets_screen(services: Services, user_id: int, lead: str | None = None
                            ) -> tuple[str, InlineKeyboardMarkup]:
    """The wallets the user follows (also those no longer on any leaderboard) with their thresholds, an
    unfollow button each; `lead` goes first (why the list is shown)."""
    follows = await services.whales.follows(user_id)
    lines = [lead, ""] if lead else []
    lines.append(_("📋 <b>My wallets</b>"))
    if not follows:
        lines.append(_("You don't follow any wallet yet. Open one on the leaderboard and tap Follow."))
    builder = InlineKeyboardBuilder()
    for follow_row, wallet in follows:
        lines.append("• " + wallet_name(wallet.address, wallet.label, wallet.verified, short=False, chain=wallet.chain)
                     + "\n    " + _("alerts from {usd}").format(usd=_usd_whole(follow_row.threshold_cents)))
        builder.button(text=_("🔕 {name}").format(name=wallet.label or short_address(wallet.address)),
                       callback_data=WMineUnfollow(w=wallet.id))
    builder.button(text=_("⬅️ Leaderboard"), callback_data=WBoard(p=DEFAULT[0], m=DEFAULT[1]))
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


def _usd_whole(cents: int) -> str:
    return usd_whole(cents // 100)


def refused() -> str:
    return _("This wallet isn't available. Open the leaderboard again: /whales")


async def board_for(services: Services, user_id: int, period: str, metric: str,
                    page: int) -> tuple[str, InlineKeyboardMarkup]:
    whales = services.whales
    plan = await services.subscriptions.current_plan(user_id)
    if plan.is_paid:
        board = await whales.board(period, metric, offset=max(page, 0) * PAGE_SIZE)
        if not board.rows and page > 0:  # past the end (the board shrank): first page
            board = await whales.board(period, metric)
    else:
        board = await whales.board(period, metric, limit=FREE_TOP)
    return board_screen(board, plan, whales.min_trades)


async def show_whales(event: Message | CallbackQuery, services: Services) -> None:
    """/whales and its menu button: the default leaderboard's first page."""
    await show(event, *await board_for(services, event.from_user.id, *DEFAULT, 0))


async def switch(query: CallbackQuery, callback_data: WBoard, services: Services) -> None:
    if callback_data.p not in PERIODS or callback_data.m not in METRICS:
        await refuse(query, _("This button is out of date. Open the leaderboard again: /whales"))
        return
    await show(query, *await board_for(services, query.from_user.id, callback_data.p, callback_data.m,
                                       callback_data.pg))


async def open_card(query: CallbackQuery, callback_data: WCard, services: Services) -> None:
    screen = await card_screen(services, query.from_user.id, callback_data)
    if screen is None:
        await refuse(query, refused())
        return
    await show(query, *screen)


async def show_card(query: CallbackQuery, services: Services, wallet_id: int, note: str) -> None:
    """The wallet's card again after a change (`note` says what changed)."""
    screen = await card_screen(services, query.from_user.id, WCard(w=wallet_id, p=DEFAULT[0], m=DEFAULT[1]))
    if screen is None:
        await acknowledge(query, note)
        return
    await show(query, *screen, note=note)


async def follow(query: CallbackQuery, callback_data: WFollow, services: Services) -> None:
    """Without a threshold: the choice of thresholds; with one: follow (or change the threshold)."""
    whales, user_id = services.whales, query.from_user.id
    plan = await services.subscriptions.current_plan(user_id)
    if not plan.is_paid or plan.whale_follows <= 0:
        await refuse(query, _("Following wallets is part of the paid plans: /plans"))
        return
    wallet = await whales.get_wallet(callback_data.w)
    if wallet is None or callback_data.t >= len(THRESHOLDS_USD) or callback_data.t < -1:
        await refuse(query, refused())
        return
    if callback_data.t == -1:
        builder = InlineKeyboardBuilder()
        for i, amount in enumerate(THRESHOLDS_USD):
            builder.button(text=_usd_whole(amount * 100), callback_data=WFollow(w=wallet.id, t=i))
        builder.button(text=_("⬅️ Back"), callback_data=WCard(w=wallet.id, p=DEFAULT[0], m=DEFAULT[1]))
        builder.adjust(2, 2, 1)
        await show(query, _("🔔 Alert me when {name} trades at least:").format(
            name=wallet_name(wallet.address, wallet.label, wallet.verified, short=True)), builder.as_markup())
        return
    result = await whales.follow(user_id, wallet.id, THRESHOLDS_USD[callback_data.t] * 100, limit=plan.whale_follows)
    if not result.ok:
        if result.problem is FollowProblem.LIMIT:
            text = _("You already follow {count} of {limit} wallets on {plan}. Unfollow one first, or "
                     "upgrade: /plans").format(count=result.count, limit=result.limit, plan=plan.name)
            # Behind the alert, the message becomes the list to unfollow from (also wallets off the board).
            await edit_or_keep(query.message, *await my_wallets_screen(services, user_id))
        elif result.problem is FollowProblem.UNKNOWN_WALLET:
            text = refused()
        else:
            text = _("Following wallets is part of the paid plans: /plans")
        await refuse(query, text)
        return
    await show_card(query, services, wallet.id, _("Following. Alerts for trades from {usd}.").format(
        usd=_usd_whole(THRESHOLDS_USD[callback_data.t] * 100)))


async def unfollow(query: CallbackQuery, callback_data: WUnfollow | WMineUnfollow, services: Services) -> None:
    if not await services.whales.unfollow(query.from_user.id, callback_data.w):
        await refuse(query, refused())
        return
    if isinstance(callback_data, WMineUnfollow):
        await show(query, *await my_wallets_screen(services, query.from_user.id), note=_("Unfollowed."))
        return
    await show_card(query, services, callback_data.w, _("Unfollowed."))


async def my_wallets(query: CallbackQuery, services: Services) -> None:
    await show(query, *await my_wallets_screen(services, query.from_user.id))


def build_router() -> Router:
    router = Router(name="whales")
    router.message.register(show_whales, Command("whales"))
    router.callback_query.register(show_whales, Menu.filter(F.section == "whales"))
    router.callback_query.register(switch, WBoard.filter())
    router.callback_query.register(open_card, WCard.filter())
    router.callback_query.register(follow, WFollow.filter())
    router.callback_query.register(unfollow, WUnfollow.filter())
    router.callback_query.register(unfollow, WMineUnfollow.filter())
    router.callback_query.register(my_wallets, WMine.filter())
    return router
