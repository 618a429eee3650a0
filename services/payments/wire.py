"""Helpers for providers' JSON wire formats: exact decimals, JSON-safe raw records, case-insensitive headers.

Replies are parsed with ``parse_float=Decimal`` so no float ever holds money; these helpers read such
values as `Decimal`, turn them back into strings for JSON columns, and find headers whatever their case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx


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


class HttpApi:
    """A provider's HTTP side: its own client unless one is passed (tests, a shared pool), one timeout for
    every call, and the clock that dates its requests and checks webhook ages."""

    def __init__(self, client: httpx.AsyncClient | None, timeout: float,
                 clock: Callable[[], datetime] | None) -> None:
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(timeout=timeout)
        self.timeout = timeout
        self.now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()
