"""Bidirectional and zero-width controls are removed from outside text before it is shown (issue 13.8)."""

import pytest

from services.text import strip_invisible, strip_invisible_or_none

CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
            "\u200e", "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


@pytest.mark.parametrize("char", CONTROLS)
def test_each_control_is_removed(char):
    assert strip_invisible(f"Ad{char}min{char}") == "Admin"


def test_a_right_to_left_override_no_longer_reverses_a_name():
    assert strip_invisible("Bob\u202enimdA") == "BobnimdA"  # was shown as "BobAdmin"


def test_ordinary_text_is_unchanged():
    for text in ("Alice", "Борис", "محمد", "山田 太郎", "Zoë 🚀", ""):
        assert strip_invisible(text) == text


def test_emoji_sequences_keep_their_joiner():
    technologist, family = "\U0001f469\u200d\U0001f4bb", "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    heart = "\u2764\ufe0f\u200d\U0001f525"
    assert strip_invisible(f"Eve {technologist} {family} {heart}") == f"Eve {technologist} {family} {heart}"
    assert strip_invisible("a\u200db \U0001f469\u200dx") == "ab \U0001f469x"  # not between two emoji


def test_optional_text():
    assert strip_invisible_or_none(None) is None
    assert strip_invisible_or_none("\u202e\u200b ") is None  # nothing visible left
    assert strip_invisible_or_none(" Big\u2066 fish ") == "Big fish"
