"""Dataset wording: the /data screens (catalogue, one dataset, the buyer's downloads), the delivery message and
`datasets_product`, the dataset product's registration with this wording."""

from __future__ import annotations

import html
from decimal import Decimal
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from db.models_datasets import DatasetPurchase
from presentation.formatting import cut_name, datetime_text, money_text, number
from services import datasets
from services.datasets import DELAY, LINK_TTL, ROWS_PER_BLOCK, DatasetProblem, DatasetService, Quote, Source
from services.products import Product, ProductParts, text


def rows_text(rows: int) -> str:
    return ngettext("{count} row", "{count} rows", rows).format(count=number(rows))


def quote_line(quote: Quote) -> str:
    """"live, up to now: 12,345 rows — $1.00" (plain text, also a button)."""
    if quote.rows == 0:
        return _("{cut}: no data yet").format(cut=cut_name(quote.cut))
    return _("{cut}: {rows} — {price}").format(cut=cut_name(quote.cut), rows=rows_text(quote.rows),
                                              price=money_text(quote.price))


def pricing(base: Decimal) -> str:
    return _("Price: {base} per started {block} rows; a live cut (up to now) costs twice a cut delayed by {days} "
             "days.").format(base=money_text(base), block=number(ROWS_PER_BLOCK), days=DELAY.days)


def catalogue(sources: list[Source], quotes: list[Quote], base: Decimal) -> str:
    """/data: every dataset with its price at each cut."""
    lines = [_("📦 <b>Datasets</b>"), "",
             _("Exports as CSV or Parquet, with a download link valid for {hours} hours (a new link any time "
               "here). A purchase is fixed at the moment you buy: downloading again gives the same file.").format(
                 hours=int(LINK_TTL.total_seconds() // 3600)),
             pricing(base), ""]
    for source in sources:
        lines.append(f"<b>{html.escape(text(source.title))}</b>")
        lines.extend("· " + html.escape(quote_line(q)) for q in quotes if q.dataset == source.id)
    return "\n".join(lines)


def dataset_screen(source: Source, quotes: list[Quote]) -> str:
    lines = [f"📦 <b>{html.escape(text(source.title))}</b>", "", html.escape(text(source.description)), "",
             _("Columns: {columns}").format(columns=", ".join(f"<code>{name}</code>" for name, _t in source.columns)),
             "", _("Choose a cut:")]
    if all(q.rows == 0 for q in quotes):
        lines[-1] = _("There is no data in this dataset yet.")
    return "\n".join(lines)


def problem(code: DatasetProblem) -> str:
    """Why the shop did not sell (buying in the bot meets only these two)."""
    if code is DatasetProblem.EMPTY:
        return _("This dataset has no data in that cut yet.")
    return _("This dataset is not available. See /data.")


def purchase_line(purchase: DatasetPurchase, title: str, tz: ZoneInfo) -> str:
    return _("📦 <b>{title}</b> · {cut} · {rows}\ndata up to {end} · bought {bought}").format(
        title=html.escape(title), cut=cut_name(purchase.cut), rows=rows_text(purchase.rows),
        end=datetime_text(purchase.cutoff_at, tz), bought=datetime_text(purchase.created_at, tz))


def my_datasets(lines: list[str]) -> str:
    if not lines:
        return _("You have not bought any dataset yet. See /data.")
    return "\n\n".join([_("📂 <b>Your datasets</b>: the buttons are download links, valid for {hours} hours.").format(
        hours=int(LINK_TTL.total_seconds() // 3600)), *lines])


def format_label(fmt: str) -> str:
    return {"csv": "⬇️ CSV", "parquet": "⬇️ Parquet"}.get(fmt, fmt)


class DatasetTexts:
    """services.datasets.DatasetWording in the reader's language (HTML)."""

    def __init__(self, sources: dict[str, Source]) -> None:
        self.sources = sources

    def title(self, dataset: str) -> str:
        source = self.sources.get(dataset)
        return text(source.title) if source is not None else dataset

    def delivered(self, purchase: DatasetPurchase, links: dict[str, str]) -> str:
        return _("📦 <b>Your dataset is ready</b>: {title} ({cut}, {rows}).\n\n"
                 "CSV: {csv}\nParquet: {parquet}\n\nThe links work for {hours} hours; /data gives new ones "
                 "any time. Downloading again gives the same file.").format(
            title=html.escape(self.title(purchase.dataset)), cut=cut_name(purchase.cut),
            rows=rows_text(purchase.rows), csv=html.escape(links["csv"]), parquet=html.escape(links["parquet"]),
            hours=int(LINK_TTL.total_seconds() // 3600))

    def link_label(self) -> str:
        return _("⬇️ Download CSV")

    def takes_back(self) -> str:
        return _("the dataset's download links stop working at once")

    def taken_back(self, had: bool) -> str:
        if had:
            return _("📦 The dataset's download links no longer work.")
        return _("📦 No dataset will be delivered for this order.")

    def order_line(self) -> str:
        return _("📦 New download links: /data")


def datasets_product(parts: ProductParts) -> Product:
    """The dataset product (services.datasets.dataset_product) told in these words."""
    service = DatasetService.from_settings(parts.settings, parts.db, parts.ledger)
    return datasets.dataset_product(parts, service, DatasetTexts(service.sources))
