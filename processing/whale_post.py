"""The weekly leaderboard post: Monday 09:00 in TIMEZONE to TELEGRAM_CHAT_ID, a rendered table
image (matplotlib's object API on the Agg canvas: no pyplot, no GUI backend) with the text as
caption. One post per ISO week: the week is claimed in `whale_posts` before sending, so a second
run or a restart never posts twice; a failed send is retried by the next run of the same week."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BufferedInputFile
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from apscheduler.schedulers.base import BaseScheduler
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlalchemy import update

from config.settings import Settings
from db.base import utcnow
from db.engine import Database
from db.models_whales import WhalePost
from presentation.whales import pct, post_text, short_address, signed_usd
from services.money import usd
from services.whale_rankings import Board
from services.whales import WhaleService

log = logging.getLogger(__name__)
TOP = 10
STALE_CLAIM = timedelta(minutes=15)


def render_table(board: Board, title: str) -> bytes:
    """A PNG of the board (floats only for drawing)."""
    header = ["#", "Wallet", "Chain", "PnL", "Win rate", "ROI", "Volume", "Trades"]
    rows = [[str(r.rank), (r.label + " · " if r.label else "") + short_address(r.address), r.chain,
             signed_usd(r.pnl_cents), pct(r.win_rate), pct(r.roi),
             usd(r.volume_cents), str(r.trades)] for r in board.rows] or [["", "no ranked wallets", "", "", "", "",
                                                                            "", ""]]
    fig = Figure(figsize=(11, 0.42 * len(rows) + 1.3), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.axis("off")
    ax.set_title(title, fontsize=14, fontweight="bold", loc="left")
    table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="left",
                     colWidths=[0.04, 0.3, 0.09, 0.15, 0.09, 0.08, 0.17, 0.08])
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.35)
    for (row, _col), cell in table.get_celld().items():
        if row == 0:
            cell.set_facecolor("#1f3b57")
            cell.get_text().set_color("white")
            cell.get_text().set_fontweight("bold")
        elif row % 2 == 0:
            cell.set_facecolor("#eef3f8")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()





class WeeklyWhalePost:
    def __init__(self, db: Database, whales: WhaleService, bot: Bot, i18n: I18n, settings: Settings, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.whales, self.bot, self.i18n, self.settings, self.clock = db, whales, bot, i18n, settings, clock

    def schedule(self, scheduler: BaseScheduler) -> None:
        scheduler.add_job(self.run, "cron", day_of_week="mon", hour=9, minute=0, timezone=self.settings.tz,
                          id="whales_weekly_post")

    def week_key(self) -> str:
        year, week, _day = self.clock().astimezone(self.settings.tz).isocalendar()
        return f"{year}-W{week:02d}"

    async def _claim(self, week: str) -> bool:
        now = self.clock()
        async with self.db.transaction() as session:
            existing = (await session.execute(
                WhalePost.__table__.select().where(WhalePost.week == week))).first()
            if existing is None:
                session.add(WhalePost(week=week, status="sending", created_at=now))
                return True
            retry = (WhalePost.status == "failed") | (
                (WhalePost.status == "sending") & (WhalePost.created_at < now - STALE_CLAIM))
            claimed = await session.execute(update(WhalePost).where(WhalePost.week == week, retry)
                                            .values(status="sending", created_at=now))
            return bool(claimed.rowcount)

    async def _finish(self, week: str, status: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(WhalePost).where(WhalePost.week == week, WhalePost.status == "sending")
                                  .values(status=status, sent_at=self.clock()))

    async def run(self) -> bool:
        """Post this week's board once; True when it was sent by this call."""
        chat = self.settings.telegram_chat_id
        if chat is None:
            log.info("weekly whale post skipped: TELEGRAM_CHAT_ID is not set")
            return False
        week = self.week_key()
        if not await self._claim(week):
            return False
        self.whales.forget_rankings()
        board = await self.whales.board("7d", "score", limit=TOP)
        with self.i18n.context(), self.i18n.use_locale(self.i18n.default_locale):
            text = post_text(board, week)
            title = _("Whale leaderboard · 7 days · {week}").format(week=week)
        try:
            png = await asyncio.to_thread(render_table, board, title)
            if len(text) <= 1024:
                await self.bot.send_photo(chat, BufferedInputFile(png, f"whales-{week}.png"), caption=text)
            else:
                await self.bot.send_photo(chat, BufferedInputFile(png, f"whales-{week}.png"))
                await self.bot.send_message(chat, text)
        except (TelegramAPIError, OSError) as exc:
            log.warning("weekly whale post failed: %s", exc)
            await self._finish(week, "failed")
            return False
        await self._finish(week, "sent")
        return True
