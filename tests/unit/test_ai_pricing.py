"""The AI-token price rule, to the cent, with the cap and minimum boundaries and bad custom input."""

from decimal import Decimal

import pytest

from services.ai_tokens import PriceRules
from services.openrouter import ModelPrice

RULES = PriceRules(markup=Decimal("0.20"), cap_usd=Decimal("20"), min_tokens=100)


def model(completion: str) -> ModelPrice:
    return ModelPrice("m/x", "X", Decimal("0"), Decimal(completion))


@pytest.mark.parametrize(("completion", "tokens", "base", "total_cents"), [
    ("0.000015", 5_000, "0.075", 9),          # the example: $0.075 -> $0.09
    ("0.000015", 1_000, "0.015", 2),          # 0.018 rounds UP to 0.02
    ("0.0000006", 1_000, "0.0006", 1),        # a fraction of a cent still costs one cent
    ("0.0000006", 20_000, "0.012", 2),        # 0.0144 -> 0.02
    ("0.000075", 20_000, "1.5", 180),         # exact: 1.8
    ("0.00001", 100, "0.001", 1),
    ("0.0000025", 10_000, "0.025", 3),        # 0.03 exactly
])
def test_pricing_table(completion, tokens, base, total_cents):
    quote = RULES.quote(model(completion), tokens)
    assert quote.base == Decimal(base)
    assert quote.total_cents == total_cents


def test_cap_boundary_one_token_under_and_over():
    expensive = model("0.000075")  # $0.00009 per token with markup -> 222,222 tokens fit in $20
    limit = RULES.max_tokens(expensive)
    assert limit == 222_222
    assert RULES.quote(expensive, limit).total_cents == 2000  # 19.99998 -> $20.00, exactly the cap
    assert RULES.quote(expensive, limit + 1).total_cents > 2000
    assert RULES.parse_custom(str(limit), expensive) == (limit, None)
    assert RULES.parse_custom(str(limit + 1), expensive) == (None, "too_many")


def test_packages_over_the_cap_are_not_offered():
    pricey = model("0.0015")  # $0.0018/token with markup: 11,111 tokens max
    names = [name for name, _ in RULES.packages(pricey)]
    assert names == ["starter", "standard", "professional"]
    assert RULES.max_tokens(pricey) == 11_111


def test_minimum_boundary():
    m = model("0.000015")
    assert RULES.parse_custom("100", m) == (100, None)
    assert RULES.parse_custom("99", m) == (None, "too_few")


@pytest.mark.parametrize(("text", "expected"), [
    ("5000", (5000, None)), ("5,000", (5000, None)), (" 5 000 ", (5000, None)),
    ("abc", (None, "not_a_number")), ("5k", (None, "not_a_number")), ("12.5", (None, "not_a_number")),
    ("-500", (None, "not_a_number")), ("+500", (None, "not_a_number")), ("1e4", (None, "not_a_number")),
    ("٥٠٠٠", (None, "not_a_number")),   # Arabic-Indic digits
    ("５０００", (None, "not_a_number")),  # full-width digits
    ("५०००", (None, "not_a_number")),    # Devanagari digits
    ("", (None, "not_a_number")), (None, (None, "not_a_number")),
    ("9" * 400, (None, "too_many")), ("1000000000", (None, "too_many")),
])
def test_custom_amount_inputs(text, expected):
    assert RULES.parse_custom(text, model("0.000015")) == expected


def test_free_and_unpriced_models_are_not_sold():
    assert not RULES.sellable(model("0"))
    assert RULES.max_tokens(model("0")) == 0
