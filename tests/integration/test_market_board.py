"""/market ranks providers by score and sorts and filters them with buttons (forged choices do nothing); a
provider card shows verified figures for 30 / 90 days / all time and sends an equity chart; numbers are
written per reader; /providers shows an integrity flag and its reason to the admins."""

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from db.models_signals import Signal, SignalEvent
from services import marketplace_rollups
from tests.conftest import ADMIN_ID
from tests.integration.test_marketplace import approved_provider

ALPHA, BETA, GAMMA, READER = 501, 502, 503, 504


async def seed(h, provider_id: int, outcomes: str, *, ecosystem: str = "crypto", days: int = 40,
               close_after: timedelta = timedelta(hours=3)) -> None:
    """One long signal (entry 100, stop 95, target 110) per letter, spread over the last `days` days: W closes
    at 110 (+10 %), L is stopped at 95 (−5 %); each closes `close_after` it arrived."""
    now = datetime.now(UTC)
    async with h.db.transaction() as session:
        for i, outcome in enumerate(outcomes):
            at = now - timedelta(days=days) + timedelta(days=days - 1) * i / max(len(outcomes) - 1, 1)
            signal = Signal(external_id=f"p{provider_id}:s{i + 1}", source="api", ecosystem=ecosystem,
                            symbol="SOL/USDT", side="long", entry=Decimal(100), take_profits=["110"],
                            stop_loss=Decimal(95), received_at=at, prev_hash=secrets.token_hex(32),
                            hash=secrets.token_hex(32), provider_id=provider_id)
            session.add(signal)
            await session.flush()
            won = outcome == "W"
            session.add(SignalEvent(signal_id=signal.id, type="tp_hit" if won else "sl_hit", level=1 if won else 0,
                                    price=Decimal(110 if won else 95), received_at=at + close_after,
                                    prev_hash=secrets.token_hex(32), hash=secrets.token_hex(32),
                                    provider_id=provider_id))
        await marketplace_rollups.mark_stale(session, [provider_id])  # written around the services: recomputed


def last_markup(h):
    sent = [c.method for c in h.session.calls
            if c.name in ("SendMessage", "EditMessageText") and c.method.reply_markup is not None]
    return [(b.text, b.callback_data) for row in sent[-1].reply_markup.inline_keyboard for b in row]


def last_text(h, chat_id):
    return h.session.texts_to(chat_id)[-1]


async def test_market_ranks_sorts_and_filters_and_the_card_has_verified_figures(harness):
    h = harness
    alpha = await approved_provider(h, ALPHA, "Alpha", price_cents=4900)
    beta = await approved_provider(h, BETA, "Beta", price_cents=900)
    gamma = await approved_provider(h, GAMMA, "Gamma", price_cents=1500)
    await seed(h, alpha, "WWLWWWLWWWWLWWWLWWWW")  # 16 of 20 won
    await seed(h, beta, "WLLWLWLLWLWLLWLWLWLL")  # 8 of 20 won
    await seed(h, gamma, "WWL", ecosystem="forex", days=10)  # too few to be ranked
    reader = h.user(READER)
    await h.send(reader, "/market")
    board = last_text(h, READER)
    assert board.index("1. <b>Alpha</b> · score") < board.index("2. <b>Beta</b> · score") \
        < board.index("3. <b>Gamma</b> · score new")
    assert "win rate 80.0% · max drawdown" in board and "$49.00/mo · 0 subscribers" in board
    labels = dict(last_markup(h))
    assert labels["↕️ Sort: score"] == "mkl:1::0:0:0:0" and labels["🌐 Market: all"] == "mkl:0:crypto:0:0:0:0"

    await h.press(reader, labels["↕️ Sort: score"])  # sorted by price: cheapest first
    board = last_text(h, READER)
    assert board.index("<b>Beta</b>") < board.index("<b>Gamma</b>") < board.index("<b>Alpha</b>")
    await h.press(reader, "mkl:0:forex:0:0:0:0")
    assert "1. <b>Gamma</b>" in last_text(h, READER) and "Alpha" not in last_text(h, READER)
    await h.press(reader, "mkl:0::2:0:0:0")  # up to $25
    assert "Alpha" not in last_text(h, READER) and "<b>Beta</b>" in last_text(h, READER)
    await h.press(reader, "mkl:0::0:2:0:0")  # win rate 60 % or more
    assert "1. <b>Alpha</b>" in last_text(h, READER) and "Beta" not in last_text(h, READER)
    await h.press(reader, "mkl:3::0:0:0:0")  # sorted by drawdown: Alpha and Gamma 4.2 % (the better score first)
    board = last_text(h, READER)
    assert board.index("1. <b>Alpha</b>") < board.index("2. <b>Gamma</b>") < board.index("3. <b>Beta</b>")
    assert "max drawdown 9.1%" in board
    await h.press(reader, "mkl:0::1:3:0:0")  # up to $10 and a win rate of 70 % or more: nobody
    assert "No provider matches these filters." in last_text(h, READER)
    edits = len(h.session.of("EditMessageText"))
    await h.press(reader, "mkl:7::0:0:0:0")  # forged: no such sort
    await h.press(reader, "mkl:0:UPPER case:0:0:0:0")  # forged: not a market's name
    assert len(h.session.of("EditMessageText")) == edits

    await h.press(reader, f"mkt:{alpha}")
    card = last_text(h, READER)
    for part in ("📊 <b>Verified figures</b>", "<b>30 days</b>:", "<b>90 days</b>:", "<b>All time</b>: 20 closed "
                 "signals · win rate 80.0%", "return +140.0%", "signals a week", "active days", "Score: <b>"):
        assert part in card, part
    assert "Verified since" in card and "0 subscribers" in card
    assert ("📈 Equity chart", f"mkc:{alpha}") in last_markup(h)
    await h.press(reader, f"mkc:{alpha}")
    photo = h.session.of("SendPhoto")[-1]
    assert photo.chat_id == READER and photo.caption == "📈 Alpha: equity curve (all time)"
    await h.press(reader, f"mkt:{gamma}")
    assert "Not ranked yet: fewer than 20 closed signals." in last_text(h, READER)


async def test_figures_read_in_russian(harness):
    h = harness
    alpha = await approved_provider(h, ALPHA, "Alpha")
    await seed(h, alpha, "WWLWWWLWWWWLWWWLWWWW")
    russian = h.user(READER, language_code="ru")
    await h.send(russian, "/market")
    board = last_text(h, READER)
    assert "1. <b>Alpha</b> · рейтинг" in board and "прибыльных 80,0\xa0%" in board and "25,00\xa0$/мес" in board
    await h.press(russian, f"mkt:{alpha}")
    card = last_text(h, READER)
    assert "📊 <b>Проверенные показатели</b>" in card and "<b>Всё время</b>: 20 закрытых сигналов" in card
    assert "доходность +140,0\xa0%" in card and "Рейтинг: <b>" in card


async def test_providers_shows_an_integrity_flag_and_its_reason(harness):
    h = harness
    honest = await approved_provider(h, ALPHA, "Alpha")
    quick = await approved_provider(h, BETA, "Quick")
    await seed(h, honest, "WLWWLWLWWL")
    await seed(h, quick, "WLWWLWLWWL", close_after=timedelta(seconds=5))
    admin = h.user(ADMIN_ID)
    await h.send(admin, "/providers")
    labels = [text for text, _data in last_markup(h)]
    assert "✅ Quick · $25.00 ⚠️" in labels and "✅ Alpha · $25.00" in labels
    await h.press(admin, f"apv:{quick}")
    assert ("⚠️ Quick round trips: 10 of 10 closed signals were closed within 60 s of arriving (first: signal s1)."
            in last_text(h, ADMIN_ID))
    await h.press(admin, f"apv:{honest}")
    assert "⚠️" not in last_text(h, ADMIN_ID)


async def test_the_board_is_kept_until_the_refresh_and_a_review_shows_at_once(harness):
    h = harness
    alpha = await approved_provider(h, ALPHA, "Alpha")
    reader = h.user(READER)
    await h.send(reader, "/market")
    assert "1. <b>Alpha</b> · score new" in last_text(h, READER) and "no closed signals yet" in last_text(h, READER)
    await seed(h, alpha, "WWLWWWLWWWWLWWWLWWWW")
    await h.send(reader, "/market")
    assert "no closed signals yet" in last_text(h, READER)  # the board computed a moment ago is served
    assert await h.app.market_board.refresh()  # the scheduler's job
    await h.send(reader, "/market")
    assert "win rate 80.0%" in last_text(h, READER)
    await approved_provider(h, BETA, "Beta")  # a review changes the line-up at once
    await h.send(reader, "/market")
    assert "2. <b>Beta</b>" in last_text(h, READER)
