"""The Russian catalogue covers every string in the code, keeps its placeholders and HTML, and is compiled.

When a test here fails: `make i18n-update`, translate the new entries in
bot/locales/ru/LC_MESSAGES/messages.po (no `#, fuzzy` left), then `make i18n-compile`.
"""

from __future__ import annotations

import gettext
import io
import re
import string
from collections import Counter
from pathlib import Path

import pytest
from aiogram.utils.i18n import I18n
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.i18n import DOMAIN, LOCALES_DIR

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("bot", "handlers", "services", "processing", "presentation")  # as in the Makefile's i18n-extract
KEYWORDS = {**DEFAULT_KEYWORDS, "_": None, "__": None}  # `-k _ -k __` adds to Babel's defaults
LOCALES = ("en", "ru")
FIX = ("run `make i18n-update`, translate the new entries in bot/locales/ru/LC_MESSAGES/messages.po "
       "(remove any `#, fuzzy`), then `make i18n-compile`")

# Tags Telegram's HTML parse mode understands; anything else in angle brackets is an error there.
TAG = re.compile(r"</?(b|strong|i|em|u|ins|s|strike|del|code|pre|a|span|tg-spoiler|tg-emoji|blockquote)\b[^>]*>")


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_po(locale: str):
    with po_path(locale).open("rb") as f:
        return read_po(f, locale=locale)


def forms(value) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


@pytest.fixture(scope="module")
def source_msgids() -> set:
    found = set()
    for folder in SOURCE_DIRS:
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS):
            found.add(message)
    assert len(found) > 50, "extraction found suspiciously few strings"
    return found


@pytest.fixture(scope="module")
def ru():
    return load_po("ru")


def placeholders(text: str) -> set[tuple]:
    """{name:spec!conv} fields as str.format sees them ({{ and }} are literal braces)."""
    return {(name, spec, conv) for _lit, name, spec, conv in string.Formatter().parse(text) if name is not None}


def tags(text: str) -> Counter:
    return Counter(match.group(0) for match in TAG.finditer(text))


def test_every_source_string_has_a_russian_translation(source_msgids, ru):
    problems = []
    for msgid in sorted(source_msgids, key=str):
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        entry = ru.get(key)
        if entry is None:
            problems.append(f"missing from ru catalogue: {key!r}")
        elif entry.fuzzy:
            problems.append(f"marked fuzzy (gettext ignores it): {key!r}")
        elif not all(form.strip() for form in forms(entry.string)):
            problems.append(f"untranslated: {key!r}")
    assert not problems, f"{len(problems)} Russian catalogue problem(s); {FIX}:\n" + "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_catalogue_has_no_fuzzy_entries(locale):
    fuzzy = [m.id for m in load_po(locale) if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries in {locale} (gettext ignores them); {FIX}: {fuzzy}"


def test_russian_keeps_placeholders_and_html(ru):
    problems = []
    for entry in ru:
        if not entry.id or not entry.string:
            continue
        msgid = forms(entry.id)[-1]  # plural entries: every Russian form follows the English plural
        for msgstr in forms(entry.string):
            try:
                expected, got = placeholders(msgid), placeholders(msgstr)
            except ValueError as exc:  # e.g. a lone "{" in the translation
                problems.append(f"{msgid!r}: not a valid format string ({exc}): {msgstr!r}")
                continue
            if got != expected:
                problems.append(f"{msgid!r}: placeholders {sorted(got)} != {sorted(expected)}")
            if tags(msgstr) != tags(msgid):
                problems.append(f"{msgid!r}: HTML tags {dict(tags(msgstr))} != {dict(tags(msgid))}")
            if "<" in TAG.sub("", msgstr):
                problems.append(f"{msgid!r}: unescaped '<' Telegram's HTML mode rejects: {msgstr!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalogue_is_up_to_date(locale):
    buffer = io.BytesIO()
    write_mo(buffer, load_po(locale))
    buffer.seek(0)
    expected = dict(gettext.GNUTranslations(buffer)._catalog)
    mo = po_path(locale).with_suffix(".mo")
    assert mo.exists(), f"{mo} is missing; {FIX}"
    with mo.open("rb") as f:
        compiled = dict(gettext.GNUTranslations(f)._catalog)
    expected.pop("", None)  # the header (creation date) may change without any message changing
    compiled.pop("", None)
    assert compiled == expected, f"{mo.relative_to(ROOT)} is out of date with its .po; {FIX}"


def test_aiogram_renders_russian():
    i18n = I18n(path=LOCALES_DIR, default_locale="en", domain=DOMAIN)
    assert {"en", "ru"} <= set(i18n.available_locales)
    with i18n.context():
        with i18n.use_locale("ru"):
            assert i18n.gettext("Cancelled.") == "Отменено."
            assert i18n.gettext("Order #{id}: {status}").format(id=7, status="x") == "Заказ #7: x"
        with i18n.use_locale("en"):
            assert i18n.gettext("Cancelled.") == "Cancelled."
