"""The answer to "place an order for this product": the pending order, or why not (one type for every
product; the problem values are the strings stored and compared before)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from db.models import Order


class PlaceProblem(StrEnum):
    UNKNOWN_PLAN = "unknown_plan"
    NOT_CONFIGURED = "not_configured"  # the product cannot be delivered (its provider key is unset)
    UNKNOWN_MODEL = "unknown_model"
    NOT_A_NUMBER = "not_a_number"
    TOO_FEW = "too_few"
    TOO_MANY = "too_many"
    NO_HEADROOM = "no_headroom"  # the upstream account cannot cover the order now


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order | None = None
    problem: PlaceProblem | None = None
