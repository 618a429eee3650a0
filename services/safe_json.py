"""JSON from untrusted bytes with a nesting limit, checked by a cheap scan before the parser runs.

``json.loads`` recurses once per level: a 100,000-deep array raises RecursionError (an answer 500) and a
deep body costs memory out of proportion to its size. `loads` refuses more than ``max_depth`` levels
with a ValueError (like any malformed JSON) before parsing; the scan runs at C speed (regex and
``bytes.translate``) except for one step per bracket, and stops at the first level too deep.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Levels of arrays/objects allowed in a request body; our formats need 3.
MAX_DEPTH = 32

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


class TooDeep(ValueError):
    """The body nests arrays/objects more than the allowed depth."""


def too_deep(body: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether ``body`` opens more than ``max_depth`` arrays/objects at once (brackets in strings don't count)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKET):
        if byte in _OPEN:
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def loads(body: bytes | str, *, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads(body, **kwargs)`` after the depth check; raises ValueError (`TooDeep` for nesting)."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if too_deep(raw, max_depth):
        raise TooDeep(f"JSON nests deeper than {max_depth} levels")
    return json.loads(body, **kwargs)


__all__ = ["MAX_DEPTH", "TooDeep", "loads", "too_deep"]
