"""What every product implements to be sold through the payment core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from db.models import Order


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the buyer is sent, and what is kept about it (never a secret).

    `text` renders the message; it is called in the buyer's locale."""

    text: Callable[[], str]
    record: dict = field(default_factory=dict)


class FulfilmentFailed(Exception):
    """Fulfilment cannot succeed by retrying (e.g. the product no longer exists)."""


class Fulfiller(Protocol):
    product: str

    async def fulfil(self, order: Order) -> Delivery:
        """Deliver `order`; idempotent per order id (a retried job may call it again)."""
        ...
