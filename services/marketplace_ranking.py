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

A week's and a subscriber's sums are exact (EXACT, then rounded once), so they come out the same whichever
order the signals are added in: from the signals here, or from the per-day sums services.marketplace_rollups
keeps. `rate` is the score from those parts; `score` computes them from a provider's closed signals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
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
EXACT = Context(prec=2000)  # enough digits that adding returns never rounds (prices have at most 36 digits)


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


def eligibility(closed: Sequence[Closed] | int, first_signal_at: datetime | None, last_signal_at: datetime | None,
                now: datetime) -> Unranked | None:
    """None when the provider may be ranked; else the first rule it fails (`closed`: the signals or their count)."""
    if (closed if isinstance(closed, int) else len(closed)) < MIN_CLOSED:
        return Unranked.FEW_SIGNALS
    if first_signal_at is None or now - first_signal_at < timedelta(days=MIN_HISTORY_DAYS):
        return Unranked.SHORT_HISTORY
    if last_signal_at is None or now - last_signal_at > timedelta(days=ACTIVE_DAYS):
        return Unranked.INACTIVE
    return None


def _days(span: timedelta) -> Decimal:
    return Decimal(span.days * 86400 + span.seconds) / 86400  # whole seconds (span // 1 s), cheaply


def per_month(total: Decimal, since: datetime, now: datetime) -> Decimal:
    """A return over the time since `since`, per 30 days (at least 30 days counted)."""
    days = max(_days(now - since), _MONTH)
    return total * _MONTH / days


def squash(value: Decimal, scale: Decimal = RETURN_SCALE) -> Decimal:
    """A return mapped to 0..1: ½ at 0, ¾ at +scale, ¼ at −scale."""
    return _HALF + value / (2 * (abs(value) + scale))


def drawdown_part(max_drawdown: Decimal) -> Decimal:
    return 1 - min(max_drawdown, DRAWDOWN_FLOOR) / DRAWDOWN_FLOOR


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = EXACT.add(total, value)
    return total


def week_of(at: datetime) -> int:
    """The ISO week (UTC) as year × 100 + week."""
    year, week, _day = at.isocalendar()
    return year * 100 + week


def consistency(closed: Iterable[Closed]) -> Decimal:
    """Weeks with closed signals whose returns sum above 0, over all weeks with closed signals."""
    weeks: dict[int, Decimal] = defaultdict(Decimal)
    for trade in closed:
        weeks[week_of(trade.closed_at)] = EXACT.add(weeks[week_of(trade.closed_at)], trade.ret)
    return consistency_of(sum(1 for total in weeks.values() if total > 0), len(weeks))


def consistency_of(positive_weeks: int, weeks: int) -> Decimal:
    return Decimal(positive_weeks) / weeks if weeks else Decimal(0)


def got_since(closed: Iterable[Closed], start: datetime, now: datetime) -> Decimal:
    """The exact sum of the returns of the signals that arrived from `start` and closed by `now`."""
    return exact_sum(t.ret for t in closed if t.opened_at >= start and t.closed_at <= now)


def subscriber_return(closed: Iterable[Closed], start: datetime, now: datetime) -> Decimal:
    """What one subscriber got: the signals that arrived from their start and closed, equal size, per 30 days."""
    return per_month(+got_since(closed, start, now), start, now)


def score(closed: Sequence[Closed], *, first_signal_at: datetime | None, last_signal_at: datetime | None,
          subscriber_starts: Sequence[datetime], now: datetime) -> Score:
    trades = [track_record.Trade(i, "", "", t.closed_at, t.ret, t.r_multiple) for i, t in enumerate(closed)]
    return rate(track_record.figures(trades), consistency(closed),
                [(start, got_since(closed, start, now)) for start in subscriber_starts],
                first_signal_at=first_signal_at, last_signal_at=last_signal_at, now=now)


def rate(figures: track_record.Figures, consistent: Decimal, got: Sequence[tuple[datetime, Decimal]], *,
         first_signal_at: datetime | None, last_signal_at: datetime | None, now: datetime) -> Score:
    """The score from its parts: the all-time figures, the consistency part, and for each subscriber their start
    and the exact sum of the returns they got (got_since)."""
    monthly = per_month(figures.cumulative_return, first_signal_at, now) if first_signal_at else Decimal(0)
    got = [per_month(+total, start, now) for start, total in got]
    parts = {"return": squash(monthly), "drawdown": drawdown_part(figures.max_drawdown),
             "consistency": consistent}
    # means over subscribers summed exactly: the same in whatever order the subscribers are read
    parts["subscribers"] = +exact_sum(squash(g) for g in got) / len(got) if got else parts["return"]
    subscribers_return = +exact_sum(got) / len(got) if got else None
    unranked = eligibility(figures.trades, first_signal_at, last_signal_at, now)
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
