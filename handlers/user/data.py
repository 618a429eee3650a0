"""/data: the datasets for sale (price per cut), buying one through checkout, and the buyer's downloads."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Index
from bot.keyboards import Menu
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from handlers.user.checkout import offer_payment
from presentation import datasets as words
from services.datasets import CUTS, FORMATS, DatasetProblem
from services.products import text


class DataOpen(CallbackData, prefix="dso"):
    d: Index  # the dataset's place in the catalogue


class DataBuy(CallbackData, prefix="dsb"):
    d: Index
    cut: str


class DataMine(CallbackData, prefix="dsm"):
    pass


def dataset_ids(services: Services) -> list[str]:
    return list(services.datasets.sources)


async def show_catalogue(event: Message | CallbackQuery, services: Services) -> None:
    """/data and its menu button: every dataset with its prices."""
    service = services.datasets
    quotes = await service.catalogue()
    sources = list(service.sources.values())
    builder = InlineKeyboardBuilder()
    for index, source in enumerate(sources):
        builder.button(text=f"📦 {text(source.title)}", callback_data=DataOpen(d=index))
    builder.button(text=_("📂 My datasets"), callback_data=DataMine())
    builder.button(text=_("⬅️ Back to menu"), callback_data=Menu(section="home"))
    builder.adjust(1)
    await show(event, words.catalogue(sources, quotes, service.base_price), builder.as_markup())


async def open_dataset(query: CallbackQuery, callback_data: DataOpen, services: Services) -> None:
    ids = dataset_ids(services)
    if not 0 <= callback_data.d < len(ids):
        await refuse(query, words.problem(DatasetProblem.UNKNOWN))
        return
    source = services.datasets.sources[ids[callback_data.d]]
    quotes = [q for q in await services.datasets.catalogue() if q.dataset == source.id]
    builder = InlineKeyboardBuilder()
    for quote in quotes:
        if quote.rows:
            builder.button(text=words.quote_line(quote), callback_data=DataBuy(d=callback_data.d, cut=quote.cut))
    builder.button(text=_("⬅️ Datasets"), callback_data=Menu(section="data"))
    builder.adjust(1)
    await show(query, words.dataset_screen(source, quotes), builder.as_markup())


async def buy(query: CallbackQuery, callback_data: DataBuy, services: Services) -> None:
    """A cut's button: the order, priced and cut now, offered for payment."""
    ids = dataset_ids(services)
    if not 0 <= callback_data.d < len(ids) or callback_data.cut not in CUTS:
        await refuse(query, words.problem(DatasetProblem.UNKNOWN))
        return
    order, problem = await services.dataset_shop.place(query.from_user.id, ids[callback_data.d], callback_data.cut)
    if order is None:
        await refuse(query, words.problem(problem or DatasetProblem.UNKNOWN))
        return
    await offer_payment(query.message, order, services.checkout, edit=True)
    await acknowledge(query)


async def my_datasets(query: CallbackQuery, services: Services) -> None:
    """The buyer's datasets, each with fresh download links (24 h)."""
    service = services.datasets
    purchases = await service.purchases(query.from_user.id)
    texts = words.DatasetTexts(service.sources)
    builder = InlineKeyboardBuilder()
    lines = []
    for purchase in purchases:
        lines.append(words.purchase_line(purchase, texts.title(purchase.dataset), services.settings.tz))
        for fmt, url in (await service.links(purchase)).items():
            builder.button(text=f"{words.format_label(fmt)} · #{purchase.id}", url=url)
    builder.button(text=_("⬅️ Datasets"), callback_data=Menu(section="data"))
    builder.adjust(*([len(FORMATS)] * len(purchases)), 1)
    await show(query, words.my_datasets(lines), builder.as_markup())


def build_router() -> Router:
    router = Router(name="data")
    # keys, secrets and download links are shown here: only in a private chat, never in a group
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")
    router.message.register(show_catalogue, Command("data"))
    router.callback_query.register(show_catalogue, Menu.filter(F.section == "data"))
    router.callback_query.register(open_dataset, DataOpen.filter())
    router.callback_query.register(buy, DataBuy.filter())
    router.callback_query.register(my_datasets, DataMine.filter())
    return router
