"""Screens that tell the truth (issue #16): what a reader sees is exact, not an artefact of drawing or rounding."""

from __future__ import annotations

from decimal import Decimal

from services import charts


def test_equity_chart_counts_closed_signals_in_whole_numbers(monkeypatch):
    drawn = []
    monkeypatch.setattr(charts, "_png", lambda fig, **options: drawn.append(fig) or b"")
    charts.equity_chart({"All": [Decimal(1), Decimal("1.1"), Decimal("0.95")]}, "t")
    [fig] = drawn
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), list(ticks)
