"""Subscription plans: what each tier costs and allows. Configured here; the defaults follow the
product brief (Free / Basic $9.99 / Pro $29.99 / Enterprise $99.99 a month, annual = 10 months)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    name: str
    monthly_cents: int  # 0 for Free
    signals_per_day: int | None  # None = unlimited
    history_days: int
    whale_follows: int  # wallets a subscriber may follow (0 = following not included)
    rank: int  # ordering: a higher rank includes everything a lower one does

    @property
    def annual_cents(self) -> int:
        return self.monthly_cents * 10

    @property
    def is_paid(self) -> bool:
        return self.monthly_cents > 0


PLANS: dict[str, Plan] = {p.code: p for p in (
    Plan("free", "Free", 0, 10, 7, 0, 0),
    Plan("basic", "Basic", 999, 100, 30, 5, 1),
    Plan("pro", "Pro", 2999, 1000, 90, 25, 2),
    Plan("enterprise", "Enterprise", 9999, None, 365, 100, 3),
)}
FREE = PLANS["free"]

