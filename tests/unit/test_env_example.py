"""`.env.example` documents every setting and, as shipped, is itself a valid configuration."""

import re
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting_and_loads(monkeypatch):
    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    assert names == {name.upper() for name in Settings.model_fields}
    monkeypatch.chdir(ROOT)
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.telegram_bot_token is None and settings.admin_ids == []
    assert settings.telegram_content_topics == ["momentum", "liquidity", "risk management"]

