"""Model output made safe for a channel: allowed Telegram tags only, balanced, within 4,096, never a script.

Every result is checked with the sandbox's copy of Telegram's HTML parser, which refuses what Telegram
refuses ("can't parse entities")."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presentation.content import sanitize, visible_text, with_header
from sandbox.deepseek import _hostile_post
from sandbox.telegram import parse_text, utf16_len
from services.content import MAX_POST_CHARS, u16


def telegram_accepts(post: str) -> str:
    text, _entities = parse_text(post, "HTML")
    assert utf16_len(text) <= MAX_POST_CHARS and u16(post) <= MAX_POST_CHARS
    return text


def test_allowed_tags_are_kept_as_written():
    post = '📊 <b>Title</b>\n\n<i>calm</i> <u>u</u> <s>s</s> <code>x&lt;y</code> <a href="https://gmgn.ai/r?a=1&amp;b=2">go</a>'
    assert sanitize(post) == post
    assert telegram_accepts(post) == "📊 Title\n\ncalm u s x<y go"


@pytest.mark.parametrize(("raw", "expected"), [
    ("<script>alert(1)</script>hi", "&lt;script&gt;alert(1)&lt;/script&gt;hi"),
    ("<b>unclosed <i>nested", "<b>unclosed <i>nested</i></b>"),
    ("<b>bold <i>crossed</b> tail</i>", "<b>bold <i>crossed</i></b> tail"),
    ("stray </b> closer", "stray  closer"),
    ('<a href="javascript:alert(2)">click</a>', "click"),
    ("<img src=x onerror=alert(3)>", "&lt;img src=x onerror=alert(3)&gt;"),
    ("Tom & Jerry <3 >", "Tom &amp; Jerry &lt;3 &gt;"),
    ("<code><b>literal</b></code>", "<code>&lt;b&gt;literal&lt;/b&gt;</code>"),
    ("<b>outer <b>inner</b> rest</b>", "<b>outer inner</b> rest"),
    ("**bold** text", "<b>bold</b> text"),
    ('<A HREF=\'https://x.io/a"b\'>x</A>', "x"),  # a quote in a URL is not a URL we write out
    ("a\n\n\n\n\nb", "a\n\nb"),
])
def test_everything_else_is_escaped_or_dropped(raw, expected):
    assert sanitize(raw) == expected
    telegram_accepts(sanitize(raw))


def test_hostile_model_output_becomes_a_safe_post():
    hostile = _hostile_post()
    assert len(hostile) == 6000 and hostile.endswith("<b>")
    post = sanitize(hostile)
    text = telegram_accepts(post)
    assert "<script" not in post and "<img" not in post and "javascript:" not in post
    assert text.startswith("<script>alert(1)</script>")  # shown as text, never run
    assert "…" in text[-3:]  # cut, and the reader can tell
    assert 4000 < u16(post) <= MAX_POST_CHARS


def test_cut_keeps_emoji_whole_and_counts_utf16():
    post = sanitize("🚀" * 3000)  # 6,000 UTF-16 units
    assert u16(post) <= MAX_POST_CHARS and post.endswith("…") and "\ud83d" not in post
    telegram_accepts(post)


def test_cut_closes_open_tags_and_prefers_a_word_boundary():
    post = sanitize("<b>" + "word " * 2000, limit=100)
    assert post.startswith("<b>word") and post.endswith("word…</b>") and u16(post) <= 100
    telegram_accepts(post)


def test_blank_and_tag_only_output_has_no_visible_text():
    assert sanitize("   ") == ""
    assert visible_text(sanitize("<b> </b>\n")) == ""


def test_header_only_when_it_fits():
    assert with_header("H", "post") == "H\n\npost"
    long_post = "x" * MAX_POST_CHARS
    assert with_header("H", long_post) == long_post


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(
    [*"ab <>/&;\"'=\n🚀", "<b>", "</b>", "<i>", "</i>", "<code>", "</code>", "<pre>", "</pre>",
     '<a href="https://t.me/x">', "</a>", "<blockquote>", "</blockquote>", "<script>", "&amp;", "&lt;",
     "&#128640;", "**", "word "]), max_size=300).map("".join),
       st.integers(min_value=20, max_value=MAX_POST_CHARS))
def test_any_input_gives_html_telegram_accepts(raw, limit):
    post = sanitize(raw, limit)
    assert u16(post) <= limit
    parse_text(post, "HTML")  # raises on anything Telegram would refuse
