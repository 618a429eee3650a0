"""Channel posts as Telegram HTML: the model's answer made safe to post, the template per kind for when there
is none, the promo links block and a header above a post. `ChannelPosts` is how services.content writes its
posts (its `PostFormat`); the service itself returns data.

The sanitiser keeps an allow-list of Telegram tags (links only to http(s)/tg), escapes everything else,
balances nesting and cuts at a word to at most 4,096 characters (UTF-16 units, as Telegram counts)."""

from __future__ import annotations

import html
import re

from services.content import MAX_POST_CHARS, Link, u16

TEMPLATES = {
    "market": "📊 <b>Market update: {Topic}</b>\n\n{facts}Keep an eye on {topic} today: let price come to "
              "your levels, size positions so one stop costs little, and write the plan down before you "
              "click.\n\n#market",
    "tip": "💡 <b>Trading tip: {Topic}</b>\n\nDecide where you are wrong before you enter. With {topic}, set "
           "the invalidation level first, then size the position so that being wrong costs no more than 1% "
           "of your account.\n\n#tip",
    "promo": "🚀 <b>Signals, whales and AI tools in one bot</b>\n\n{facts}Get {topic} setups and alerts right "
             "in Telegram. Open the bot with /start to see the plans.\n\n#promo",
    "community": "💬 <b>Community question: {Topic}</b>\n\nWhat is one rule about {topic} that saved you "
                 "money? Share it below; the best answers get featured.\n\n#community",
}


# --------------------------------------------------------------------------- sanitising

ALLOWED_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre",
                          "blockquote", "tg-spoiler", "a"})
#: Tags whose content Telegram takes literally: nothing nests inside.
LITERAL_TAGS = frozenset({"code", "pre"})
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][\w-]*)(\s[^<>]*)?>")
_HREF_RE = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_SAFE_URL_RE = re.compile(r"(?:https?|tg)://[^\s<>\"']+", re.I)
_MD_BOLD_RE = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.S)
_BLANK_LINES_RE = re.compile(r"\n{3,}")
ELLIPSIS = "…"


def sanitize(raw: str, limit: int = MAX_POST_CHARS) -> str:
    """Telegram-safe HTML: allowed tags kept (links only to http(s)/tg), everything else escaped, every tag
    closed in order, at most `limit` UTF-16 units (cut at a word with an ellipsis). May return ''."""
    raw = _MD_BOLD_RE.sub(r"<b>\1</b>", raw.replace("\r\n", "\n").replace("\x00", ""))
    tokens: list[tuple[str, str, str]] = []  # ("text", text, "") | ("open", name, tag) | ("close", name, "")
    stack: list[str] = []

    def text(piece: str) -> None:
        if piece:
            tokens.append(("text", html.unescape(piece), ""))

    def close_to(name: str) -> None:
        while stack:
            top = stack.pop()
            tokens.append(("close", top, ""))
            if top == name:
                return

    pos = 0
    for match in _TAG_RE.finditer(raw):
        text(raw[pos:match.start()])
        pos = match.end()
        closing, name, attrs = match.group(1) == "/", match.group(2).lower(), match.group(3) or ""
        literal = bool(stack) and stack[-1] in LITERAL_TAGS and not (closing and name == stack[-1])
        if literal or name not in ALLOWED_TAGS:
            text(match.group())
        elif closing:
            if name in stack:
                close_to(name)
        elif name not in stack:  # a tag inside itself (a link in a link) is dropped
            if name == "a":
                href = _href(attrs)
                if href is None:
                    continue
                tag = f'<a href="{html.escape(href)}">'
            else:
                tag = f"<{name}>"
            stack.append(name)
            tokens.append(("open", name, tag))
    text(raw[pos:])
    while stack:
        tokens.append(("close", stack.pop(), ""))
    return _render(tokens, limit)


def _href(attrs: str) -> str | None:
    match = _HREF_RE.search(attrs)
    if not match:
        return None
    url = html.unescape(next(g for g in match.groups() if g is not None)).strip()
    return url if _SAFE_URL_RE.fullmatch(url) else None


def _render(tokens: list[tuple[str, str, str]], limit: int) -> str:
    out: list[str] = []
    open_: list[str] = []
    budget = limit - len(ELLIPSIS)  # always keep room to mark a cut
    used = 0  # UTF-16 units written so far plus the closing tags still owed

    truncated = False
    for kind, value, tag in tokens:
        if kind == "open":
            closer = len(f"</{value}>")
            if used + u16(tag) + closer > budget:
                truncated = True
                break
            out.append(tag)
            open_.append(value)
            used += u16(tag) + closer
        elif kind == "close":
            out.append(f"</{value}>")  # already counted when opened
            open_.pop()
        else:
            value = _BLANK_LINES_RE.sub("\n\n", value)
            escaped = html.escape(value, quote=False)
            if used + u16(escaped) <= budget:
                out.append(escaped)
                used += u16(escaped)
                continue
            out.append(html.escape(_cut(value, budget - used), quote=False))
            truncated = True
            break
    result = "".join(out)
    if truncated:
        result = result.rstrip() + ELLIPSIS + "".join(f"</{n}>" for n in reversed(open_))
    return result.strip()


def _cut(value: str, room: int) -> str:
    """The longest prefix whose escaped form fits `room`, backed off to a word boundary when one is near."""
    low, high = 0, len(value)
    while low < high:
        mid = (low + high + 1) // 2
        if u16(html.escape(value[:mid], quote=False)) <= room:
            low = mid
        else:
            high = mid - 1
    prefix = value[:low]
    space = max(prefix.rfind(" "), prefix.rfind("\n"))
    return prefix[:space] if space > low * 0.6 else prefix


def visible_text(post: str) -> str:
    """What a reader sees: tags removed, entities decoded."""
    return html.unescape(_TAG_RE.sub("", post)).strip()


def with_header(header: str, post: str) -> str:
    """`header` above the post when both fit in one message; the post alone otherwise."""
    combined = f"{header}\n\n{post}"
    return combined if u16(combined) <= MAX_POST_CHARS else post


class ChannelPosts:
    """services.content.PostFormat: posts in Telegram HTML."""

    def clean(self, answer: str, limit: int) -> str:
        text = sanitize(answer, limit)
        return text if visible_text(text) else ""

    def template(self, kind: str, topic: str, facts: list[str], limit: int) -> str:
        block = "".join(f"• {html.escape(fact)}\n" for fact in facts)
        post = TEMPLATES[kind].format(topic=html.escape(topic), Topic=html.escape(topic[:1].upper() + topic[1:]),
                                      facts=f"{block}\n" if block else "")
        return sanitize(post, limit)

    def links(self, links: list[Link]) -> str:
        shown = [f'<a href="{html.escape(link.url)}">{html.escape(link.label)}</a>' for link in links]
        return "\n\n🔗 " + " · ".join(shown) if shown else ""
