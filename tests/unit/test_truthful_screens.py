"""Screens that tell the truth (issue #16): what a reader sees is exact, not an artefact of drawing or rounding."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from handlers.admin.stats import stats_text
from services import charts
from services.ai_tokens import PriceRules
from services.analytics import Dashboard, Figures
from services.openrouter import ModelPrice
from tests.conftest import make_settings


def test_equity_chart_counts_closed_signals_in_whole_numbers(monkeypatch):
    drawn = []
    monkeypatch.setattr(charts, "_png", lambda fig, **options: drawn.append(fig) or b"")
    charts.equity_chart({"All": [Decimal(1), Decimal("1.1"), Decimal("0.95")]}, "t")
    [fig] = drawn
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), list(ticks)


def cheap(completion: str) -> ModelPrice:
    return ModelPrice("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", Decimal("0"), Decimal(completion))


def test_a_cheap_models_packages_are_sized_so_each_has_its_own_price():
    rules = PriceRules(markup=Decimal("0.20"), cap_usd=Decimal("20"), min_tokens=100)
    offered = [(name, quote.tokens, quote.total_cents) for name, quote in rules.packages(cheap("0.0000006"))]
    # unsized: 1,000, 5,000 and 10,000 tokens would all be $0.01
    assert offered == [("starter", 10_000, 1), ("standard", 50_000, 4), ("professional", 100_000, 8),
                       ("enterprise", 200_000, 15)]


def test_packages_that_still_cost_the_same_are_merged_into_the_biggest():
    # sizing up would push packages over a $0.05 cap, so sizes stay and equal prices merge
    rules = PriceRules(markup=Decimal("0"), cap_usd=Decimal("0.05"), min_tokens=100)
    offered = [(name, quote.tokens, quote.total_cents) for name, quote in rules.packages(cheap("0.000001"))]
    assert offered == [("professional", 10_000, 1), ("enterprise", 20_000, 2)]  # not three at $0.01


def test_a_model_whose_packages_already_differ_keeps_them():
    rules = PriceRules(markup=Decimal("0.20"), cap_usd=Decimal("20"), min_tokens=100)
    offered = [quote.tokens for _name, quote in rules.packages(cheap("0.000075"))]
    assert offered == [1_000, 5_000, 10_000, 20_000]


def dashboard(**month) -> Dashboard:
    days = [(date(2026, 11, 27) + timedelta(days=i), i) for i in range(7)]
    return Dashboard(revenue={p: {"total": 2919} for p in ("today", "7d", "30d")}, orders_per_day=days,
                     month=Figures(**month), subscribers={}, mrr_cents=0, churn=None, users_total=4,
                     users_new_today=0, users_new_week=4, users_blocked=0, daily_revenue=[])


def test_stats_round_money_half_up_and_label_their_days(i18n_context):
    text = stats_text(dashboard(orders=4, paid=4, delivered=4, revenue_cents=2919), make_settings())
    # revenue per order and average order are $29.19 / 4 = $7.2975: $7.30, not $7.29
    assert "revenue per order $7.30 · average order $7.30" in text
    assert "Orders per day, last 7 days: 27 Nov: 0 · 28 Nov: 1 · 29 Nov: 2 · 30 Nov: 3 · 01 Dec: 4 · 02 Dec: 5 · " \
           "03 Dec: 6" in text
