"""A pro-rata refund's amounts (services.money.part_of, services.earnings.reversal): the unused part, rounded
half-up to the payment's smallest unit (a cent, a Star, a satoshi), never more than was paid; the seller's share
reversed in the price's proportion."""

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from services.earnings import reversal
from services.money import part_of, smallest_unit


def test_the_unused_part_is_rounded_half_up_to_the_smallest_unit():
    assert part_of(Decimal(25), Fraction(20, 30), Decimal("0.01")) == Decimal("16.67")
    assert part_of(Decimal("0.01"), Fraction(1, 2), Decimal("0.01")) == Decimal("0.01")  # half a cent: up
    assert part_of(Decimal(770), Fraction(2, 3), Decimal(1)) == Decimal(513)  # Stars: whole
    assert part_of(Decimal("0.00041234"), Fraction(1, 3), Decimal("1E-8")) == Decimal("0.00013745")
    assert part_of(Decimal(25), Fraction(1), Decimal("0.01")) == Decimal(25)


def test_the_smallest_unit_of_a_payment():
    assert smallest_unit(Decimal(770), "XTR") == 1
    assert smallest_unit(Decimal(25), "USD") == Decimal("0.01")
    assert smallest_unit(Decimal("25"), "USDT") == Decimal("0.01")
    assert smallest_unit(Decimal("0.00041234"), "BTC") == Decimal("1E-8")


def test_the_share_reverses_in_the_prices_proportion():
    price_back, share_back = reversal(Decimal(25), Decimal(20), Fraction(2, 3))
    assert (price_back, share_back) == (Decimal("16.67"), Decimal("13.336"))
    assert reversal(Decimal(25), Decimal(20), None) == (Decimal(25), Decimal(20))


@given(cents=st.integers(1, 10**7), unused=st.integers(0, 30 * 86_400), total=st.integers(1, 30 * 86_400))
def test_never_more_than_was_paid(cents, unused, total):
    price = Decimal(cents) / 100
    part = Fraction(min(unused, total), total)
    back = part_of(price, part, Decimal("0.01"))
    assert 0 <= back <= price and abs(Fraction(back) - Fraction(price) * part) <= Fraction(1, 200)
    price_back, share_back = reversal(price, price * Decimal("0.8"), part)
    assert price_back == back and 0 <= share_back <= price * Decimal("0.8") and share_back <= price_back
