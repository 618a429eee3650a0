"""/market's board: the providers ranked by score (services.marketplace_ranking), sorted and filtered with
buttons that cycle through their choices, paged; a provider card's verified figures and its equity chart.
The card itself (description, price, subscribing) is handlers/user/marketplace.py's."""

from __future__ import annotations

import asyncio
from typing import Annotated

from aiogram import F, Router
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from pydantic import Field

from bot.callbacks import RowId
from bot.keyboards import Menu
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from presentation import market_board as words
from presentation import marketplace as market_words
from services.charts import equity_chart
from services.marketplace import State
from services.marketplace_board import DRAWDOWN_CAPS, PAGE_SIZE, PRICE_CAPS, SORTS, WIN_FLOORS, Card, View

#: A market's name as providers give it (services.marketplace.ECOSYSTEM_RE); "" for all.
Ecosystem = Annotated[str, Field(pattern=r"^[a-z0-9_-]{0,32}$")]
SortChoice = Annotated[int, Field(ge=0, le=len(SORTS) - 1)]
PriceChoice = Annotated[int, Field(ge=0, le=len(PRICE_CAPS) - 1)]
WinChoice = Annotated[int, Field(ge=0, le=len(WIN_FLOORS) - 1)]
DrawdownChoice = Annotated[int, Field(ge=0, le=len(DRAWDOWN_CAPS) - 1)]
PageNumber = Annotated[int, Field(ge=0, le=10_000)]


class MarketOpen(CallbackData, prefix="mkt"):
    id: RowId  # 0: the board


class MarketList(CallbackData, prefix="mkl"):
    sort: SortChoice = 0
    eco: Ecosystem = ""
    price: PriceChoice = 0
    win: WinChoice = 0
    dd: DrawdownChoice = 0
    page: PageNumber = 0


class MarketChart(CallbackData, prefix="mkc"):
    id: RowId


def _view(data: MarketList) -> View:
    return View(sort=data.sort, ecosystem=data.eco, price=data.price, win=data.win, drawdown=data.dd)


def _data(view: View, page: int = 0, **changes) -> MarketList:
    fields = dict(sort=view.sort, eco=view.ecosystem, price=view.price, win=view.win, dd=view.drawdown, page=page)
    fields.update(changes)
    return MarketList(**fields)


def _next_market(current: str, ecosystems: list[str]) -> str:
    """The market filter's next choice: all → each market in turn → all."""
    if current not in ecosystems:
        return ecosystems[0] if ecosystems and not current else ""
    at = ecosystems.index(current)
    return ecosystems[at + 1] if at + 1 < len(ecosystems) else ""


async def show_board(event: Message | CallbackQuery, services: Services, view: View, page_number: int = 0) -> None:
    """The ranked providers as `view` sorts and filters them, a page of PAGE_SIZE."""
    page = await services.market_board.page(view, offset=page_number * PAGE_SIZE)
    if page.entries == [] and page_number > 0:  # a page that emptied since the button was drawn
        page_number = 0
        page = await services.market_board.page(view)
    builder = InlineKeyboardBuilder()
    for i, entry in enumerate(page.entries, start=page.offset + 1):
        builder.button(text=words.button(i, entry), callback_data=MarketOpen(id=entry.provider_id))
    sizes = [1] * len(page.entries)
    if page.ecosystems:
        builder.button(text=words.sort_button(view), callback_data=_data(view, sort=(view.sort + 1) % len(SORTS)))
        builder.button(text=words.market_button(view),
                       callback_data=_data(view, eco=_next_market(view.ecosystem, page.ecosystems)))
        builder.button(text=words.price_button(view),
                       callback_data=_data(view, price=(view.price + 1) % len(PRICE_CAPS)))
        builder.button(text=words.win_button(view), callback_data=_data(view, win=(view.win + 1) % len(WIN_FLOORS)))
        builder.button(text=words.drawdown_button(view),
                       callback_data=_data(view, dd=(view.drawdown + 1) % len(DRAWDOWN_CAPS)))
        sizes += [2, 2, 1]
    paging = 0
    if page_number > 0:
        builder.button(text="◀️", callback_data=_data(view, page_number - 1))
        paging += 1
    if page.offset + len(page.entries) < page.total:
        builder.button(text="▶️", callback_data=_data(view, page_number + 1))
        paging += 1
    if paging:
        sizes.append(paging)
    builder.button(text=words.back_to_menu(), callback_data=Menu(section="home"))
    sizes.append(1)
    builder.adjust(*sizes)
    await show(event, words.board(page, view, bool(page.ecosystems)), builder.as_markup())


async def browse(query: CallbackQuery, callback_data: MarketList, services: Services) -> None:
    await show_board(query, services, _view(callback_data), callback_data.page)


async def card_figures(services: Services, provider_id: int) -> tuple[str, Card]:
    """The verified-figures block of a provider's card (handlers.user.marketplace shows the card)."""
    card = await services.market_board.card(provider_id)
    return words.figures(card), card


def add_chart_button(builder: InlineKeyboardBuilder, provider_id: int) -> None:
    builder.button(text=words.chart_button(), callback_data=MarketChart(id=provider_id))


async def send_chart(query: CallbackQuery, callback_data: MarketChart, services: Services) -> None:
    """A provider's equity curve (all time, equal size per signal) as a photo."""
    provider = await services.marketplace.get(callback_data.id)
    if provider is None or provider.status != State.APPROVED:
        await refuse(query, market_words.not_on_sale())
        return
    card = await services.market_board.card(provider.id)
    if len(card.equity) < 2:
        await refuse(query, words.no_chart())
        return
    png = await asyncio.to_thread(equity_chart, {provider.name: card.equity}, words.chart_title())
    await acknowledge(query)
    await query.message.answer_photo(BufferedInputFile(png, "equity.png"), caption=words.chart_caption(provider.name))


def build_router() -> Router:
    router = Router(name="market_board")
    router.callback_query.filter(F.message.chat.type == "private")
    router.callback_query.register(browse, MarketList.filter())
    router.callback_query.register(send_chart, MarketChart.filter())
    return router
