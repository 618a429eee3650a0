"""Helpers for providers' JSON wire formats: exact decimals, JSON-safe raw records, case-insensitive headers.

Replies are parsed with ``parse_float=Decimal`` so no float ever holds money; these helpers read such
values as `Decimal`, turn them back into strings for JSON columns, and find headers whatever their case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


def exact(amount: Decimal) -> str:
    """``amount`` as written, without an exponent: ``Decimal("1.50")`` -> ``"1.50"``."""
    return format(amount, "f")


def finite_decimal(value: Any) -> Decimal | None:
    """A JSON number or numeric string (Decimal, int, str) -> Decimal; None when absent, a bool, or not a
    finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def jsonable(value: Any, *, decimal: Callable[[Decimal], str] = exact) -> Any:
    """``value`` with every Decimal written as a string by ``decimal``, so it can be stored in a JSON column."""
    if isinstance(value, Decimal):
        return decimal(value)
    if isinstance(value, dict):
        return {k: jsonable(v, decimal=decimal) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, decimal=decimal) for v in value]
    return value


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in any case; None when absent."""
    name = name.lower()
    return next((v for k, v in headers.items() if k.lower() == name), None)


__all__ = ["exact", "finite_decimal", "header", "jsonable"]
