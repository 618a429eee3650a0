"""Charts speak the reader's language (issue #16): the title, the axes and the tick labels of the equity and
revenue charts, read from the drawn figure (rendered to SVG with its texts kept as text)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from decimal import Decimal

import matplotlib
from aiogram.utils.i18n import gettext as _

from bot.i18n import build_i18n
from services.charts import equity_figure, revenue_figure
from tests.support.russian import problems

SERIES = {"Все": [Decimal(1), Decimal("1.0895"), Decimal("1.05"), Decimal("1.12")]}
DAYS = [(date(2026, 11, 28) + timedelta(days=k), cents) for k, cents in enumerate((0, 129_950, 72_975, 250_000))]


def texts(fig) -> list[str]:
    """Every text the drawn figure shows, in drawing order."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # texts stay <text>, not glyph paths
        fig.savefig(buffer, format="svg")
    root = ET.fromstring(buffer.getvalue())
    return [t for e in root.iter("{http://www.w3.org/2000/svg}text") if (t := "".join(e.itertext()).strip())]


def drawn(locale: str) -> tuple[list[str], list[str]]:
    """The equity and revenue charts' texts with the titles the bot gives them, in ``locale``."""
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale(locale):
        equity = texts(equity_figure(SERIES, _("Equity curve, equal size per signal")))
        revenue = texts(revenue_figure(DAYS, _("Revenue per day, last 30 days")))
    return equity, revenue


def plain(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")  # either no-break space


def test_charts_read_russian():
    equity, revenue = drawn("ru")
    found = {t: p for t in equity + revenue if (p := problems(t))}
    assert not found, found  # no English word, no "1.05" or "1,000"
    assert {"Кривая доходности, одинаковый объём на сигнал", "закрытые сигналы", "капитал (начало = 1)",
            "1,02", "1,1"} <= set(equity), equity
    assert {"Выручка по дням за последние 30 дней", "долл. США", "1 000", "2 500", "1 дек."} <= {
        plain(t) for t in revenue}, revenue


def test_charts_read_english():
    equity, revenue = drawn("en")
    assert {"Equity curve, equal size per signal", "closed signals", "equity (start = 1)", "1.02"} <= set(equity)
    assert {"Revenue per day, last 30 days", "USD", "1,000", "2,500", "1 Dec"} <= set(revenue), revenue


def test_revenue_days_are_labelled_once():
    """A few days of revenue: ticks on whole days, each day named once (not "28 Nov" at midnight and noon)."""
    _equity, revenue = drawn("en")
    days = [t for t in revenue if t.endswith(("Nov", "Dec"))]
    assert len(days) >= 3 and len(days) == len(set(days)), days
