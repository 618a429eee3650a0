"""Whale wording shared by /whales, the alerts worker and the weekly post: amounts, percentages,
wallet names (HTML, label and address escaped), the alert message and the weekly post text."""

from __future__ import annotations

import html
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from db.models_whales import WhaleTrade, WhaleWallet
from presentation.formatting import percent, signed_usd, usd
from services.whale_input import short_address
from services.whale_rankings import Board

__all__ = ["EXPLORERS", "MAX_LINES", "alert_text", "chain_link", "explorer_url", "pct", "post_text", "short_address",
           "side_name", "signed_usd", "wallet_name"]

MAX_LINES = 15  # trades listed in one alert message; the rest are counted
#: A wallet's page on its chain's block explorer, by chain name as ingested (lowercase).
EXPLORERS = {
    "solana": "https://solscan.io/account/{}",
    "ethereum": "https://etherscan.io/address/{}",
    "eth": "https://etherscan.io/address/{}",
    "base": "https://basescan.org/address/{}",
    "bsc": "https://bscscan.com/address/{}",
    "arbitrum": "https://arbiscan.io/address/{}",
    "optimism": "https://optimistic.etherscan.io/address/{}",
    "polygon": "https://polygonscan.com/address/{}",
    "avalanche": "https://snowtrace.io/address/{}",
    "tron": "https://tronscan.org/#/address/{}",
    "ton": "https://tonviewer.com/{}",
    "bitcoin": "https://mempool.space/address/{}",
}


def pct(value: float | None) -> str:
    return percent(value)


def side_name(side: str) -> str:
    """A trade's side as the reader says it: BUY / SELL, ПОКУПКА / ПРОДАЖА."""
    return {"buy": _("BUY"), "sell": _("SELL")}.get(side, side.upper())


def explorer_url(chain: str, address: str) -> str | None:
    """The wallet's page on its chain's block explorer; None for a chain without a known explorer."""
    pattern = EXPLORERS.get(chain.lower())
    return pattern.format(quote(address, safe="")) if pattern else None


def chain_link(chain: str, address: str) -> str:
    """HTML: the chain's name, linking to the wallet on its explorer when the chain has one."""
    url = explorer_url(chain, address)
    name = html.escape(chain)
    return f'<a href="{html.escape(url)}">{name} ↗</a>' if url else name


def wallet_name(address: str, label: str | None, verified: bool, *, short: bool, bold: bool = False,
                chain: str | None = None) -> str:
    """HTML: "✅ label · <code>address</code>" (the label in bold with `bold`), then " · chain ↗" linking to
    the block explorer when `chain` is given (only for readers allowed the full address: the link holds it)."""
    shown = short_address(address) if short else address
    name = f"{html.escape(label)} · " if label else ""
    if bold and name:
        name = f"<b>{name}</b>"
    text = ("✅ " if verified else "") + f"{name}<code>{html.escape(shown)}</code>"
    return text + f" · {chain_link(chain, address)}" if chain else text


def alert_text(items: list[tuple[WhaleTrade, WhaleWallet]], tz: ZoneInfo) -> str:
    lines = [ngettext("🐋 <b>Whale alert</b>: {count} new trade from wallets you follow",
                      "🐋 <b>Whale alert</b>: {count} new trades from wallets you follow", len(items)).format(
                          count=len(items))
             if len(items) > 1 else _("🐋 <b>Whale alert</b>: a wallet you follow just traded")]
    by_wallet: dict[int, list[WhaleTrade]] = {}
    wallets: dict[int, WhaleWallet] = {}
    for trade, wallet in items:
        by_wallet.setdefault(wallet.id, []).append(trade)
        wallets[wallet.id] = wallet
    shown = 0
    for wallet_id, trades in by_wallet.items():
        wallet = wallets[wallet_id]
        lines += ["", wallet_name(wallet.address, wallet.label, wallet.verified, short=True, bold=True,
                                  chain=wallet.chain)]
        for trade in trades:
            if shown >= MAX_LINES:
                break
            shown += 1
            line = (f"• {trade.ts.astimezone(tz):%H:%M} {side_name(trade.side)} {html.escape(trade.symbol)} "
                    f"{usd(trade.usd_cents)}")
            if trade.pnl_cents is not None:
                line += " · " + _("PnL {pnl}").format(pnl=signed_usd(trade.pnl_cents))
            lines.append(line)
    if len(items) > shown:
        lines += ["", _("…and {count} more.").format(count=len(items) - shown)]
    lines += ["", _("Leaderboards and your follows: /whales")]
    return "\n".join(lines)


def post_text(board: Board, week: str) -> str:
    lines = [_("🐋 <b>Weekly whale champions</b> · {week}").format(week=week),
             _("Top wallets of the last 7 days by composite score (PnL, ROI, win rate, volume)."), ""]
    for r in board.rows:
        lines.append(f"{r.rank}. {wallet_name(r.address, r.label, r.verified, short=True)} "
                     + _("PnL {pnl} · win {win}").format(pnl=signed_usd(r.pnl_cents), win=pct(r.win_rate)))
    if not board.rows:
        lines.append(_("No wallet traded enough this week to be ranked."))
    lines += ["", _("Full leaderboards: /whales")]
    return "\n".join(lines)
