"""A signal's close message shows the P/L % from entry to close, for its direction (issue #16)."""

from __future__ import annotations

from decimal import Decimal

from db.models_signals import Signal, SignalEvent
from presentation.signals import pnl_percent, render_event, signed_percent
from services.signals import EventIn, SignalIn
from tests.integration.test_signals import SIGNAL, drain


def closed(signal: Signal, price: str) -> str:
    return render_event(SignalEvent(type="closed", level=0, price=Decimal(price)), signal)


def test_close_message_shows_direction_aware_pnl(i18n_context):
    long = Signal(symbol="SOL/USDT", side="long", entry=Decimal("142.5"))
    short = Signal(symbol="BTC/USDT", side="short", entry=Decimal("90000"))
    assert closed(long, "156.75") == "🏁 #SOL/USDT closed at 156.75 · P/L +10%"
    assert closed(long, "136") == "🏁 #SOL/USDT closed at 136 · P/L -4.56%"  # -4.5614… rounded
    assert closed(short, "85500") == "🏁 #BTC/USDT closed at 85500 · P/L +5%"
    assert closed(short, "90000") == "🏁 #BTC/USDT closed at 90000 · P/L 0%"
    assert pnl_percent(long, Decimal("142.5") * 3) == Decimal(200)  # exact, no float
    assert signed_percent(Decimal("0.005")) == "+0.01%"  # half up


async def test_subscribers_get_the_pnl_on_the_close_reply(harness):
    await harness.users.seen(31, username=None, first_name="U", language_code="en")
    await harness.app.subscriptions.add_time(31, "basic", 30, source="grant")
    await harness.app.signals.ingest(SignalIn(**{**SIGNAL, "id": "pnl-1", "side": "short",
                                                        "take_profits": ["130"], "stop_loss": "150"}))
    await drain(harness)
    await harness.app.signals.add_event("pnl-1", EventIn(type="closed", price="128.25"))
    await drain(harness)
    assert "🏁 #SOL/USDT closed at 128.25 · P/L +10%" in harness.session.texts_to(31)
