"""The web chat in a real headless Chromium against the real bot and the whole sandbox.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); without them these
tests fail with a clear message rather than skip. Selenium drives the browser from a worker thread
while the sandbox and the bot run on the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.runner import running_sandbox

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--window-size=1280,860", "--lang=en-US")
ALICE = 1001  # a demo user the sandbox creates


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        pytest.fail(f"Chromium is not installed (missing {', '.join(missing)}): run "
                    "`apt-get install -y chromium chromium-driver` (.ci/run does it when missing)",
                    pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: `bash scripts/bootstrap requirements-dev.txt`", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


async def until(driver: Any, check: Callable[[Any], Any], timeout: float = 15, what: str = "") -> Any:  # noqa: ASYNC109
    """Run ``check(driver)`` in a worker thread until it returns something truthy."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def wait() -> Any:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(check)
    try:
        return await asyncio.to_thread(wait)
    except TimeoutException:
        shot = Path(tempfile.mkdtemp(prefix="webchat-failure-")) / "page.png"
        await asyncio.to_thread(driver.save_screenshot, str(shot))
        raise AssertionError(f"timed out waiting for {what or check}; screenshot: {shot}") from None


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, selector)


def page_text(driver: Any) -> str:
    """The page's visible text; empty while a navigation has not produced a body yet."""
    body = css(driver, "body")
    return body[0].text if body else ""


def bot_bubbles(driver: Any) -> list[Any]:
    return css(driver, "#messages .msg.in")


def bubble_with(fragment: str) -> Callable[[Any], Any]:
    def check(driver: Any) -> Any:
        found = [m for m in bot_bubbles(driver)  # an invoice or a photo has no text
                 if any(fragment in t.text for t in m.find_elements("css selector", ".text"))]
        return found[-1] if found else None
    return check


async def open_chat(driver: Any, url: str, user_id: int) -> None:
    await asyncio.to_thread(driver.get, url)
    await until(driver, lambda d: "live" in css(d, "#conn")[0].text, what="the live connection")
    item = await until(driver, lambda d: css(d, f'#user-list [data-user-id="{user_id}"]'), what="the user")
    await asyncio.to_thread(item[0].click)
    await until(driver, lambda d: css(d, "#composer-input")[0].is_enabled(), what="the composer")


async def send(driver: Any, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = css(driver, "#composer-input")[0]
    await asyncio.to_thread(box.send_keys, text + Keys.ENTER)


async def test_start_menu_and_help_edit_in_the_browser(tmp_path, capsys):
    started = time.monotonic()
    async with running_sandbox(tmp_path) as sb:
        with chromium() as driver:
            await open_chat(driver, sb.chat_url, ALICE)
            await send(driver, "/start")
            menu = await until(driver, bubble_with("Hi, Alice!"), what="the /start menu")
            menu_id = menu.get_attribute("data-id")
            labels = [b.text for b in css(driver, f'#messages [data-id="{menu_id}"] .kb-btn')]
            assert "❓ Help" in labels and "🤖 AI tokens" in labels
            own = css(driver, "#messages .msg.out .text")
            assert own and own[-1].text == "/start"  # the user's own message, on the right

            help_button = next(b for b in css(driver, f'#messages [data-id="{menu_id}"] .kb-btn')
                               if b.text == "❓ Help")
            await asyncio.to_thread(help_button.click)
            edited = await until(driver, bubble_with("How it works"), what="the help text")
            assert edited.get_attribute("data-id") == menu_id  # the same message, edited in place
            assert len(bot_bubbles(driver)) == 1
            assert "edited" in edited.find_element("css selector", ".meta").text
            assert sb.telegram.last_bot_message(ALICE)["message_id"] == int(menu_id)

            shot = Path(tempfile.mkdtemp(prefix="webchat-")) / "help.png"
            await asyncio.to_thread(driver.save_screenshot, str(shot))
    with capsys.disabled():
        print(f"\nweb chat screenshot: {shot} (browser test took {time.monotonic() - started:.1f} s)")
    assert shot.stat().st_size > 10_000


async def test_hostile_text_and_names_stay_text(tmp_path):
    hostile = "<img src=x onerror=window.__xss=1>"
    async with running_sandbox(tmp_path) as sb:
        with chromium() as driver:
            await asyncio.to_thread(driver.get, sb.chat_url)
            await until(driver, lambda d: "live" in css(d, "#conn")[0].text, what="the live connection")
            # Create the user through the page's own form.
            await asyncio.to_thread(css(driver, "#new-user-box summary")[0].click)
            await asyncio.to_thread(css(driver, '#new-user-form [name="first_name"]')[0].send_keys, hostile)
            await asyncio.to_thread(css(driver, '#new-user-form [name="id"]')[0].send_keys, "4242")
            await asyncio.to_thread(css(driver, "#new-user-form button")[0].click)
            await until(driver, lambda d: css(d, '#user-list [data-user-id="4242"]'), what="the new user")
            assert sb.telegram.users[4242]["first_name"] == hostile

            await send(driver, hostile)  # the user's own message
            await until(driver, lambda d: [m for m in css(d, "#messages .msg.out .text") if m.text == hostile],
                        what="the user's hostile message shown as text")
            await sb.app.bot.send_message(4242, "<b>bold</b> &lt;script&gt;alert(1)&lt;/script&gt; "
                                                '<a href="javascript:alert(1)">click</a>', parse_mode="HTML")
            last = await until(driver, bubble_with("<script>alert(1)</script>"), what="the hostile message")
            assert last.find_element("css selector", ".text b").text == "bold"
            links = last.find_elements("css selector", ".text a")
            assert not links  # javascript: URLs never become links
            assert css(driver, "#user-list .item-name")[-1].text.startswith(hostile)
            assert not css(driver, "#app img:not(.photo)") and not css(driver, "script:not([src])")
            assert await asyncio.to_thread(driver.execute_script, "return window.__xss === undefined")


async def test_invoice_shows_pay_and_the_outcome(tmp_path):
    from aiogram.types import LabeledPrice

    async with running_sandbox(tmp_path, pre_checkout_timeout=2) as sb:
        with chromium() as driver:
            await open_chat(driver, sb.chat_url, ALICE)
            await sb.app.bot.send_invoice(ALICE, title="Sandbox test", description="Not for sale",
                                          payload="browser-test-unknown-order", currency="XTR",
                                          prices=[LabeledPrice(label="Test", amount=7)])
            card = await until(driver, lambda d: css(d, "#messages .invoice"), what="the invoice")
            assert "⭐️ 7" in card[0].text
            pay = css(driver, "#messages .kb-btn.pay")
            assert pay and pay[0].text == "Pay ⭐️ 7"
            await asyncio.to_thread(pay[0].click)
            # The bot knows no such order: it declines, or leaves the query unanswered (timeout).
            title = await until(driver, lambda d: (t := css(d, "#modal-title")[0].text) in (
                "Payment declined", "Payment failed", "Payment") and t != "Payment" and t, timeout=10,
                what="the payment outcome")
            assert css(driver, "#modal-body")[0].text.strip()
            assert not sb.telegram.payments, title


async def click(driver: Any, bubble: Any, label: str) -> None:
    button = next(b for b in bubble.find_elements("css selector", ".kb-btn") if label in b.text)
    await asyncio.to_thread(button.click)


async def test_a_person_buys_ai_tokens_with_stars_in_the_browser(tmp_path, capsys):
    """The issue's promise: in the web chat, buy the Standard package, pay with Stars, receive a working key
    (a cheap model's packages are sized so each has its own price: the label says how many tokens)."""
    started = time.monotonic()
    async with running_sandbox(tmp_path) as sb:
        with chromium() as driver:
            await open_chat(driver, sb.chat_url, ALICE)
            await send(driver, "/tokens")
            await click(driver, await until(driver, bubble_with("Pick a model")), "GPT-4o-mini")
            packages = await until(driver, bubble_with("Choose a package"))
            label = next(b.text for b in packages.find_elements("css selector", ".kb-btn") if "Standard · " in b.text)
            tokens = int(label.split(" · ")[1].split(" ")[0].replace(",", ""))
            await click(driver, packages, "Standard · ")
            await click(driver, await until(driver, bubble_with("Choose how to pay")), "Telegram Stars")
            await click(driver, await until(driver, bubble_with("accept our terms")), "I accept")
            pay = await until(driver, lambda d: css(d, "#messages .kb-btn.pay"), what="the Stars invoice")
            await asyncio.to_thread(pay[-1].click)
            delivery = await until(driver, lambda d: [m for m in bot_bubbles(d) if "AI tokens are ready" in m.text],
                                   timeout=20, what="the key")
            key = next(c.text.replace("\n", "") for c in delivery[-1].find_elements("css selector", "code")
                       if c.text.startswith("sk-or-v1-"))
            shot = Path(tempfile.mkdtemp(prefix="webchat-")) / "purchase.png"
            await asyncio.to_thread(driver.save_screenshot, str(shot))
        assert key.startswith("sk-or-v1-") and sb.openrouter.key_for_secret(key) is not None
        [order] = await sb.app.orders.for_user(ALICE)
        assert order.status == "fulfilled" and order.details["tokens"] == tokens >= 5000
    with capsys.disabled():
        print(f"\nweb chat purchase screenshot: {shot} (took {time.monotonic() - started:.1f} s)")


# ---------------------------------------------------------------------- the operator panel

async def open_operator(driver: Any) -> None:
    await asyncio.to_thread(css(driver, "#operator-toggle")[0].click)
    await until(driver, lambda d: "Ingest is on" in css(d, "#op-ingest")[0].text, what="the operator panel")


def panel_says(fragment: str) -> Callable[[Any], Any]:
    return lambda d: fragment in (text := css(d, "#op-result")[0].text) and text


async def subscribe(sb: Any, driver: Any, user_id: int, name: str) -> None:
    """The user says /start in the page, then has Pro for 30 days (paid plans get signals at once)."""
    await send(driver, "/start")
    await until(driver, bubble_with(name), what="the /start menu")
    await sb.app.subscriptions.add_time(user_id, "pro", 30, source="grant")


async def test_operator_panel_posts_a_signal_and_its_event_to_a_subscriber(tmp_path):
    async with running_sandbox(tmp_path) as sb:  # no secret given: the sandbox turns ingest on itself
        with chromium() as driver:
            await open_chat(driver, sb.chat_url, ALICE)
            await subscribe(sb, driver, ALICE, "Alice")
            await open_operator(driver)
            await asyncio.to_thread(css(driver, "#op-post-signal")[0].click)  # the form's example signal
            await until(driver, panel_says("Signal SOL/USDT posted (202)"), what="the bot's answer")
            signal = await until(driver, bubble_with("Entry: 142.5"), what="the signal in Alice's chat")
            assert "Stop: 136" in signal.text and "150" in signal.text

            target = await until(driver, lambda d: css(d, "#op-signals .op-tp"), what="the event buttons")
            await asyncio.to_thread(target[0].click)
            await until(driver, panel_says("The bot accepted it (202)"), what="the event's answer")
            reply = await until(driver, bubble_with("Take-Profit target 1"), what="the event in Alice's chat")
            assert reply.find_element("css selector", ".quote").text  # a reply to her copy of the signal
            await until(driver, lambda d: "Target 1 hit" in css(d, "#op-signals .item-sub")[0].text,
                        what="the event listed under the signal")


async def test_sample_whale_trades_make_the_board_show_wallets(tmp_path):
    async with running_sandbox(tmp_path) as sb:
        with chromium() as driver:
            await open_chat(driver, sb.chat_url, ALICE)
            await open_operator(driver)
            await asyncio.to_thread(css(driver, "#op-whales")[0].click)
            await until(driver, panel_says("trades of 10 wallets (200)"), what="the batch stored")
            await send(driver, "/whales")
            board = await until(driver, bubble_with("Whale leaderboard"), what="the whale board")
            shown = [label for label in ("Jupiter Degen", "Sol Sniper", "vitalik.eth", "Base Maxi", "Binance 14",
                                         "Bonk Baron", "BNB Whale", "Titan Builder", "Binance 8", "Whale 0x47ac")
                     if label in board.text]
            assert len(shown) == 5, board.text  # Free users see the top 5


async def test_krypto_express_pay_page_opens_from_the_chat(tmp_path):
    async with running_sandbox(tmp_path) as sb:
        with chromium() as driver:
            await open_chat(driver, sb.chat_url, ALICE)
            await send(driver, "/plans")
            await click(driver, await until(driver, bubble_with("Signal plans")), "Basic · month")
            await click(driver, await until(driver, bubble_with("Choose how to pay")), "USDT TRC20 on-chain")
            await click(driver, await until(driver, bubble_with("accept our terms")), "I accept")
            await until(driver, bubble_with("Send exactly"), what="the on-chain invoice")
            await open_operator(driver)
            link = await until(driver, lambda d: css(d, '#op-invoices a[data-provider="kryptoexpress"]'),
                               what="the KryptoExpress pay page link")
            assert link[0].text.startswith("Open the KryptoExpress page · ") and "USDT TRC20" in link[0].text
            chat_window = driver.current_window_handle
            await asyncio.to_thread(link[0].click)
            await until(driver, lambda d: len(d.window_handles) == 2, what="the pay page's window")
            await asyncio.to_thread(driver.switch_to.window,
                                    next(h for h in driver.window_handles if h != chat_window))
            await until(driver, lambda d: "KryptoExpress payment" in d.title, what="the KryptoExpress page")
            pay = next(b for b in css(driver, "button") if b.text.startswith("Pay exact"))
            await asyncio.to_thread(pay.click)
            await until(driver, lambda d: "Paid" in page_text(d), what="the payment")
            await asyncio.to_thread(driver.switch_to.window, chat_window)
            await until(driver, bubble_with("plan active"), timeout=20, what="the plan in the chat")
            await until(driver, lambda d: "No open Crypto Pay or KryptoExpress invoice" in css(
                d, "#op-invoices")[0].text, what="the paid invoice gone from the panel")


# ---------------------------------------------------------------------- the README's tour, in Russian

BORIS = 1002  # the Russian demo user
#: Latin words the Russian page may show: names of products, services, tickers and the sandbox's own data.
NAMES = {"AI", "API", "Admin", "Alice", "Bot", "BTC", "Crypto", "Pay", "CryptoBot", "KryptoExpress", "Sandbox",
         "Channel", "VIP", "private", "Signals", "sandbox_bot", "sandbox_channel", "sandbox_crypto_signals", "SOL",
         "USDT", "TRC20", "USD", "TON", "UTC", "Shop", "Pro", "EN", "RU", "id", "http", "HTTP",
         "SIGNAL_WEBHOOK_SECRET", "Stars", "Telegram"}


def english_words(text: str) -> list[str]:
    """Latin words in ``text`` outside the names above (URLs and /commands left out)."""
    text = re.sub(r"https?://\S+|/\w+", " ", text)
    return [w for w in re.findall(r"[A-Za-z][A-Za-z_]+", text) if w not in NAMES]


async def test_the_tour_in_russian_meets_no_english_in_the_page_and_no_dead_end(tmp_path):
    """README "Sandbox tour" in Russian: plan with Crypto Pay from its pay page, the private channel, a
    signal and its event from the operator panel, whales, and an admin's refund; the page's own words
    stay Russian throughout and English-style decimals stay out of the panel."""
    from bot.middlewares import ThrottleMiddleware

    async with running_sandbox(tmp_path) as sb:
        for middleware in sb.app.dp.callback_query.outer_middleware:  # a test taps faster than a person
            if isinstance(middleware, ThrottleMiddleware):
                middleware.limit = 100
        with chromium() as driver:
            await open_chat(driver, sb.chat_url, BORIS)
            await asyncio.to_thread(css(driver, "#page-lang-ru")[0].click)
            await until(driver, lambda d: css(d, "#conn")[0].text == "на связи", what="the page in Russian")
            await asyncio.to_thread(css(driver, "#operator-toggle")[0].click)
            await until(driver, lambda d: "Приём данных включён" in css(d, "#op-ingest")[0].text, what="the panel")

            def page_words(d: Any) -> list[str]:
                chrome = [e.text for e in css(d, "#sidebar, .chat-header, #operator, .empty")]
                chrome.append(css(d, "#composer-input")[0].get_attribute("placeholder"))
                chrome += [e.get_attribute("value") for e in css(d, "#op-signal-form input[name=entry], "
                                                                    "#op-signal-form input[name=targets]")]
                return english_words("\n".join(chrome))

            assert page_words(driver) == []
            assert css(driver, "#op-signal-form input[name=entry]")[0].get_attribute("value") == "142,5"

            # AI tokens from the main menu, paid with Stars (the terms are accepted once, here).
            await send(driver, "/start")
            await click(driver, await until(driver, bubble_with("Привет, Борис"), what="/start"), "AI-токены")
            await click(driver, await until(driver, bubble_with("Выберите модель")), "GPT-4o-mini")
            await click(driver, await until(driver, bubble_with("Выберите пакет")), "Стандарт")
            await click(driver, await until(driver, bubble_with("Выберите способ оплаты")), "Telegram Stars")
            await click(driver, await until(driver, bubble_with("примите наши условия")), "Принимаю")
            pay = await until(driver, lambda d: css(d, "#messages .kb-btn.pay"), what="the Stars invoice")
            assert pay[-1].text.startswith("Оплатить ⭐️")
            await asyncio.to_thread(pay[-1].click)
            await until(driver, bubble_with("sk-or-v1-"), timeout=20, what="the key")

            # Plans and the private channel, paid on Crypto Pay's own page opened from the panel.
            await send(driver, "/plans")
            await click(driver, await until(driver, bubble_with("Тарифы"), what="/plans"), "Pro · месяц")
            await click(driver, await until(driver, bubble_with("Выберите способ оплаты")), "Crypto Pay")
            link = await until(driver, lambda d: css(d, '#op-invoices a[data-provider="cryptopay"]'),
                               what="the Crypto Pay page in the panel")
            chat_window = driver.current_window_handle
            await asyncio.to_thread(link[0].click)
            await until(driver, lambda d: len(d.window_handles) == 2, what="the pay page's window")
            await asyncio.to_thread(driver.switch_to.window, next(h for h in driver.window_handles if h != chat_window))
            pay_page = await until(driver, lambda d: page_text(d), what="the Crypto Pay page")
            ours = "\n".join(line for line in pay_page.splitlines() if not line.startswith("Описание"))  # the bot's
            assert "Счёт Crypto Pay" in pay_page and english_words(ours) == [], pay_page  # as @CryptoBot would
            await asyncio.to_thread(next(b for b in css(driver, "button") if b.text == "Оплатить").click)
            await until(driver, lambda d: "Оплачено" in page_text(d), what="the Crypto Pay payment")
            await asyncio.to_thread(driver.close)
            await asyncio.to_thread(driver.switch_to.window, chat_window)
            active = await until(driver, bubble_with("Тариф Pro активен"), timeout=20, what="the plan")
            invite = next(a for a in active.find_elements("css selector", ".text a") if "t.me/+" in a.text)
            await asyncio.to_thread(invite.click)
            await until(driver, lambda d: "вступает в канал Sandbox VIP" in css(d, "#toast")[0].text,
                        what="Борис joining the private channel")

            # A signal and its event from the operator panel, as a Russian reader types the prices.
            await asyncio.to_thread(css(driver, "#op-post-signal")[0].click)
            await until(driver, panel_says("Сигнал SOL/USDT опубликован (202)"), what="the signal accepted")
            await until(driver, bubble_with("Entry: 142.5"), what="the signal in Борис's chat")
            await asyncio.to_thread(css(driver, "#op-signals .op-tp")[0].click)
            await until(driver, panel_says("Бот принял (202)"), what="the event accepted")
            await until(driver, bubble_with("🎯 #SOL/USDT"), what="the event in Борис's chat")
            assert "Вход 142,5" in css(driver, "#op-signals .op-signal-title")[0].text

            # Whales: the sample trades fill the board; Борис (Pro) follows a wallet.
            await asyncio.to_thread(css(driver, "#op-whales")[0].click)
            await until(driver, panel_says("кошельков: 10 (200)"), what="the whale trades stored")
            await send(driver, "/whales")
            board = await until(driver, bubble_with("Рейтинг китов"), what="the whale board")
            await click(driver, board, "1. ")
            card = await until(driver, bubble_with("Последние сделки"), what="a wallet's card")
            await click(driver, card, "Следить")
            await click(driver, await until(driver, bubble_with("Уведомлять")), "10")
            await until(driver, bubble_with("Последние сделки"), what="the card again, now followed")
            assert page_words(driver) == []

            # The admin refunds the plan: Борис is told, and @CryptoBot's transfer note is in Russian.
            await asyncio.to_thread(css(driver, ".admin-switch")[0].click)
            await until(driver, lambda d: "1000" in css(d, "#chat-sub")[0].text, what="the admin's chat")
            order = next(o for o in await sb.app.orders.for_user(BORIS) if o.provider == "cryptopay")
            await send(driver, f"/refund {order.id}")
            confirm = await until(driver, lambda d: [b for b in css(d, "#messages .kb-btn") if "Confirm" in b.text],
                                what="the refund's confirmation")
            await asyncio.to_thread(confirm[-1].click)
            await until(driver, bubble_with("refunded"), what="the refund done")
            await asyncio.to_thread(css(driver, f'#user-list [data-user-id="{BORIS}"]')[0].click)
            await until(driver, bubble_with("Возврат по заказу"), what="Борис told of the refund")
            note = await until(driver, lambda d: [m for m in css(d, "#messages .msg .text")
                                                  if "@CryptoBot: вы получили" in m.text], what="the transfer note")
            assert "29,99 USDT" in note[-1].text
            assert page_words(driver) == []
            shown = "\n".join(m["text"] for m in sb.telegram.chat_messages(BORIS, bot_only=True) if "text" in m)
            assert not re.search(r"\d,\d{3}(?!\d)|\$\d", shown), shown  # 1 000 and 9,99 $ in Russian

            # The admin panel answers with its buttons.
            await asyncio.to_thread(css(driver, ".admin-switch")[0].click)
            await send(driver, "/admin")
            panel = await until(driver, lambda d: [m for m in bot_bubbles(d) if m.find_elements(
                "css selector", ".kb-btn") and "📊" in m.text], what="the admin panel")
            assert len(panel[-1].find_elements("css selector", ".kb-btn")) >= 6


async def test_the_api_docs_page_renders_every_operation_offline(tmp_path):
    """/api/v1/docs in Chromium: Swagger UI from our own server (the test network reaches nothing else) renders
    the generated document, every operation listed."""
    async with running_sandbox(tmp_path) as sb:
        base = f"http://127.0.0.1:{sb.app.port}"
        with chromium() as driver:
            await asyncio.to_thread(driver.get, f"{base}/api/v1/docs")
            await until(driver, lambda d: css(d, ".opblock-summary-path"), timeout=20, what="the operations")
            paths = {e.get_attribute("data-path") or e.text for e in css(driver, ".opblock-summary-path")}
            assert {"/api/v1/signals", "/api/v1/whoami", "/api/v1/whales/rankings", "/api/v1/webhook",
                    "/api/v1/datasets"} <= {p.replace("\u200b", "") for p in paths}
            assert "Signals & whales API" in page_text(driver)
            assert "problem-quota-exhausted" in driver.page_source  # the problem types are documented
