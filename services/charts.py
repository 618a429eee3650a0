"""Charts as PNG bytes: matplotlib's object API on the Agg canvas (no pyplot: no global state, safe in
the worker threads the handlers draw in). Floats are used for drawing only."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as translate
from babel.dates import format_date
from babel.numbers import format_decimal
from matplotlib.dates import num2date
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator


def _(text: str) -> str:
    """The reader's words for the axes (the handlers draw in a thread that keeps their i18n context);
    English where there is no context (tests, benchmarks)."""
    try:
        return translate(text)
    except LookupError:
        return text


def _locale() -> str:
    try:
        return get_i18n().current_locale
    except LookupError:
        return "en"


def _numbers(locale: str) -> FuncFormatter:
    """Tick labels as the reader writes numbers: '1.5' / '1,5', '1,000' / '1 000'."""
    return FuncFormatter(lambda x, _pos: format_decimal(round(x, 4), locale=locale))


def _png(fig: Figure, **options) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **options)
    return buffer.getvalue()


def revenue_chart(days: list[tuple[date, int]], title: str) -> bytes:
    """Bars of daily revenue in USD (cents converted for drawing only)."""
    return _png(revenue_figure(days, title))


def revenue_figure(days: list[tuple[date, int]], title: str) -> Figure:
    """The revenue chart before it is drawn (its texts can be read: tests render it to SVG)."""
    fig = Figure(figsize=(8, 3.2), dpi=100)
    ax = fig.add_subplot()
    ax.bar([d for d, _ in days], [cents / 100 for _, cents in days], color="#2f80ed", width=0.8)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(_("USD"))
    locale = _locale()
    ax.yaxis.set_major_formatter(_numbers(locale))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: format_date(num2date(x), "d MMM", locale=locale)))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True, min_n_ticks=1))  # whole days: no "28 Nov" twice
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def equity_chart(series: dict[str, Sequence[Decimal]], title: str) -> bytes:
    """Equity curves, one line per name."""
    return _png(equity_figure(series, title), bbox_inches="tight")


def equity_figure(series: dict[str, Sequence[Decimal]], title: str) -> Figure:
    """The equity chart before it is drawn (its texts can be read: tests render it to SVG)."""
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    for name, values in series.items():
        ax.plot(range(len(values)), [float(v) for v in values], label=name, linewidth=1.8)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_title(title)
    ax.set_xlabel(_("closed signals"))
    ax.set_ylabel(_("equity (start = 1)"))
    ax.yaxis.set_major_formatter(_numbers(_locale()))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # signals are counted: no "2.5 closed signals"
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(loc="best")
    return fig
