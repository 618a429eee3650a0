"""Settings: defaults, list formats, and one clear line naming each malformed setting."""

from decimal import Decimal

import pytest

from config.settings import SettingsInvalid, load_settings

TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    for key in list(__import__("os").environ):
        if key.startswith(("TELEGRAM_", "CRYPTO_", "AI_TOKEN", "ADMIN_", "SIGNAL_", "DATABASE_", "TIMEZONE")):
            monkeypatch.delenv(key)


def test_defaults_match_the_contract(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    s = load_settings()
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.database_url == "sqlite+aiosqlite:///data/bot.db"
    assert s.telegram_rate_limit == 30
    assert s.crypto_pay_assets == ["USDT", "BTC", "TON"]
    assert s.ai_token_markup == Decimal("0.20") and s.ai_token_max_order_usd == Decimal("20")
    assert s.stars_usd_rate == Decimal("0.013")
    assert s.telegram_content_schedules == ["09:00", "14:00", "19:00"]
    assert s.telegram_content_rotation == ["market", "tip", "promo", "community"]
    assert s.stars_enabled is True and s.telegram_content_enabled is False
    assert s.web_host == "127.0.0.1" and s.web_port == 8080
    assert s.marketplace_provider_share == Decimal("0.80") and s.payout_hold_days == 7
    assert s.marketplace_price_range_usd == (Decimal("5"), Decimal("500"))


@pytest.mark.parametrize("value", ["1,2, 3", "[1, 2, 3]", '["1","2","3"]'])
def test_lists_accept_commas_or_json(monkeypatch, value):
    monkeypatch.setenv("ADMIN_IDS", value)
    assert load_settings(require_token=False).admin_ids == [1, 2, 3]


def test_channel_map_and_assets(monkeypatch):
    monkeypatch.setenv("TELEGRAM_CHANNEL_MAP", '{"Crypto": "-1001234", "forex": "@forex_chan"}')
    monkeypatch.setenv("CRYPTO_PAY_ASSETS", "usdt, ton")
    s = load_settings(require_token=False)
    assert s.telegram_channel_map == {"crypto": -1001234, "forex": "@forex_chan"}
    assert s.crypto_pay_assets == ["USDT", "TON"]


def test_token_is_secret(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    s = load_settings()
    assert TOKEN not in repr(s) and TOKEN not in str(s.model_dump())
    assert s.telegram_bot_token.get_secret_value() == TOKEN


def test_missing_token_is_named():
    with pytest.raises(SettingsInvalid, match="TELEGRAM_BOT_TOKEN is required"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "bot token"),
        ("TELEGRAM_API_URL", "ftp://x", "URL"),
        ("DATABASE_URL", "sqlite:///data/bot.db", "async driver"),
        ("DATABASE_URL", "::::", "database URL"),
        ("ADMIN_IDS", "12,abc", "'abc'"),
        ("ADMIN_IDS", "[1,", "JSON"),
        ("TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("WEB_PORT", "70000", "65535"),
        ("TELEGRAM_RATE_LIMIT", "-5", "greater than 0"),
        ("TELEGRAM_CHANNEL_MAP", "{crypto: 1}", "JSON"),
        ("TELEGRAM_CHANNEL_MAP", "[1, 2]", "JSON object"),
        ("TELEGRAM_CHAT_ID", "my channel", "chat id"),
        ("PRIVATE_CHANNEL_ID", "-100abc", "chat id"),
        ("CRYPTO_PAY_ASSETS", "USDT,$$", "asset"),
        ("STARS_ENABLED", "maybe", "boolean"),
        ("STARS_USD_RATE", "0", "greater than 0"),
        ("INVOICE_TTL_MINUTES", "0", "greater than or equal to 1"),
        ("PAYMENT_POLL_INTERVAL_SECONDS", "soon", "integer"),
        ("REFERRAL_REWARD_DAYS", "-1", "greater than or equal to 0"),
        ("AI_TOKEN_MARKUP", "-0.2", "greater than or equal to 0"),
        ("AI_TOKEN_MAX_ORDER_USD", "twenty", "decimal"),
        ("AI_TOKEN_MIN_TOKENS", "0", "greater than or equal to 1"),
        ("TELEGRAM_CONTENT_SCHEDULES", "09:00,25:61", "time of day"),
        ("TELEGRAM_CONTENT_SCHEDULES", "9am", "HH:MM"),
        ("TELEGRAM_CONTENT_ROTATION", '["market","memes"]', "memes"),
        ("TELEGRAM_CONTENT_MAX_RETRIES", "-1", "greater than or equal to 0"),
        ("GMGN_PROMO_LINK", "gmgn.ai/x", "URL"),
        ("SIGNAL_WEBHOOK_ALLOWED_IPS", "127.0.0.1,300.1.1.1", "300.1.1.1"),
        ("LOG_LEVEL", "LOUD", "DEBUG"),
        ("MARKETPLACE_PROVIDER_SHARE", "1.5", "less than or equal to 1"),
        ("MARKETPLACE_PROVIDER_SHARE", "0.80001", "4 decimals"),
        ("MARKETPLACE_PRICE_RANGE_USD", "500,5", "min <= max"),
        ("MARKETPLACE_PRICE_RANGE_USD", "five", "min,max"),
        ("PAYOUT_HOLD_DAYS", "-1", "greater than or equal to 0"),
        ("DATASETS_S3_ENDPOINT_URL", "s3.example.com", "http(s) URL"),
        ("DATASETS_S3_BUCKET", "My_Bucket", "bucket name"),
        ("DATASETS_S3_REGION", "EU Central", "region"),
    ],
)
def test_each_malformed_setting_is_named(monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsInvalid) as err:
        load_settings(require_token=False)
    line = str(err.value)
    assert line.startswith(f"Invalid setting {name}:"), line
    assert words in line and "\n" not in line


def test_dataset_object_store_is_all_five_settings_or_none(monkeypatch):
    parts = {"DATASETS_S3_ENDPOINT_URL": "http://127.0.0.1:9000/", "DATASETS_S3_BUCKET": "datasets",
             "DATASETS_S3_ACCESS_KEY_ID": "AKIAEXAMPLE", "DATASETS_S3_SECRET_ACCESS_KEY": "secret",
             "DATASETS_S3_REGION": "us-east-1"}
    assert not load_settings(require_token=False).datasets_s3
    for name, value in parts.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(require_token=False)
    assert settings.datasets_s3 and settings.datasets_s3_endpoint_url == "http://127.0.0.1:9000"
    monkeypatch.delenv("DATASETS_S3_SECRET_ACCESS_KEY")
    with pytest.raises(SettingsInvalid) as err:
        load_settings(require_token=False)
    assert str(err.value).startswith("Invalid setting DATASETS_S3_SECRET_ACCESS_KEY: required with the other")
