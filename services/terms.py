"""The operator's terms of service: HTML files in content/, one per language, read on each request
so edits take effect without a restart."""

from __future__ import annotations

from pathlib import Path

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"


def terms_text(language: str, directory: Path = CONTENT_DIR) -> str | None:
    for code in (language, "en"):
        path = directory / f"terms.{code}.html"
        if path.is_file():
            return path.read_text(encoding="utf-8").strip() or None
    return None
