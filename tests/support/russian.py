"""Checks that a Russian screen reads Russian (issue #16): no English word outside an allow-list and no
English-style number ("25,000", "$9.99", "142.5"). Shared by the in-process screen tour
(tests/integration/test_russian_screens.py) and the browser tour (tests/e2e/test_browser.py)."""

from __future__ import annotations

import re

# Words that stay Latin in Russian: product, plan and provider names, tickers and chains, units, and the
# abbreviations Russian-speaking traders write in Latin.
ALLOWED = {
    "AI", "API", "ID", "CSV", "QR", "URL", "UTC", "USD", "USDT", "TON", "BTC", "ETH", "SOL", "TRC20", "ERC20",
    "TRC", "ERC", "Stars", "Telegram", "OpenRouter", "Crypto", "Pay", "CryptoBot", "KryptoExpress", "PnL", "ROI",
    "MRR", "R",
    "Parquet", "JSON", "HMAC-SHA256",  # a file format, a data format and a signature algorithm: written in Latin
    "Free", "Basic", "Pro", "VIP", "Elite", "Premium", "username", "Bearer", "Authorization", "solana",
    "ethereum", "crypto", "GMGN", "HTML", "lt", "gt", "amp", "X", "Twitter", "Ton", "Solana", "Enterprise",
    "English",  # the language button names English in English
    "free", "basic", "pro", "enterprise",  # plan codes the admin types after /grant
}
LATIN = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*")
ENGLISH_NUMBER = re.compile(r"\d+,\d{3}\b|\$\d|(?<![\d.])\d+\.\d+(?![\d.])")
# Not words a reader reads: settings' names and what a provider or the server said about them, command
# syntax typed as is (key=value), machine codes (tap:adm:stats) and recorded data (the audit log's JSON).
TECHNICAL = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b( is not set)?|\b\w+=\S*|\b\w+(:\w+)+\b|\{[^{}]*\}")


def visible(text: str) -> str:
    """What a reader reads as words: tags, code, links, commands, @names, #pairs and placeholders-free text."""
    text = re.sub(r"<code>.*?</code>|<pre>.*?</pre>|<a [^>]*>|</a>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>|&quot;[^&]*&quot;", " ", text)  # tags; quoted examples of what to type
    text = re.sub(r"https?://\S+|t\.me/\S+|/[a-z_]+\b|@\w+|#\S+|\w+…\w*|…\w+", " ", text)
    return TECHNICAL.sub(" ", text)


def problems(text: str) -> list[str]:
    """The English words and English-style numbers a Russian reader would meet in ``text`` (HTML)."""
    shown = visible(text)
    found = [w for w in LATIN.findall(shown) if w.strip("-_") not in ALLOWED]
    found += [f"number {m.group(0)!r}" for m in ENGLISH_NUMBER.finditer(shown)]
    return found
