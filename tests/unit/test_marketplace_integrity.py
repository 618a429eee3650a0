"""Integrity flags on a provider's record: each flag raised by the record it is for, and not by an honest
one just under its threshold."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from services import marketplace_integrity as integrity
from services.marketplace_integrity import Kind

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def sig(sid: int, at: datetime, side: str = "long"):
    entry, stop, tps = ("100", "95", ["110", "120"]) if side == "long" else ("100", "105", ["90", "80"])
    return SimpleNamespace(id=sid, external_id=f"p1:s{sid}", ecosystem="crypto", symbol="SOL/USDT", side=side,
                           entry=Decimal(entry), stop_loss=Decimal(stop), take_profits=tps, received_at=at)


def ev(eid: int, sid: int, type_: str, price: str, at: datetime, level: int = 0, claimed_at=None):
    return SimpleNamespace(id=eid, signal_id=sid, type=type_, level=level, price=Decimal(price), received_at=at,
                           claimed_at=claimed_at)


def record(outcomes: str, after: timedelta = timedelta(hours=1)):
    """One long signal per letter, an hour apart: W closes at 105 (a win), L is stopped at 95; each closes
    `after` it arrived."""
    signals, events = [], []
    for i, outcome in enumerate(outcomes):
        opened = T0 + timedelta(hours=2 * i)
        signals.append(sig(i + 1, opened))
        events.append(ev(i + 1, i + 1, "closed", "105", opened + after) if outcome == "W"
                      else ev(i + 1, i + 1, "sl_hit", "95", opened + after))
    return signals, events


def kinds(signals, events) -> list[Kind]:
    return [flag.kind for flag in integrity.flags(signals, events)]


def test_an_honest_record_raises_nothing():
    assert kinds(*record("WLWWLWLLWWLWWLWLWLLW")) == []


def test_events_arriving_long_after_the_price_they_claim():
    signals, events = record("WLWWLW")
    for event in events[:3]:
        event.claimed_at = event.received_at - timedelta(minutes=40)
    flag = integrity.late(signals, events)
    assert flag is not None and (flag.count, flag.of, flag.example) == (3, 3, "s1")
    events[2].claimed_at = events[2].received_at - timedelta(minutes=4)  # within 5 minutes: on time
    assert integrity.late(signals, events) is None


def test_closing_prices_that_do_not_fit_the_signal():
    signals = [sig(1, T0), sig(2, T0), sig(3, T0), sig(4, T0, side="short")]
    later = T0 + timedelta(hours=3)
    fitting = [ev(1, 1, "tp_hit", "111", later, level=1),  # 1 % from the first target: slippage
               ev(2, 1, "closed", "104", later),
               ev(3, 2, "sl_hit", "94", later),
               ev(4, 4, "tp_hit", "89", later, level=1)]
    assert integrity.implausible(signals, fitting) is None
    beyond_target = ev(5, 3, "closed", "130", later)  # the last target, 120, would have closed it first
    better_than_stop = ev(6, 4, "sl_hit", "99", later)  # a short stopped at 99 with its stop at 105
    assert integrity.implausible_price(signals[2], beyond_target)
    assert integrity.implausible_price(signals[3], better_than_stop)
    assert integrity.implausible(signals, [*fitting, beyond_target]) is None  # one: under the threshold
    flag = integrity.implausible(signals, [*fitting, beyond_target, better_than_stop])
    assert flag is not None and (flag.count, flag.of, flag.example) == (2, 6, "s3")


def test_many_signals_posted_and_closed_within_seconds():
    signals, events = record("WLWWLWLWWLWLWLWWLWLW")
    for event in events[:5]:
        event.received_at = signals[event.signal_id - 1].received_at + timedelta(seconds=8)
    flag = integrity.fast(signals, events)
    assert flag is not None and (flag.count, flag.of) == (5, 20)
    events[4].received_at += timedelta(minutes=5)  # four quick ones: not many
    assert integrity.fast(signals, events) is None
    more_signals, more_events = record("WL" * 30)  # five quick ones among 60 closed: under 10 %
    for event in more_events[:5]:
        event.received_at = more_signals[event.signal_id - 1].received_at + timedelta(seconds=8)
    assert integrity.fast(more_signals, more_events) is None


def test_run_probability_by_hand():
    assert integrity.run_probability(3, 2, 0.5) == 0.375  # HHH, HHT, THH of 8
    assert integrity.run_probability(4, 4, 0.5) == 0.0625
    assert integrity.run_probability(3, 4, 0.9) == 0.0


def test_improbable_win_streaks():
    layout = "WL" * 7 + "L{}L" + "LW" * 6
    twelve = record(layout.format("W" * 12))  # p outside = (13 + 1) / (28 + 2): a run of 12 has ~0.2 %
    assert integrity.longest_win_run([o == "W" for o in layout.format("W" * 12)]) == (12, 15)
    assert integrity.streak(*twelve) is None
    sixteen = record(layout.format("W" * 16))
    flag = integrity.streak(*sixteen)
    assert flag is not None and flag.kind is Kind.STREAK and flag.count == 16 and flag.of == 44
    assert flag.probability < 0.001 and flag.example == "s16"
    perfect = integrity.streak(*record("W" * 30))  # every signal a win: p = ½ outside an empty rest
    assert perfect is not None and perfect.probability == 0.5 ** 30
