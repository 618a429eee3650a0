"""Money helpers. Amounts are integers of cents (USD) or exact Decimals; never floats."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from fractions import Fraction


def plain(amount: Decimal) -> str:
    """A Decimal as plain digits, without trailing zeros or an exponent: '142.5', '0.00021', '1200'."""
    return format(amount.normalize(), "f")


def usd(cents: int) -> str:
    """'$9.99' for 999."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def money_text(amount: Decimal) -> str:
    """A USD amount that may hold fractions of a cent: '$0.075', '$12.50'."""
    text = plain(amount.quantize(Decimal("0.0001")))
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def part_of(amount: Decimal, part: Fraction, unit: Decimal) -> Decimal:
    """`part` of `amount` (0 ≤ part ≤ 1), rounded half-up to `unit` (a cent, one Star, a satoshi) and never more
    than `amount`: what a pro-rata refund gives back."""
    exact = Fraction(amount) * part
    whole, rest = divmod(exact / Fraction(unit), 1)
    units = whole + (1 if rest * 2 >= 1 else 0)
    return min(amount, (Decimal(int(units)) * unit).quantize(unit, rounding=ROUND_HALF_UP))


def smallest_unit(amount: Decimal, asset: str) -> Decimal:
    """The smallest unit a payment of `amount` in `asset` is counted in: one Star, a cent of a fiat amount, else
    the paid amount's own last digit (a satoshi for "0.00041234 BTC")."""
    if asset == "XTR":
        return Decimal(1)
    return Decimal(1).scaleb(min(amount.as_tuple().exponent, -2))


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents) / 100


def stars_for(cents: int, stars_usd_rate: Decimal) -> int:
    """Stars needed to cover a USD price, rounded up (never undercharge)."""
    return int((cents_to_decimal(cents) / stars_usd_rate).to_integral_value(rounding=ROUND_CEILING))


def format_amount(amount: Decimal, asset: str) -> str:
    """A provider amount as people read it: '12.5 USDT', '0.00021 BTC', '770 ⭐'."""
    if asset == "XTR":
        return f"{int(amount)} ⭐"
    if asset == "USD":
        return usd(int((amount * 100).to_integral_value()))
    return f"{plain(amount)} {asset}"
