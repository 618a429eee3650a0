"""Settings that would start an unsafe or broken bot are refused with one line naming them (issue 13)."""

import os

import pytest

from config.settings import SettingsInvalid, load_settings

WEBHOOK = "https://bot.example/telegram/webhook"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    for key in list(os.environ):
        if key.startswith(("TELEGRAM_", "CRYPTO_", "AI_TOKEN", "ADMIN_", "SIGNAL_", "DATABASE_", "TIMEZONE")):
            monkeypatch.delenv(key)


def refusal(**env: str) -> str:
    with pytest.raises(SettingsInvalid) as err:
        load_settings(require_token=False, **{k.lower(): v for k, v in env.items()})
    line = str(err.value)
    assert "\n" not in line
    return line


@pytest.mark.parametrize("secret", [None, "", "has spaces", "semi;colon", "ключ", "x" * 257])
def test_webhook_mode_needs_a_secret_telegram_accepts(secret):
    env = {"TELEGRAM_WEBHOOK_URL": WEBHOOK} | ({} if secret is None else {"TELEGRAM_WEBHOOK_SECRET": secret})
    line = refusal(**env)
    assert line.startswith("Invalid setting TELEGRAM_WEBHOOK_SECRET:"), line
    assert "A-Z, a-z, 0-9, _ and -" in line


@pytest.mark.parametrize("secret", ["a", "Only_letters-and_digits-0123456789", "x" * 256])
def test_a_good_webhook_secret_is_taken(secret):
    s = load_settings(require_token=False, telegram_webhook_url=WEBHOOK, telegram_webhook_secret=secret)
    assert s.webhook_mode and s.telegram_webhook_secret.get_secret_value() == secret


def test_long_polling_needs_no_secret():
    assert not load_settings(require_token=False).webhook_mode


@pytest.mark.parametrize(("value", "words"), [
    ('{"a": 1}', "comma-separated list"),
    ('"openai/gpt-4o-mini"', "comma-separated list"),
    ('[{"a": 1}]', '{"a": 1} in the JSON list'),
    ('["openai/gpt-4o-mini", null]', "null in the JSON list"),
    ('["openai/gpt-4o-mini", ["x/y"]]', '["x/y"] in the JSON list'),
    ("gpt-4o", "'gpt-4o' is not an OpenRouter model id"),
    ("openai/gpt 4o", "is not an OpenRouter model id"),
])
def test_malformed_model_lists_are_refused(value, words):
    line = refusal(AI_TOKEN_MODELS=value)
    assert line.startswith("Invalid setting AI_TOKEN_MODELS:") and words in line, line


@pytest.mark.parametrize("value", [
    "openai/gpt-4o-mini, meta-llama/llama-3.3-70b-instruct:free",
    '["openrouter/auto", "anthropic/claude-3.5-haiku"]',
])
def test_model_ids_as_commas_or_json(value):
    models = load_settings(require_token=False, ai_token_models=value).ai_token_models
    assert len(models) == 2 and all("/" in m for m in models)


@pytest.mark.parametrize("value", ['{"a": 1}', "[1, true]"])
def test_other_list_settings_refuse_objects_too(value):
    assert refusal(ADMIN_IDS=value).startswith("Invalid setting ADMIN_IDS:")


@pytest.mark.parametrize(("url", "words"), [
    ("postgresql://bot:pw@db/bot", "use postgresql+asyncpg://"),
    ("postgresql+psycopg2://bot:pw@db/bot", "use postgresql+asyncpg://"),
    ("sqlite:///data/bot.db", "use sqlite+aiosqlite://"),
    ("postgresql+psycopg://bot:pw@db/bot", "psycopg driver is not installed"),
])
def test_database_url_without_a_usable_async_driver(url, words):
    line = refusal(DATABASE_URL=url)
    assert line.startswith("Invalid setting DATABASE_URL:") and words in line, line
