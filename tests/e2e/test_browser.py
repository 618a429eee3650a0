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
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.runner import SANDBOX_CHANNEL_ID, running_sandbox
from tests.support.russian import problems

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
    await asyncio.to_thread(driver.execute_script, "arguments[0].scrollIntoView({block: 'center'})", button)
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
ADMIN = 1000  # the sandbox admin
#: Latin words the Russian page may show: names of products, services, tickers and the sandbox's own data.
NAMES = {"AI", "API", "Admin", "Alice", "Bot", "BTC", "Crypto", "Pay", "CryptoBot", "KryptoExpress", "Sandbox",
         "Channel", "VIP", "private", "Signals", "sandbox_bot", "sandbox_channel", "sandbox_crypto_signals", "SOL",
         "USDT", "TRC20", "TRC", "USD", "TON", "UTC", "Shop", "Pro", "EN", "RU", "id", "http", "HTTP",
         "SIGNAL_WEBHOOK_SECRET", "Stars", "Telegram"}


def english_words(text: str) -> list[str]:
    """Latin words in ``text`` outside the names above (URLs and /commands left out)."""
    text = re.sub(r"https?://\S+|/\w+", " ", text)
    return [w for w in re.findall(r"[A-Za-z][A-Za-z_]+", text) if w not in NAMES]


# What the bot says to the Russian user and the Russian admin is checked with tests/support/russian.py (its
# ALLOWED: product, plan and provider names, tickers, units, commands, code). On top of it, the tour allows:
#: - the Cornix signal block, a format parsers read and so English in every language ("#SOL/USDT Long",
#:   "Entry: 142.5", "Take-Profit Targets:", "1) 150", "Stop: 136": README "Signals"), line by line;
CORNIX_LINE = re.compile(r"^(<b>#\S+</b> (Long|Short)|Entry: [\d.]+|Take-Profit Targets:|\d+\) [\d.]+|Stop: [\d.]+)$",
                         re.M)
#: - a timeframe as the operator sent it ("4h"), and recorded data: the audit log's JSON (one line each);
TIMEFRAME = re.compile(r"\b\d+[mhdw]\b")
RECORDED = re.compile(r"\{.*\}")
#: - the sandbox's own data: the names its users, channels, AI models (OpenRouter's names) and sample whales
#:   have, the chains and tickers of the sample trades, the operator's channel post topics (TELEGRAM_CONTENT_TOPICS,
#:   in the channel's language) (see :func:`sandbox_names`).
SANDBOX_WORDS = {"Admin", "Sandbox", "Channel", "VIP", "private", "Signals", "Crypto", "base", "bsc", "BNB"}


def sandbox_names(sb: Any) -> tuple[list[str], set[str]]:
    """The sandbox data's names (longest first, cut out whole) and the words allowed alone: chains, tickers and
    the models' (a title cut short keeps part of a model's name)."""
    from sandbox.operator_panel import SYMBOLS, WHALES

    names = [m["name"] for m in sb.openrouter.models] + [label for _a, _c, label, _s in WHALES]
    names += ["Sandbox VIP (private)", "Sandbox Crypto Signals", "Sandbox Channel"]
    names += [f"«{topic}»" for topic in sb.settings.telegram_content_topics]  # written in the channel's language
    words = set(SANDBOX_WORDS) | {chain for _a, chain, _l, _s in WHALES}
    words |= {s for symbols in SYMBOLS.values() for s in symbols}
    words |= {w for m in sb.openrouter.models for w in re.findall(r"[A-Za-z][A-Za-z0-9_\-]*", m["name"])}
    return sorted(names, key=len, reverse=True), words


def bot_texts(sb: Any, chats: set[int]) -> list[str]:
    """Every text the bot put in front of ``chats``: messages, edits, captions, invoices, buttons, the answers
    to taps and to pre-checkout queries (every tap and payment in the tour is by a Russian reader) and the
    command menus set for them or for Russian."""
    shown = {"sendmessage": ("text",), "editmessagetext": ("text",), "sendphoto": ("caption",),
             "senddocument": ("caption",), "editmessagecaption": ("caption",), "sendinvoice": ("title", "description")}
    texts: list[str] = []
    for call in sb.telegram.calls:
        name, p = call.method.lower(), call.params
        if name == "answercallbackquery" and p.get("text"):
            texts.append(p["text"])
        elif name == "answerprecheckoutquery" and p.get("error_message"):
            texts.append(p["error_message"])
        elif name == "setmycommands" and p.get("language_code") == "ru":  # what a Russian client's ☰ shows
            texts += [c["description"] for c in p["commands"]]
        elif name in shown and str(p.get("chat_id")).lstrip("-").isdigit() and int(p["chat_id"]) in chats:
            texts += [p[key] for key in shown[name] if p.get(key)]
            texts += [price["label"] for price in p.get("prices") or []]
            markup = p.get("reply_markup") or {}
            texts += [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
    return texts


def russian_problems(text: str, names: list[str], words: set[str]) -> list[str]:
    """English words and English-style numbers in ``text`` outside the tour's allow-list above."""
    for name in names:
        text = text.replace(name, " ")
    if "Take-Profit Targets:" in text:
        text = CORNIX_LINE.sub(" ", text)
    text = RECORDED.sub(" ", TIMEFRAME.sub(" ", text))
    return [p for p in problems(text)  # a word cut short ("GPT-4o-") counts as the name it begins
            if p not in words and not (p.endswith("-") and any(w.startswith(p) for w in words))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_tour_in_russian_meets_no_english_and_no_dead_end(tmp_path):
    """README "Sandbox tour", every step, in Russian in the web chat: AI tokens, the orders, the Developer API
    (a key, credit), a plan paid on Crypto Pay's page and the private channel, a signal with its events, the
    filters and the track record, whales with a follow and its alert, datasets downloaded, referrals, and the
    admin (switched to RU) refunding the plan and opening the panel. Every bot text Борис and the admin get
    reads Russian (no English word outside the allow-list above, no English-style number), the page's own
    words stay Russian, and each step ends where the README says."""
    from bot.middlewares import ThrottleMiddleware

    port = free_port()  # as scripts/sandbox (WEB_PORT 8080): the bot's links (datasets) name its port
    async with running_sandbox(tmp_path, web_port=port) as sb:
        for middleware in sb.app.dp.callback_query.outer_middleware:  # a test taps faster than a person
            if isinstance(middleware, ThrottleMiddleware):
                middleware.limit = 100
        with chromium() as driver:
            async def tap(fragment: str, label: str, timeout: float = 15) -> Any:  # noqa: ASYNC109
                bubble = await until(driver, bubble_with(fragment), timeout=timeout, what=fragment)
                await click(driver, bubble, label)
                return bubble

            async def menu(label: str) -> None:
                await send(driver, "/start")
                await tap("Привет, Борис", label)

            async def admin(label: str) -> None:
                """/admin, then a button of the panel it sends (not of an older one)."""
                before = len([m for m in bot_bubbles(driver) if "Панель администратора" in m.text])
                await send(driver, "/admin")
                panels = await until(driver, lambda d: len(found := [m for m in bot_bubbles(d)
                                                                     if "Панель администратора" in m.text]) > before
                                     and found, what="the admin panel")
                assert len(panels[-1].find_elements("css selector", ".kb-btn")) >= 6
                await click(driver, panels[-1], label)

            async def pay_stars(what: str, timeout: float = 20) -> Any:  # noqa: ASYNC109
                before = len(css(driver, "#messages .kb-btn.pay"))
                note = css(driver, "#toast")[0].get_attribute("textContent")  # shown 3.2 s: read even when hidden
                pay = await until(driver, lambda d: len(found := css(d, "#messages .kb-btn.pay")) > before and found,
                                  what="the Stars invoice")
                assert pay[-1].text.startswith("Оплатить ⭐️")
                await asyncio.to_thread(pay[-1].click)
                paid = await until(driver, lambda d: "Оплачено" in (t := css(d, "#toast")[0].get_attribute(
                    "textContent")) and t != note and t, what="the page's payment note")
                assert english_words(re.sub(r"stx\w+", " ", paid)) == [], paid  # the charge id aside
                return await until(driver, bubble_with(what), timeout=timeout, what=what)

            def page_words(d: Any) -> list[str]:
                chrome = [e.text for e in css(d, "#sidebar, .chat-header, #operator, .empty")]
                chrome.append(css(d, "#composer-input")[0].get_attribute("placeholder"))
                chrome += [e.get_attribute("value") for e in css(d, "#op-signal-form input[name=entry], "
                                                                    "#op-signal-form input[name=targets]")]
                return english_words("\n".join(chrome))

            await open_chat(driver, sb.chat_url, BORIS)
            await asyncio.to_thread(css(driver, "#page-lang-ru")[0].click)
            await until(driver, lambda d: css(d, "#conn")[0].text == "на связи", what="the page in Russian")
            await asyncio.to_thread(css(driver, "#operator-toggle")[0].click)
            await until(driver, lambda d: "Приём данных включён" in css(d, "#op-ingest")[0].text, what="the panel")
            assert page_words(driver) == []
            assert css(driver, "#op-signal-form input[name=entry]")[0].get_attribute("value") == "142,5"

            # The admin in Russian from the start (so the sale notices are Russian too): EN → RU, /start.
            await asyncio.to_thread(css(driver, ".admin-switch")[0].click)
            await until(driver, lambda d: "1000" in css(d, "#chat-sub")[0].text, what="the admin's chat")
            await asyncio.to_thread(css(driver, "#lang-toggle")[0].click)
            await until(driver, lambda d: "RU" in css(d, "#chat-sub")[0].text, what="the admin in Russian")
            await send(driver, "/start")
            await until(driver, bubble_with("Привет, Admin"), what="the admin's menu in Russian")
            await asyncio.to_thread(css(driver, ".admin-switch")[0].click)
            await until(driver, lambda d: str(BORIS) in css(d, "#chat-sub")[0].text, what="Борис's chat again")

            # 1-2. The main menu; AI tokens paid with Stars (the terms are accepted once, here); the orders.
            await menu("AI-токены")
            await tap("Выберите модель", "GPT-4o-mini")
            await tap("Выберите пакет", "Стандарт")
            await tap("Выберите способ оплаты", "Telegram Stars")
            await tap("примите наши условия", "Принимаю")
            await pay_stars("sk-or-v1-")
            await menu("Мои заказы")
            await until(driver, bubble_with("осталось"), what="the key's credit left in the orders")

            # 2. The Developer API: a key shown once, then API credit bought the same way.
            await menu("API для разработчиков")
            await tap("У вас пока нет ключей API", "Новый ключ")
            await until(driver, bubble_with("Отправьте название"), what="the key's name asked")
            await send(driver, "торговый бот")
            await tap("ваш новый ключ API", "API для разработчиков")
            await tap("Ваши ключи (1 из", "Пополнить баланс")
            await tap("Выберите сумму", "5,00")
            await tap("Выберите способ оплаты", "Telegram Stars")
            credited = await pay_stars("Баланс API")
            assert "5,00" in credited.text

            # 3. Plans and the private channel, paid on Crypto Pay's own page opened from the panel.
            await send(driver, "/plans")
            await tap("Тарифы", "Pro · месяц")
            await tap("Выберите способ оплаты", "Crypto Pay")
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
            await until(driver, lambda d: "вступает в канал Sandbox VIP" in css(d, "#toast")[0].get_attribute(
                "textContent"),
                        what="Борис joining the private channel")

            # 3 (continued). Paying on-chain: the exact amount, the address, and the KryptoExpress page in Russian.
            await send(driver, "/plans")
            await tap("Тарифы", "Basic · месяц")
            await tap("Выберите способ оплаты", "USDT TRC20")
            await until(driver, bubble_with("Отправьте ровно"), what="the on-chain invoice")
            await until(driver, lambda d: (link := css(d, '#op-invoices a[data-provider="kryptoexpress"]')) and (
                link[0].click() or True), what="the KryptoExpress page opened from the panel")  # the list renews
            await until(driver, lambda d: len(d.window_handles) == 2, what="the pay page's window")
            await asyncio.to_thread(driver.switch_to.window, next(h for h in driver.window_handles if h != chat_window))
            pay_page = await until(driver, lambda d: "USDT" in (t := page_text(d)) and t, what="the KryptoExpress page")
            coded = re.sub(r"\bT[1-9A-HJ-NP-Za-km-z]{33}\b|\bUSDT_TRC20\b", " ", pay_page)  # address, its code
            assert english_words(coded) == [], pay_page
            await asyncio.to_thread(driver.close)
            await asyncio.to_thread(driver.switch_to.window, chat_window)

            # 4. A signal and its events from the operator panel, as a Russian reader types the prices.
            await asyncio.to_thread(css(driver, "#op-post-signal")[0].click)
            await until(driver, panel_says("Сигнал SOL/USDT опубликован (202)"), what="the signal accepted")
            await until(driver, bubble_with("Entry: 142.5"), what="the signal in Борис's chat")
            await asyncio.to_thread(css(driver, "#op-signals .op-tp")[0].click)
            await until(driver, panel_says("Бот принял (202)"), what="the event accepted")
            await until(driver, bubble_with("🎯 #SOL/USDT"), what="the event in Борис's chat")
            assert "Вход 142,5" in css(driver, "#op-signals .op-signal-title")[0].text
            await until(driver, lambda d: "Цель 1" in css(d, "#op-signals .item-sub")[0].text, what="the event listed")
            price = css(driver, "#op-signals form.op-close input[name=price]")[0]
            await asyncio.to_thread(price.clear)
            await asyncio.to_thread(price.send_keys, "155,25")  # as a Russian reader types it
            await asyncio.to_thread(css(driver, "#op-signals form.op-close button")[0].click)
            closed = await until(driver, bubble_with("🏁 #SOL/USDT"), what="the close in Борис's chat")
            assert closed.find_element("css selector", ".quote").text  # a reply to his copy of the signal
            await send(driver, "/signals")
            await tap("Ваши сигналы", "Фильтры")
            await tap("Фильтры сигналов", "SOL/USDT")
            await until(driver, lambda d: any("✅" in b.text and "SOL/USDT" in b.text
                                              for b in css(d, "#messages .kb-btn")), what="the pair ticked")
            await send(driver, "/performance")
            await until(driver, bubble_with("Статистика сигналов"), what="the track record")
            await until(driver, bubble_with("пересчитана"), what="the hash chain recomputed")
            await until(driver, lambda d: css(d, "#messages .msg.in img"), what="the equity curve")

            # 5. Whales: the sample trades fill the board; Борис (Pro) follows a wallet and gets its alert.
            await asyncio.to_thread(css(driver, "#op-whales")[0].click)
            await until(driver, panel_says("кошельков: 10 (200)"), what="the whale trades stored")
            await send(driver, "/whales")
            await tap("Рейтинг китов", "1. ")
            await tap("Последние сделки", "Следить")
            await tap("Уведомлять", "10")
            await until(driver, bubble_with("Последние сделки"), what="the card again, now followed")
            sb.app.whale_alerts.window = timedelta(0)  # the README's "within about a minute", without the wait
            await asyncio.to_thread(css(driver, "#op-whales")[0].click)

            async def alerted() -> bool:
                await sb.app.whale_alerts.tick()
                return any("Активность китов" in m.get("text", "")
                           for m in sb.telegram.chat_messages(BORIS, bot_only=True))
            await sb.telegram.wait_for(alerted, timeout=15)
            await until(driver, bubble_with("Активность китов"), what="the whale alert")

            # 2 (continued). Datasets, now that there are whale trades: bought with Stars, downloaded.
            await send(driver, "/data")
            await tap("Датасеты", "Сделки китов")
            await tap("Выберите срез", "актуальный")
            await tap("Выберите способ оплаты", "Telegram Stars")
            ready = await pay_stars("Ваш датасет готов")
            csv_link = next(a.get_attribute("href") for a in ready.find_elements("css selector", "a")
                            if ".csv." in (a.get_attribute("href") or ""))
            async with aiohttp.ClientSession() as http, http.get(csv_link) as response:
                assert response.status == 200 and "wallet" in (await response.text()).splitlines()[0]

            # 8. Referrals.
            await menu("Настройки")
            await tap("Настройки", "Пригласить друзей")
            await until(driver, bubble_with("start=ref_1002"), what="Борис's invite link")
            assert page_words(driver) == []

            # 6. The admin (in Russian) refunds the plan: Борис is told, and @CryptoBot's note is Russian.
            await asyncio.to_thread(css(driver, ".admin-switch")[0].click)
            await until(driver, lambda d: "1000" in css(d, "#chat-sub")[0].text, what="the admin's chat")
            order = next(o for o in await sb.app.orders.for_user(BORIS) if o.provider == "cryptopay")
            await until(driver, bubble_with(f"#{order.id}"), what="the sale notice with the order number")
            await send(driver, f"/refund {order.id}")
            await tap("Вернуть деньги за заказ", "Подтвердить возврат")
            await until(driver, bubble_with(f"Возврат по заказу #{order.id} оформлен"), what="the refund done")
            # 7. The admin panel answers with its buttons.
            await admin("Статистика")
            await until(driver, bubble_with("📊 Статистика ("), what="the stats")
            await admin("Журнал действий")
            await until(driver, bubble_with("Журнал действий — стр."), what="the audit log")
            await admin("Найти пользователя")
            await until(driver, bubble_with("Отправьте ID пользователя"), what="the user lookup")
            await send(driver, str(BORIS))
            await until(driver, bubble_with("Борис"), what="Борис's card")
            await send(driver, "/post_now")
            await sb.telegram.wait_for(lambda: sb.telegram.chat_messages(SANDBOX_CHANNEL_ID, bot_only=True),
                                       timeout=20)  # the DeepSeek stand-in's post in Sandbox Channel
            assert page_words(driver) == []

            await asyncio.to_thread(css(driver, f'#user-list [data-user-id="{BORIS}"]')[0].click)
            await until(driver, bubble_with("Возврат по заказу"), what="Борис told of the refund")
            note = await until(driver, lambda d: [m for m in css(d, "#messages .msg .text")
                                                  if "@CryptoBot: вы получили" in m.text], what="the transfer note")
            assert "29,99 USDT" in note[-1].text
            await send(driver, "/orders")
            await until(driver, bubble_with("возвращ"), what="the order shown refunded")
            assert page_words(driver) == []

        names, words = sandbox_names(sb)
        texts = bot_texts(sb, {BORIS, ADMIN})
        assert len(texts) > 150, len(texts)
        found = {t[:90]: p for t in texts if (p := russian_problems(t, names, words))}
        assert not found, "English in the Russian tour:\n" + "\n".join(f"{k!r}: {v}" for k, v in found.items())


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
