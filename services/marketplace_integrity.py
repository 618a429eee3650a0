"""Integrity flags on a provider's record, for the admins' review in /providers: pure functions over the
provider's signals and events as the platform timestamped them on arrival (`received_at`). A flag is a
reason to look, not a verdict; none changes the figures.

* **late** — events arriving more than `LATE_AFTER` (5 min) after the time they claim their price was
  reached, for events that carry a claimed time (`claimed_at`); flagged from `LATE_MIN` (3) such events.
* **implausible** — closing prices that do not fit the signal's own levels (beyond `TOLERANCE`, 2 %): a
  target hit away from that target, a stop hit away from the stop, a close beyond the last target or the stop
  (it would have hit them first); flagged from `IMPLAUSIBLE_MIN` (2) such events.
* **fast** — signals closed within `FAST_WITHIN` (60 s) of arriving; flagged from `FAST_MIN` (5) such
  signals that are also at least `FAST_SHARE` (10 %) of the closed ones.
* **streak** — the longest run of winning signals (in closing order), L, is improbable: the chance of a run
  of L or more wins in the provider's n closed signals, were each a win independently with probability p, is
  below `STREAK_P` (0.001), with L ≥ `STREAK_MIN` (8). p is the win rate outside that run, Laplace-smoothed
  ((wins outside + 1) / (n − L + 2)), so the run does not vouch for itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from services import track_record

LATE_AFTER, LATE_MIN = timedelta(minutes=5), 3
TOLERANCE, IMPLAUSIBLE_MIN = Decimal("0.02"), 2
FAST_WITHIN, FAST_MIN, FAST_SHARE = timedelta(seconds=60), 5, Decimal("0.10")
STREAK_P, STREAK_MIN = 0.001, 8


class Kind(StrEnum):
    LATE = "late"
    IMPLAUSIBLE = "implausible"
    FAST = "fast"
    STREAK = "streak"


@dataclass(frozen=True, slots=True)
class Flag:
    kind: Kind
    count: int  # events or signals concerned (for a streak: its length)
    of: int  # out of how many (events with a claimed time, closing events, closed signals)
    example: str | None = None  # a signal's id as the provider sent it
    probability: float | None = None  # streak: the chance of such a run


def _example(signal) -> str:
    return signal.external_id.split(":", 1)[-1]


def _closing(signals: Iterable, events: Iterable) -> list[tuple[object, object]]:
    """Each closed signal with the event that closed it (track_record's rule)."""
    by_signal: dict[int, list] = defaultdict(list)
    for event in events:
        by_signal[event.signal_id].append(event)
    found = []
    for signal in signals:
        last_level = len(signal.take_profits)
        for event in sorted(by_signal.get(signal.id, ()), key=lambda e: (e.received_at, e.id)):
            if event.type in track_record.CLOSING or (event.type == "tp_hit" and event.level >= last_level):
                found.append((signal, event))
                break
    return found


def late(signals: Sequence, events: Sequence) -> Flag | None:
    claimed = [e for e in events if getattr(e, "claimed_at", None) is not None]
    slow = [e for e in claimed if e.received_at - e.claimed_at > LATE_AFTER]
    if len(slow) < LATE_MIN:
        return None
    by_id = {s.id: s for s in signals}
    first = by_id.get(slow[0].signal_id)
    return Flag(Kind.LATE, len(slow), len(claimed), _example(first) if first else None)


def _off(price: Decimal, level: Decimal) -> bool:
    return abs(price - level) > level * TOLERANCE


def implausible_price(signal, event) -> bool:
    """Whether an event's price does not fit the signal's entry, targets and stop."""
    targets = [Decimal(tp) for tp in signal.take_profits]
    stop, price, long = signal.stop_loss, event.price, signal.side == "long"
    if event.type == "tp_hit":
        level = targets[min(max(event.level, 1), len(targets)) - 1]
        return _off(price, level)
    if event.type == "sl_hit":
        return _off(price, stop)
    low, high = (stop, targets[-1]) if long else (targets[-1], stop)
    return price < low * (1 - TOLERANCE) or price > high * (1 + TOLERANCE)


def implausible(signals: Sequence, events: Sequence) -> Flag | None:
    by_id = {s.id: s for s in signals}
    checked = [(by_id[e.signal_id], e) for e in events
               if e.signal_id in by_id and e.type in ("tp_hit", *track_record.CLOSING)]
    bad = [(s, e) for s, e in checked if implausible_price(s, e)]
    if len(bad) < IMPLAUSIBLE_MIN:
        return None
    return Flag(Kind.IMPLAUSIBLE, len(bad), len(checked), _example(bad[0][0]))


def fast(signals: Sequence, events: Sequence) -> Flag | None:
    closed = _closing(signals, events)
    quick = [s for s, e in closed if e.received_at - s.received_at <= FAST_WITHIN]
    if len(quick) < FAST_MIN or Decimal(len(quick)) < FAST_SHARE * len(closed):
        return None
    return Flag(Kind.FAST, len(quick), len(closed), _example(quick[0]))


def run_probability(n: int, run: int, p: float) -> float:
    """The chance of at least `run` successes in a row in `n` independent trials of success probability p."""
    if run <= 0:
        return 1.0
    if run > n:
        return 0.0
    state = [1.0] + [0.0] * (run - 1)  # state[j]: no run yet, the current one is j long
    reached = 0.0
    for _ in range(n):
        total = sum(state)
        reached += p * state[-1]
        state = [(1 - p) * total] + [p * state[j] for j in range(run - 1)]
    return reached


def longest_win_run(wins: Sequence[bool]) -> tuple[int, int]:
    """(length, start index) of the longest run of wins; the first of equal runs."""
    best, best_start, current = 0, 0, 0
    for i, won in enumerate(wins):
        current = current + 1 if won else 0
        if current > best:
            best, best_start = current, i - current + 1
    return best, best_start


def streak(signals: Sequence, events: Sequence) -> Flag | None:
    closed = sorted(((e.received_at, e.id, track_record.trade(s, e.price, e.received_at).ret > 0, s)
                     for s, e in _closing(signals, events)), key=lambda row: row[:2])
    wins = [row[2] for row in closed]
    n = len(wins)
    run, start = longest_win_run(wins)
    if run < STREAK_MIN:
        return None
    p = (sum(wins) - run + 1) / (n - run + 2)
    chance = run_probability(n, run, p)
    if chance >= STREAK_P:
        return None
    return Flag(Kind.STREAK, run, n, _example(closed[start][3]), chance)


def flags(signals: Sequence, events: Sequence) -> list[Flag]:
    """Every flag the record raises, in a fixed order."""
    found = (check(signals, events) for check in (late, implausible, fast, streak))
    return [flag for flag in found if flag is not None]
