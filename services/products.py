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


@dataclass(frozen=True, slots=True)
class TakenBack:
    """What a refund took back. `text` says it to the buyer and the admin (called in their locale);
    `record` goes to the audit log."""

    text: Callable[[], str]
    record: dict = field(default_factory=dict)


class FulfilmentFailed(Exception):
    """Fulfilment cannot succeed by retrying (e.g. the product no longer exists)."""


class Fulfiller(Protocol):
    product: str

    async def fulfil(self, order: Order) -> Delivery:
        """Deliver `order`; idempotent per order id (a retried job may call it again)."""
        ...

    def takes_back(self, order: Order) -> str:
        """What refunding `order` will take back, in words, for the admin's confirmation."""
        ...

    async def revoke(self, order: Order) -> TakenBack:
        """Take back what `order` delivered, at once, so nothing of it stays usable. Idempotent (a
        retried refund may call it again) and safe before delivery (nothing to take back yet).
        Raises when it could not be done; the refund retries it."""
        ...
