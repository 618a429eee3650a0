"""Settings from the environment or `.env` (every one documented in .env.example).

List settings take a comma-separated string or a JSON list; JSON-object settings take
JSON. A malformed value raises `SettingsInvalid` naming the setting, so start-up can
stop with one clear line.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import re
from datetime import time
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_AI_MODELS = [
    "openai/gpt-4o-mini",
    "anthropic/claude-3.5-haiku",
    "google/gemini-2.0-flash-001",
    "deepseek/deepseek-chat",
    "meta-llama/llama-3.3-70b-instruct",
]
CONTENT_KINDS = ("market", "tip", "promo", "community")
#: The developer API's default limits per plan (the tier table): calls per minute and per UTC day, None = unlimited.
DEFAULT_API_LIMITS: dict[str, dict[str, int | None]] = {
    "free": {"per_minute": 10, "per_day": 100},
    "basic": {"per_minute": 60, "per_day": 1_000},
    "pro": {"per_minute": 300, "per_day": 10_000},
    "enterprise": {"per_minute": 1_200, "per_day": None},
}
#: USD per developer-API call once the day's quota is used, by endpoint group.
DEFAULT_API_PRICES: dict[str, Decimal] = {
    "signals": Decimal("0.01"), "whales": Decimal("0.02"), "analytics": Decimal("0.03"), "datasets": Decimal("0.50"),
}
S3_PARTS = ("endpoint_url", "bucket", "access_key_id", "secret_access_key", "region")
ASYNC_DRIVERS = ("aiosqlite", "asyncpg", "psycopg", "aiomysql", "asyncmy")

StrList = Annotated[list[str], NoDecode]
# What Telegram accepts as a webhook's secret_token.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_SECRET_RULE = "use 1-256 characters of A-Z, a-z, 0-9, _ and - (e.g. the output of: openssl rand -hex 32)"
_MODEL_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.:+-]+")


class SettingsInvalid(Exception):
    """A setting is missing or malformed; `str()` is one line naming it."""


def _split_list(value: Any) -> list[str]:
    """Accept a JSON list or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg})") from None
        if not isinstance(parsed, list):
            raise ValueError("expected a JSON list")
        bad = [v for v in parsed if isinstance(v, bool) or not isinstance(v, (str, int, float))]
        if bad:
            raise ValueError(f"{json.dumps(bad[0])} in the JSON list is not a plain value")
        return [str(v).strip() for v in parsed if str(v).strip()]
    if text[0] in '{"':
        raise ValueError('expected a comma-separated list (a,b,c) or a JSON list (["a","b"])')
    return [part.strip() for part in text.split(",") if part.strip()]


def _json_object(value: Any, example: str) -> dict:
    """A JSON-object setting: a dict as given, or parsed from its text (empty text: {})."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object like {example}")
    return value


def _chat_ref(value: Any) -> int | str | None:
    """A chat id (-100…) or a public @username."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"@[A-Za-z0-9_]{5,32}", text):
        return text
    raise ValueError("expected a numeric chat id or an @username")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///data/bot.db"
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    timezone: str = "UTC"
    web_host: str = "127.0.0.1"
    web_port: int = Field(8080, ge=0, le=65535)
    public_base_url: str | None = None
    telegram_rate_limit: float = Field(30, gt=0, le=10_000)
    telegram_chat_id: Annotated[int | str | None, NoDecode] = None
    telegram_channel_map: Annotated[dict[str, int | str], NoDecode] = Field(default_factory=dict)
    private_channel_id: Annotated[int | str | None, NoDecode] = None
    crypto_pay_token: SecretStr | None = None
    crypto_pay_api_url: str = "https://pay.crypt.bot"
    crypto_pay_assets: StrList = Field(default_factory=lambda: ["USDT", "BTC", "TON"])
    krypto_express_api_key: SecretStr | None = None
    krypto_express_api_url: str = "https://kryptoexpress.pro/api"
    krypto_express_callback_secret: SecretStr | None = None
    stars_enabled: bool = True
    stars_usd_rate: Decimal = Field(Decimal("0.013"), gt=0)
    invoice_ttl_minutes: int = Field(30, ge=1, le=60 * 24 * 7)
    payment_poll_interval_seconds: int = Field(15, ge=1, le=3600)
    #: Paid-plan days a referrer gets when someone who joined through their invite link has a first order
    #: fulfilled (0: no reward).
    referral_reward_days: int = Field(0, ge=0, le=3650)
    openrouter_api_url: str = "https://openrouter.ai/api/v1"
    openrouter_management_key: SecretStr | None = None
    ai_token_models: StrList = Field(default_factory=lambda: list(DEFAULT_AI_MODELS))
    ai_token_markup: Decimal = Field(Decimal("0.20"), ge=0, le=10)
    ai_token_max_order_usd: Decimal = Field(Decimal("20"), gt=0)
    ai_token_min_tokens: int = Field(100, ge=1)
    deepseek_key: SecretStr | None = None
    deepseek_api_url: str = "https://api.deepseek.com"
    deepseek_model: str = "deepseek-chat"
    telegram_content_enabled: bool = False
    telegram_content_schedules: StrList = Field(default_factory=lambda: ["09:00", "14:00", "19:00"])
    telegram_content_topics: StrList = Field(
        default_factory=lambda: ["momentum", "liquidity", "risk management"]
    )
    telegram_content_rotation: StrList = Field(default_factory=lambda: list(CONTENT_KINDS))
    telegram_content_max_retries: int = Field(2, ge=0, le=10)
    telegram_content_dry_run: bool = False
    gmgn_promo_link: str | None = None
    forex_community_link: str | None = None
    signal_webhook_secret: SecretStr | None = None
    signal_webhook_allowed_ips: StrList = Field(default_factory=list)
    redis_url: str | None = None
    api_limits: Annotated[dict[str, dict[str, int | None]], NoDecode] = Field(
        default_factory=lambda: {plan: dict(limits) for plan, limits in DEFAULT_API_LIMITS.items()})
    api_prices: Annotated[dict[str, Decimal], NoDecode] = Field(default_factory=lambda: dict(DEFAULT_API_PRICES))
    #: Let API webhooks point at private and loopback addresses over http (the sandbox; never in production).
    api_webhook_allow_private: bool = False
    #: The provider's share of a provider subscription's price (at most 4 decimals, so every cent splits exactly).
    marketplace_provider_share: Decimal = Field(Decimal("0.80"), gt=0, le=1)
    #: The lowest and highest monthly price (USD, whole cents) a signal provider may set.
    marketplace_price_range_usd: Annotated[tuple[Decimal, Decimal], NoDecode] = (Decimal("5"), Decimal("500"))
    #: Days after payment before a provider's share becomes payable (the refund window).
    payout_hold_days: int = Field(7, ge=0, le=365)
    #: An S3-compatible store for bought datasets (all five or none): buyers get presigned URLs to it.
    datasets_s3_endpoint_url: str | None = None
    datasets_s3_bucket: str | None = None
    datasets_s3_access_key_id: SecretStr | None = None
    datasets_s3_secret_access_key: SecretStr | None = None
    datasets_s3_region: str | None = None
    log_level: str = "INFO"

    @field_validator(
        "crypto_pay_assets",
        "ai_token_models",
        "telegram_content_schedules",
        "telegram_content_topics",
        "telegram_content_rotation",
        "signal_webhook_allowed_ips",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> list[str]:
        return _split_list(value)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admin_ids(cls, value: Any) -> list[int]:
        ids = []
        for item in _split_list(value):
            if not re.fullmatch(r"\d{1,15}", item):
                raise ValueError(f"{item!r} is not a Telegram user id")
            ids.append(int(item))
        return ids

    @field_validator("telegram_chat_id", "private_channel_id", mode="before")
    @classmethod
    def _chat(cls, value: Any) -> int | str | None:
        return _chat_ref(value)

    @field_validator("telegram_channel_map", mode="before")
    @classmethod
    def _channel_map(cls, value: Any) -> dict[str, int | str]:
        value = _json_object(value, '{"crypto": "-100123"}')
        return {str(k).lower(): _chat_ref(v) for k, v in value.items()}

    @field_validator("api_limits", mode="before")
    @classmethod
    def _api_limits(cls, value: Any) -> dict[str, dict[str, int | None]]:
        """Plans not named keep their defaults; each named plan gives both limits (a positive whole number or
        null for unlimited)."""
        given = _json_object(value, '{"free": {"per_minute": 10, "per_day": 100}}')
        limits = {plan: dict(default) for plan, default in DEFAULT_API_LIMITS.items()}
        for plan, pair in given.items():
            if plan not in limits:
                raise ValueError(f"unknown plan {plan!r} (plans: {', '.join(limits)})")
            if not isinstance(pair, dict) or set(pair) != {"per_minute", "per_day"}:
                raise ValueError(f'{plan}: expected {{"per_minute": n or null, "per_day": n or null}}')
            for name, number in pair.items():
                if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
                    raise ValueError(f"{plan}.{name}: expected a positive whole number or null")
            limits[plan] = dict(pair)
        return limits

    @field_validator("api_prices", mode="before")
    @classmethod
    def _api_prices(cls, value: Any) -> dict[str, Decimal]:
        """Groups not named keep their defaults; a price is a non-negative USD amount of at most 6 decimals."""
        given = _json_object(value, '{"signals": "0.01"}')
        prices = dict(DEFAULT_API_PRICES)
        for group, price in given.items():
            if group not in prices:
                raise ValueError(f"unknown group {group!r} (groups: {', '.join(prices)})")
            try:
                amount = Decimal(str(price)) if not isinstance(price, bool) else Decimal("NaN")
            except ArithmeticError:
                amount = Decimal("NaN")
            if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -6 or amount > 1000:
                raise ValueError(f"{group}: expected a USD amount from 0 to 1000 with at most 6 decimals")
            prices[group] = amount
        return prices

    @field_validator("marketplace_provider_share")
    @classmethod
    def _share(cls, value: Decimal) -> Decimal:
        if value.as_tuple().exponent < -4:  # type: ignore[operator]
            raise ValueError("use at most 4 decimals, e.g. 0.80 (every cent must split exactly)")
        return value

    @field_validator("marketplace_price_range_usd", mode="before")
    @classmethod
    def _price_range(cls, value: Any) -> tuple[Decimal, Decimal]:
        items = value if isinstance(value, (list, tuple)) else _split_list(value)
        try:
            low, high = (Decimal(str(item).strip()) for item in items)
        except (ValueError, ArithmeticError):
            raise ValueError("expected min,max in USD, e.g. 5,500") from None
        if not (low.is_finite() and high.is_finite()) or low.as_tuple().exponent < -2 \
                or high.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValueError("expected min,max in USD with at most 2 decimals, e.g. 5,500")
        if not Decimal("1") <= low <= high <= Decimal("100000"):
            raise ValueError("expected 1 <= min <= max <= 100000 (USD), e.g. 5,500")
        return low, high

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except Exception:
            raise ValueError("not a database URL") from None
        # Name the driver: SQLAlchemy's default for a bare postgresql:// changes between versions.
        driver = url.drivername.partition("+")[2]
        if driver not in ASYNC_DRIVERS:
            suggested = {"postgresql": "postgresql+asyncpg://", "sqlite": "sqlite+aiosqlite://"}.get(
                url.get_backend_name(), "sqlite+aiosqlite:// or postgresql+asyncpg://")
            raise ValueError(f"needs an async driver: use {suggested}…")
        if importlib.util.find_spec(driver) is None:
            raise ValueError(f"the {driver} driver is not installed; use postgresql+asyncpg:// or "
                             f"sqlite+aiosqlite://, or pip install {driver}")
        return value

    @field_validator(
        "telegram_api_url",
        "telegram_webhook_url",
        "public_base_url",
        "crypto_pay_api_url",
        "krypto_express_api_url",
        "openrouter_api_url",
        "deepseek_api_url",
        "gmgn_promo_link",
        "forex_community_link",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.fullmatch(r"https?://[^\s/$.?#][^\s]*", value):
            raise ValueError("expected an http(s):// URL")
        return value.rstrip("/")

    @field_validator("crypto_pay_assets")
    @classmethod
    def _assets(cls, value: list[str]) -> list[str]:
        assets = [a.upper() for a in value]
        bad = [a for a in assets if not re.fullmatch(r"[A-Z0-9]{2,10}", a)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an asset code")
        return assets

    @field_validator("telegram_content_schedules")
    @classmethod
    def _schedules(cls, value: list[str]) -> list[str]:
        for slot in value:
            if not re.fullmatch(r"\d{2}:\d{2}", slot):
                raise ValueError(f"{slot!r} is not HH:MM")
            try:
                time.fromisoformat(slot)
            except ValueError:
                raise ValueError(f"{slot!r} is not a time of day") from None
        return value

    @field_validator("telegram_content_rotation")
    @classmethod
    def _rotation(cls, value: list[str]) -> list[str]:
        unknown = [k for k in value if k not in CONTENT_KINDS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not one of {', '.join(CONTENT_KINDS)}")
        if not value:
            raise ValueError("needs at least one post kind")
        return value

    @field_validator("signal_webhook_allowed_ips")
    @classmethod
    def _ips(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("ai_token_models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if not _MODEL_ID.fullmatch(m)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an OpenRouter model id (vendor/model, e.g. openai/gpt-4o-mini)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not _WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError(WEBHOOK_SECRET_RULE)
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.telegram_webhook_url and self.telegram_webhook_secret is None:
            # Without it anyone who finds the URL can post updates as any user, admins included.
            raise ValueError(f"TELEGRAM_WEBHOOK_SECRET: required with TELEGRAM_WEBHOOK_URL; {WEBHOOK_SECRET_RULE}")
        return self

    @field_validator("datasets_s3_endpoint_url")
    @classmethod
    def _s3_endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("expected an http(s) URL such as https://s3.eu-central-1.amazonaws.com")
        return value.strip().rstrip("/")

    @field_validator("datasets_s3_bucket")
    @classmethod
    def _s3_bucket(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value.strip()):
            raise ValueError("not an S3 bucket name (3-63 characters of a-z, 0-9, '.' and '-')")
        return value.strip()

    @field_validator("datasets_s3_region")
    @classmethod
    def _s3_region(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[a-z0-9-]{1,32}", value.strip()):
            raise ValueError("not a region name (e.g. us-east-1)")
        return value.strip()

    @field_validator("datasets_s3_access_key_id", "datasets_s3_secret_access_key")
    @classmethod
    def _s3_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None or not value.get_secret_value().strip() else value

    @model_validator(mode="after")
    def _s3_all_or_none(self) -> Settings:
        named = {f"DATASETS_S3_{name.upper()}": getattr(self, f"datasets_s3_{name}") for name in S3_PARTS}
        missing = [name for name, value in named.items() if value is None]
        if missing and len(missing) < len(named):
            raise ValueError(f"{missing[0]}: required with the other DATASETS_S3_* settings (set all five or none)")
        return self

    @property
    def datasets_s3(self) -> bool:
        """An object store for datasets is configured."""
        return self.datasets_s3_bucket is not None

    @field_validator("telegram_bot_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not re.fullmatch(r"\d+:[\w-]{20,}", value.get_secret_value()):
            raise ValueError("does not look like a bot token from @BotFather (123456:ABC…)")
        return value

    # Derived views ---------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def http_base_url(self) -> str | None:
        """Where people reach the HTTP app: PUBLIC_BASE_URL, else this machine's WEB_PORT (None: a port picked
        at start, unknown yet)."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://127.0.0.1:{self.web_port}" if self.web_port else None

    @property
    def webhook_mode(self) -> bool:
        return bool(self.telegram_webhook_url)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_ids


def load_settings(*, require_token: bool = True, **overrides: Any) -> Settings:
    """Build `Settings`, turning any validation problem into one `SettingsInvalid` line."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise SettingsInvalid(_describe(exc)) from None
    if require_token and settings.telegram_bot_token is None:
        raise SettingsInvalid(
            "TELEGRAM_BOT_TOKEN is required: put the token from @BotFather in .env "
            "(or start the offline sandbox with --sandbox)"
        )
    return settings


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if not error["loc"]:  # a rule across settings: its message starts with the setting to change
        return f"Invalid setting {message}{extra}"
    return f"Invalid setting {str(error['loc'][0]).upper()}: {message}{extra}"
