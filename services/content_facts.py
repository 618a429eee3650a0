"""Live facts for channel-post prompts from the other features: each feeder returns one line, or None when
there is nothing worth saying yet (no closed signals, no ranked whales). Plugged into
`ContentService.feeders` by the app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from db.base import utcnow
from services import track_record
from services.content import Feeder
from services.money import usd
from services.signals import SignalService
from services.whale_input import short_address
from services.whales import WhaleService

TRACK_RECORD_DAYS = 30


def track_record_fact(signals: SignalService, clock: Callable[[], datetime] = utcnow) -> Feeder:
    async def fact() -> str | None:
        since = clock() - timedelta(days=TRACK_RECORD_DAYS)
        figures = track_record.figures([t for t in await signals.trades() if t.closed_at >= since])
        if not figures.trades:
            return None
        return (f"Our signals, last {TRACK_RECORD_DAYS} days: {figures.trades} closed, {figures.wins} won "
                f"({figures.win_rate * 100:.0f}%), cumulative return {figures.cumulative_return * 100:+.1f}%.")
    return fact


def top_whale_fact(whales: WhaleService) -> Feeder:
    async def fact() -> str | None:
        board = await whales.board("7d", "score", limit=1)
        if not board.rows:
            return None
        top = board.rows[0]
        name = top.label or short_address(top.address)
        return (f"This week's top whale on our leaderboard: {name} ({top.chain}), PnL {usd(top.pnl_cents)} "
                f"over {top.trades} trades.")
    return fact
