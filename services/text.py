"""Text from outside (Telegram names, ingest labels and notes) made safe to display.

Bidirectional controls can make a name read backwards (U+202E before "gpj.exe" shows as "exe.jpg")
or drag the text after it into its direction; zero-width characters make two different strings look the
same. Neither has a place in a name, a label or a note, so they are removed where such text
enters (stored, or rendered when it is not stored). HTML escaping is a separate, later step.
"""

from __future__ import annotations

import re
import unicodedata

# U+061C arabic letter mark, U+200B-U+200F zero-width space/non-joiner/joiner and LRM/RLM,
# U+202A-U+202E embeddings and overrides, U+2060 word joiner, U+2066-U+2069 isolates, U+FEFF BOM.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
_ZWJ = "\u200d"


def strip_invisible(text: str) -> str:
    """`text` without bidirectional and zero-width control characters.

    A zero-width joiner between two emoji is kept: it is what makes woman + laptop one picture, and joins
    nothing a reader could mistake for letters."""
    if not _INVISIBLE.search(text):
        return text
    return _INVISIBLE.sub(lambda m: _ZWJ if _joins_emoji(text, m.start()) else "", text)


def strip_invisible_or_none(text: str | None) -> str | None:
    """`strip_invisible` for optional text; None when nothing visible is left."""
    if text is None:
        return None
    return strip_invisible(text).strip() or None


def _joins_emoji(text: str, at: int) -> bool:
    if text[at] != _ZWJ or at == 0 or at + 1 >= len(text):
        return False
    before, after = text[at - 1], text[at + 1]
    return _is_emoji_part(before) and unicodedata.category(after) == "So"


def _is_emoji_part(char: str) -> bool:
    # a symbol, a variation selector-16 (❤️) or a skin-tone modifier (👍🏽)
    return unicodedata.category(char) == "So" or char == "\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff"
