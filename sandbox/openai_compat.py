"""What the OpenAI-compatible stand-ins (OpenRouter, DeepSeek) share about chat messages."""

from __future__ import annotations

import math
from typing import Any


def message_text(content: Any) -> str:
    """Text of an OpenAI message ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def count_tokens(text: str) -> int:
    """Rough tokenizer: ~4 characters per token."""
    return math.ceil(len(text) / 4)
