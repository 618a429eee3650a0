"""Track-record figures on a small hand-computed set, and the hash chain catching edits."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from services import track_record
from services.charts import equity_chart
from services.signals import InvalidInput, SignalIn, parse_command, validate

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def sig(sid, side="long", entry="100", stop="95", tps=("110", "120"), eco="crypto", at=T0):
    return SimpleNamespace(id=sid, external_id=f"s{sid}", ecosystem=eco, symbol="SOL/USDT", side=side,
                           entry=Decimal(entry), stop_loss=Decimal(stop), take_profits=list(tps), timeframe=None,
                           note=None, received_at=at)


def ev(eid, sid, type_, price, level=0, at=T0):
    return SimpleNamespace(id=eid, signal_id=sid, type=type_, level=level, price=Decimal(price), received_at=at)


def test_hand_computed_figures():
    # three longs, entry 100, stop 95: closed at 110 (+10 %, 2R), stopped at 95 (−5 %, −1R), closed at 102 (+2 %, 0.4R)
    trades = [
        track_record.outcome(sig(1), [ev(1, 1, "tp_hit", "110", level=1, at=T0), ev(2, 1, "closed", "110", at=T0)]),
        track_record.outcome(sig(2), [ev(3, 2, "sl_hit", "95", at=T0 + timedelta(days=1))]),
        track_record.outcome(sig(3), [ev(4, 3, "closed", "102", at=T0 + timedelta(days=2))]),
    ]
    f = track_record.figures(trades)
    assert f.trades == 3 and f.wins == 2
    assert f.win_rate == Decimal(2) / 3
    assert f.avg_r == (Decimal(2) - 1 + Decimal("0.4")) / 3
    assert f.cumulative_return == Decimal("0.07")
    assert f.equity == (1, Decimal("1.10"), Decimal("1.05"), Decimal("1.07"))
    assert f.max_drawdown == Decimal("0.05") / Decimal("1.10")  # 4.55 % from the 1.10 peak
    assert round(f.sharpe, 4) == Decimal("0.3109")  # mean 0.02333 / sample sd 0.07506


def test_short_last_target_closes_and_open_signals_do_not_count():
    short = sig(1, side="short", entry="100", stop="110", tps=("95", "90"))
    assert track_record.outcome(short, [ev(1, 1, "tp_hit", "95", level=1)]) is None  # not the last target
    trade = track_record.outcome(short, [ev(1, 1, "tp_hit", "95", level=1), ev(2, 1, "tp_hit", "90", level=2)])
    assert trade.ret == Decimal("0.1") and trade.r_multiple == Decimal(1)
    single = track_record.figures([trade])
    assert single.sharpe is None and single.max_drawdown == 0


def test_periods_select_by_closing_time():
    now = T0 + timedelta(days=40)
    old = track_record.outcome(sig(1), [ev(1, 1, "closed", "110", at=T0)])
    recent = track_record.outcome(sig(2, eco="forex"), [ev(2, 2, "sl_hit", "95", at=now - timedelta(days=3))])
    everything = track_record.by_period([old, recent], now)
    assert (everything["7d"].trades, everything["30d"].trades, everything["all"].trades) == (1, 1, 2)
    assert track_record.by_period([old, recent], now, "crypto")["7d"].trades == 0


def chain(n=3):
    prev, signals = track_record.GENESIS, []
    for i in range(1, n + 1):
        row = sig(i, at=T0 + timedelta(minutes=i))
        row.prev_hash = prev
        row.hash = track_record.hash_of_signal(row)
        prev = row.hash
        signals.append(row)
    return signals


def test_chain_verifies_and_any_edit_breaks_it():
    signals = chain()
    check = track_record.verify_chain(signals, [])
    assert check.ok and check.head == signals[-1].hash and check.length == 3
    signals[1].stop_loss = Decimal("94")
    assert track_record.verify_chain(signals, []).broken_at == "signal s2"
    signals = chain()
    signals[0].received_at += timedelta(seconds=1)  # backdating is an edit too
    assert not track_record.verify_chain(signals, []).ok
    signals = chain()
    assert track_record.verify_chain([signals[0], signals[2]], []).broken_at == "signal s3"  # a deleted row


def test_event_chain_catches_an_edited_price():
    signals = chain(1)
    event = ev(1, 1, "closed", "110")
    event.prev_hash = track_record.GENESIS
    event.hash = track_record.event_hash(track_record.GENESIS, signal_hash_=signals[0].hash, type_="closed",
                                         level=0, price=event.price, received_at=event.received_at)
    assert track_record.verify_chain(signals, [event]).ok
    event.price = Decimal("130")
    assert track_record.verify_chain(signals, [event]).broken_at == "event 1"


def test_an_events_claimed_time_is_hashed_only_when_given():
    """Events stored before claimed times existed keep their hash (a value the earlier code computed)."""
    fields = dict(signal_hash_="ab" * 32, type_="closed", level=0, price=Decimal("104.5"),
                  received_at=datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    old = "279491c6da11c5ebe00bd971570a1f1dd642725d8285c172e6e2283351a78b23"
    assert track_record.event_hash(track_record.GENESIS, **fields) == old
    assert track_record.event_hash(track_record.GENESIS, **fields, claimed_at=None) == old
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert track_record.event_hash(track_record.GENESIS, **fields, claimed_at=at) != old


def test_equity_chart_is_a_png():
    assert equity_chart({"All": [Decimal(1), Decimal("1.1")]}, "t").startswith(b"\x89PNG")


@pytest.mark.parametrize(("change", "field"), [
    ({"entry": "1e3"}, "entry"), ({"entry": "-5"}, "entry"), ({"side": "up"}, "side"),
    ({"take_profits": []}, "take_profits"), ({"symbol": "SOL USDT!"}, "symbol"), ({"extra": 1}, "extra"),
    ({"take_profits": ["130"]}, "take_profits"), ({"timeframe": "soon"}, "timeframe"),
])
def test_validation_names_the_field(change, field):
    payload = {"id": "x", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "short", "entry": "120",
               "take_profits": ["110"], "stop_loss": "125", **change}
    with pytest.raises(InvalidInput) as caught:
        validate(SignalIn, payload)
    assert caught.value.field == field


def test_prices_are_exact_and_the_admin_line_parses():
    data = parse_command("Crypto sol-usdt LONG 0.000123 0.00015,0.00013 0.0001 15m quick one", external_id="a")
    assert data.symbol == "SOL/USDT" and data.entry == Decimal("0.000123")
    assert data.take_profits == [Decimal("0.00013"), Decimal("0.00015")]  # sorted in the trade's direction
    assert data.timeframe == "15m" and data.note == "quick one"
    with pytest.raises(InvalidInput) as caught:
        parse_command("crypto SOL/USDT long 1", external_id="b")
    assert caught.value.field == "take_profits"
