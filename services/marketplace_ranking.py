"""The marketplace's ranking score and a provider card's figures: pure functions over one provider's closed
signals (each an equal-size trade, as in services.track_record), computed from the platform's own arrival
timestamps only.

**Who is ranked at all** (else the provider is listed as new, after the ranked ones):
  * at least `MIN_CLOSED` (20) closed signals;
  * history of at least `MIN_HISTORY_DAYS` (30) days: the first signal arrived 30 days ago or earlier;
  * active: a signal arrived in the last `ACTIVE_DAYS` (14) days.

**Score** (0–100, two decimals) = 100 × (35 % return + 25 % drawdown + 20 % consistency + 20 % what
subscribers got), each part first mapped to 0..1 on a fixed scale, so a provider's score depends on its own
record only (not on who else is listed):
  * return: the cumulative return (sum of the trades' returns) per 30 days of history, m = sum × 30 / max(30,
    days since the first signal); part = ½ + m / (2 (|m| + 0.10)): 0 % a month → 0.5, +10 % → 0.75, −10 % → 0.25;
  * drawdown: the maximum drawdown d of the equity curve; part = 1 − min(d, 0.5) / 0.5 (50 % or worse → 0);
  * consistency: the share of calendar weeks (ISO weeks of the closing time, UTC) with closed signals whose
    returns sum to more than 0;
  * subscribers: for each subscriber (from the start of their first subscription period), the signals that
    arrived from that moment and have closed, at equal size: their sum per 30 days subscribed (at least 30),
    mapped like the return; the part is the mean over subscribers. With no subscribers yet, the return part
    stands in for it (a subscriber from the first signal would have got exactly the record).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from services import track_record

MIN_CLOSED = 20
MIN_HISTORY_DAYS = 30
ACTIVE_DAYS = 14
WEIGHTS = {"return": Decimal("0.35"), "drawdown": Decimal("0.25"), "consistency": Decimal("0.20"),
           "subscribers": Decimal("0.20")}
RETURN_SCALE = Decimal("0.10")  # a month's return that scores ¾
DRAWDOWN_FLOOR = Decimal("0.50")  # a drawdown that scores 0
CARD_PERIODS = (("30d", 30), ("90d", 90), ("all", None))
_HALF, _MONTH = Decimal("0.5"), Decimal(30)


class Unranked(StrEnum):
    """Why a provider is not ranked yet."""

    FEW_SIGNALS = "few_signals"
    SHORT_HISTORY = "short_history"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class Closed:
    """One closed signal: when it arrived, when it closed, its return and R multiple (track_record.Trade)."""

    opened_at: datetime
    closed_at: datetime
    ret: Decimal
    r_multiple: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Score:
    score: Decimal | None  # 0..100; None when not ranked
    unranked: Unranked | None
    parts: dict[str, Decimal]  # each 0..1, by WEIGHTS' names
    monthly_return: Decimal
    subscribers_return: Decimal | None  # the mean monthly return subscribers got; None without subscribers
    figures: track_record.Figures  # all time (win rate, drawdown, ...)


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    figures: track_record.Figures
    signals_per_week: Decimal
    active_days: int  # days (UTC) on which the provider published a signal


def eligibility(closed: Sequence[Closed], first_signal_at: datetime | None, last_signal_at: datetime | None,
                now: datetime) -> Unranked | None:
    """None when the provider may be ranked; else the first rule it fails."""
    if len(closed) < MIN_CLOSED:
        return Unranked.FEW_SIGNALS
    if first_signal_at is None or now - first_signal_at < timedelta(days=MIN_HISTORY_DAYS):
        return Unranked.SHORT_HISTORY
    if last_signal_at is None or now - last_signal_at > timedelta(days=ACTIVE_DAYS):
        return Unranked.INACTIVE
    return None


def _days(span: timedelta) -> Decimal:
    return Decimal(span // timedelta(seconds=1)) / 86400


def per_month(total: Decimal, since: datetime, now: datetime) -> Decimal:
    """A return over the time since `since`, per 30 days (at least 30 days counted)."""
    days = max(_days(now - since), _MONTH)
    return total * _MONTH / days


def squash(value: Decimal, scale: Decimal = RETURN_SCALE) -> Decimal:
    """A return mapped to 0..1: ½ at 0, ¾ at +scale, ¼ at −scale."""
    return _HALF + value / (2 * (abs(value) + scale))


def drawdown_part(max_drawdown: Decimal) -> Decimal:
    return 1 - min(max_drawdown, DRAWDOWN_FLOOR) / DRAWDOWN_FLOOR


def consistency(closed: Iterable[Closed]) -> Decimal:
    """Weeks with closed signals whose returns sum above 0, over all weeks with closed signals."""
    weeks: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for trade in closed:
        year, week, _day = trade.closed_at.isocalendar()
        weeks[(year, week)] += trade.ret
    if not weeks:
        return Decimal(0)
    return Decimal(sum(1 for total in weeks.values() if total > 0)) / len(weeks)


def subscriber_return(closed: Iterable[Closed], start: datetime, now: datetime) -> Decimal:
    """What one subscriber got: the signals that arrived from their start and closed, equal size, per 30 days."""
    return per_month(sum((t.ret for t in closed if t.opened_at >= start and t.closed_at <= now), Decimal(0)),
                     start, now)


def score(closed: Sequence[Closed], *, first_signal_at: datetime | None, last_signal_at: datetime | None,
          subscriber_starts: Sequence[datetime], now: datetime) -> Score:
    trades = [track_record.Trade(i, "", "", t.closed_at, t.ret, t.r_multiple) for i, t in enumerate(closed)]
    figures = track_record.figures(trades)
    monthly = per_month(figures.cumulative_return, first_signal_at, now) if first_signal_at else Decimal(0)
    got = [subscriber_return(closed, start, now) for start in subscriber_starts]
    parts = {"return": squash(monthly), "drawdown": drawdown_part(figures.max_drawdown),
             "consistency": consistency(closed)}
    parts["subscribers"] = sum((squash(g) for g in got), Decimal(0)) / len(got) if got else parts["return"]
    subscribers_return = sum(got, Decimal(0)) / len(got) if got else None
    unranked = eligibility(closed, first_signal_at, last_signal_at, now)
    value = None
    if unranked is None:
        value = (100 * sum((WEIGHTS[name] * part for name, part in parts.items()), Decimal(0))).quantize(
            Decimal("0.01"), ROUND_HALF_UP)
    return Score(value, unranked, parts, monthly, subscribers_return, figures)


def card_figures(closed: Sequence[Closed], signal_times: Sequence[datetime], now: datetime
                 ) -> dict[str, PeriodFigures]:
    """A provider card's figures for 30 days, 90 days and all time: the track-record figures of the signals
    closed in the period, signals published per week (over the period, or the days since the first signal
    when fewer; at least a week) and the days with a published signal."""
    first = min(signal_times, default=now)
    result = {}
    for name, days in CARD_PERIODS:
        since = first if days is None else now - timedelta(days=days)
        chosen = [track_record.Trade(i, "", "", t.closed_at, t.ret, t.r_multiple)
                  for i, t in enumerate(closed) if t.closed_at >= since]
        published = [at for at in signal_times if at >= since]
        weeks = max(_days(now - max(since, first)), Decimal(7)) / 7
        result[name] = PeriodFigures(track_record.figures(chosen), Decimal(len(published)) / weeks,
                                     len({at.date() for at in published}))
    return result
