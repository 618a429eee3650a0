"""Russian reads natural (issue #16): every user and admin screen, driven through the real app by a
Russian-speaking user and a Russian-speaking admin, shows no English words (outside product names, tickers,
commands and a few terms Russian traders write in Latin) and no English-style numbers ("25,000", "$9.99")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendInvoice, SendMessage, SendPhoto

from bot.commands import all_commands
from handlers.user.plans import PlanBuy
from presentation.formatting import (
    amount_text,
    compact,
    date_text,
    datetime_text,
    money_text,
    month_day,
    number,
    order_title,
    percent,
    usd,
    weekday_names,
)
from services.signals import EventIn, SignalIn
from tests.conftest import ADMIN_ID, make_settings
from tests.support.harness import Harness
from tests.support.russian import problems

IVAN = 701


def shown_texts(h: Harness) -> list[str]:
    """Every text the bot put in front of a reader: messages, edits, alerts, captions, buttons, invoices."""
    texts = []
    for call in h.session.calls:
        method = call.method
        if isinstance(method, SendMessage | EditMessageText):
            # a channel post's draft is in the channel's language: only the admin's header above it counts
            texts.append(method.text.split("\n\n")[0] if method.text.startswith("📝") else method.text)
        elif isinstance(method, AnswerCallbackQuery) and method.text:
            texts.append(method.text)
        elif isinstance(method, SendPhoto) and method.caption:
            texts.append(method.caption)
        elif isinstance(method, SendInvoice):
            texts += [method.title, method.description]
        markup = getattr(method, "reply_markup", None)
        for row in getattr(markup, "inline_keyboard", None) or []:
            texts += [button.text for button in row]
    return texts


def buttons(h: Harness) -> list[str]:
    """The callback data of every button shown so far, in order, without repeats."""
    seen: dict[str, None] = {}
    for call in h.session.calls:
        markup = getattr(call.method, "reply_markup", None)
        for row in getattr(markup, "inline_keyboard", None) or []:
            for button in row:
                if button.callback_data:
                    seen.setdefault(button.callback_data, None)
    return list(seen)


@pytest.fixture
async def harness(database_url):
    """The app with a Russian operator's channel topics (the operator writes them in the channel's language)."""
    h = await Harness(make_settings(database_url=database_url, telegram_content_topics=["импульс", "риски"])).start()
    yield h
    await h.close()


async def seed(h: Harness) -> None:
    """Something on every screen: whale trades, a closed signal with its events, a paid plan."""
    ts = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    await h.app.whales.ingest([
        {"id": f"ru-{k}-{i}", "wallet": f"Whale{k:02d}AddressLongEnough{k:02d}xyz", "chain": "solana",
         "symbol": "SOL", "side": "sell", "usd_value": "12500", "pnl_usd": str(k * 1234), "ts": ts}
        for k in range(1, 4) for i in range(3)])
    for n, side, targets, stop in ((1, "long", ["1500", "1580"], "1360"), (2, "short", ["1400"], "1480")):
        await h.app.signals.ingest(SignalIn(
            id=f"ru-sig-{n}", ecosystem="crypto", symbol="SOL/USDT", side=side, entry="1425.5",
            take_profits=targets, stop_loss=stop, timeframe="4h"))
        await h.app.signals.add_event(f"ru-sig-{n}", EventIn(type="closed", price="1490.25"))
    await h.users.seen(IVAN, username="ivan", first_name="Иван", language_code="ru")
    await h.app.subscriptions.add_time(IVAN, "pro", 30, source="grant")


async def tour(h: Harness, who: int, commands: list[str], depth: int = 3) -> list[str]:
    """Send each command, then tap every button shown (and the buttons those showed, `depth` levels deep),
    and return what was shown."""
    user = h.user(who, first_name="Иван", language_code="ru")
    for command in commands:
        await h.send(user, command)
    pressed: set[str] = set()
    for _level in range(depth):
        for data in buttons(h):
            if data in pressed or data.startswith("lang:"):
                continue  # switching to English is not a Russian screen
            pressed.add(data)
            await h.press(user, data)
            await h.send(user, "/cancel")
    return shown_texts(h)


async def test_every_user_screen_reads_russian(harness):
    await seed(harness)
    commands = [f"/{c.name}" for c in all_commands(harness.app.services.products.commands) if not c.admin]
    texts = await tour(harness, IVAN, commands)
    for plan, period in (("pro", "month"), ("basic", "year")):
        await harness.press(harness.user(IVAN, language_code="ru"), PlanBuy(plan=plan, period=period).pack())
    await harness.send(harness.user(IVAN, language_code="ru"), "/orders")
    texts = shown_texts(harness)
    assert len(texts) > 40 and any("Иван" in t for t in texts)
    found = {t[:80]: p for t in texts if (p := problems(t))}
    assert not found, "English left in Russian screens:\n" + "\n".join(f"{k!r}: {v}" for k, v in found.items())


async def test_every_admin_screen_reads_russian(harness):
    await seed(harness)
    await harness.users.seen(ADMIN_ID, username="boss", first_name="Пётр", language_code="ru")
    commands = [f"/{c.name}" for c in all_commands() if c.admin and not c.name.startswith("refund_done")]
    commands += [f"/user {IVAN}", f"/orders {IVAN}", "/refund 1",
                 "/signal crypto SOL/USDT short 100 90 95", "/signal crypto SOL/USDT long 1,5 2 1",
                 "/whale_set solana nowallet label=Кит"]
    texts = await tour(harness, ADMIN_ID, commands)
    assert len(texts) > 30
    found = {t[:80]: p for t in texts if (p := problems(t))}
    assert not found, "English left in Russian admin screens:\n" + "\n".join(f"{k!r}: {v}" for k, v in found.items())


def test_the_checker_catches_english(i18n_context):
    assert problems("Pro plan · 1 month") == ["plan", "month"]
    assert problems("25,000 токенов") == ["number '25,000'"] and problems("цена 142.5")
    assert problems("Итого $9.99") and problems("доходность 12.50%")
    assert problems("<b>Тариф Pro</b> · /plans · <code>abc</code> · #SOL/USDT · 1\u00a0234,50\u00a0$") == []


def test_formatting_in_russian_and_english():
    from bot.i18n import build_i18n

    i18n = build_i18n()
    at = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
    nbsp = lambda s: s.replace("\u202f", " ").replace("\u00a0", " ")  # noqa: E731 (either no-break space)
    with i18n.context(), i18n.use_locale("ru"):
        assert nbsp(number(25000)) == "25 000" and nbsp(usd(999)) == "9,99 $"
        assert nbsp(usd(-123450)) == "-1 234,50 $" and nbsp(money_text(Decimal("0.075"))) == "0,075 $"
        assert nbsp(percent(Decimal("0.125"))) == "12,5 %" and nbsp(compact(1_000_000)) == "1 млн"
        assert date_text(at) == "03.12.2026" and datetime_text(at, UTC) == "03.12.2026 14:05"
        assert month_day(at) == "03 дек." and weekday_names()[:2] == ["пн", "вт"]
        assert amount_text(Decimal("12.5"), "USDT") == "12,5 USDT"
    with i18n.context(), i18n.use_locale("en"):
        assert number(25000) == "25,000" and usd(999) == "$9.99" and usd(-123450) == "-$1,234.50"
        assert money_text(Decimal("0.075")) == "$0.075" and percent(Decimal("0.125")) == "12.5%"
        assert compact(1_000_000) == "1M" and date_text(at) == "2026-12-03" and month_day(at) == "03 Dec"
    assert usd(999, locale="ru").endswith("$") and usd(999) == "$9.99"  # outside a handler: English


def test_order_titles_follow_the_reader(i18n_context):
    from bot.i18n import build_i18n
    from db.models import Order

    plan = Order(product="plan", title="Pro plan · 1 month", details={"plan": "pro", "period": "month"})
    tokens = Order(product="ai_tokens", title="25,000 tokens · GPT-4o", details={"tokens": 25000})
    assert order_title(plan) == "Pro plan · 1 month" and order_title(tokens) == "25,000 tokens · GPT-4o"
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("ru"):
        assert order_title(plan) == "Тариф Pro · 1 месяц"
        assert order_title(tokens).replace("\u00a0", " ") == "25 000 токенов · GPT-4o"
        credit = Order(product="api_credit", title="API credit · $5.00", details={"credit_usd": "5"})
        assert order_title(credit).replace("\u00a0", " ") == "Баланс API · 5,00 $"


async def test_a_worker_message_is_formatted_for_each_recipient(harness):
    """Workers compute an amount once (`later`) and the Notifier renders it in each recipient's language."""
    from presentation.formatting import later

    await harness.users.seen(IVAN, username=None, first_name="Иван", language_code="ru")
    await harness.users.seen(702, username=None, first_name="Ann", language_code="en")
    amount, due = later(amount_text, Decimal("1234.5"), "USDT"), later(usd, 123456)
    for user_id in (IVAN, 702):
        await harness.app.services.notifier.send(user_id, lambda: f"{amount} · {due}")
    ru, en = [m.text for m in harness.session.of("SendMessage")[-2:]]
    assert ru.replace("\u00a0", " ") == "1234,5 USDT · 1 234,56 $" and en == "1234.5 USDT · $1,234.56"


async def test_a_provider_publishes_and_reports_by_the_form_in_russian(harness):
    """/signal read in Russian: decimal commas typed and shown, a refused answer, the preview, a target and a
    close; no English left."""
    from handlers.user.provider_signals import SignalDo
    from services.marketplace import Application, Review

    h, user = harness, harness.user(IVAN, first_name="Иван", language_code="ru")
    await h.users.seen(IVAN, username="ivan", first_name="Иван", language_code="ru")
    provider = await h.app.marketplace.apply(IVAN, Application(
        name="Иван", description="Свинг-сделки по SOL", ecosystems=("crypto",), price_cents=1999,
        payout_method="telegram"))
    await h.app.marketplace.review(provider.id, Review.APPROVE, ADMIN_ID)

    def pressed(label: str) -> str:
        for call in reversed(h.session.calls):
            rows = getattr(getattr(call.method, "reply_markup", None), "inline_keyboard", None)
            if rows:
                return next(b.callback_data for row in rows for b in row if label in b.text)
        raise AssertionError(label)

    await h.send(user, "/provider")
    await h.press(user, pressed("Опубликовать сигнал"))
    await h.press(user, SignalDo(do="new").pack())
    await h.press(user, pressed("crypto"))
    await h.send(user, "sol/usdt")
    await h.press(user, pressed("Лонг"))
    await h.send(user, "сто")
    assert "❌" in h.session.texts_to(IVAN)[-1]
    for answer in ("142,5", "150 158,5", "136"):
        await h.send(user, answer)
    await h.press(user, SignalDo(do="tf", arg="4h").pack())
    await h.send(user, "пробой уровня")
    preview = h.session.texts_to(IVAN)[-1]
    assert "142,5" in preview and "150 · 158,5" in preview and "4 ч" in preview
    await h.press(user, pressed("Опубликовать"))
    await h.send(user, "/signal")
    await h.press(user, pressed("SOL/USDT"))
    await h.press(user, pressed("Цель 1"))
    await h.press(user, pressed("Подтвердить"))
    await h.send(user, "/signal")
    await h.press(user, pressed("SOL/USDT"))
    await h.press(user, pressed("Закрыть"))
    await h.send(user, "147,2")
    assert "147,2" in h.session.texts_to(IVAN)[-1]
    await h.press(user, pressed("Подтвердить"))
    _signals, events = await h.app.signals.history(provider.id)
    assert [(e.type, str(e.price)) for e in events] == [("tp_hit", "150"), ("closed", "147.2")]
    found = {t[:80]: p for t in shown_texts(h) if (p := problems(t))}
    assert not found, "English left in the Russian /signal form:\n" + "\n".join(f"{k!r}: {v}" for k, v in found.items())
