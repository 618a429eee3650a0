"""The whole sandbox: every stand-in, the web chat, and the settings that point the bot at them.

``python run.py --sandbox`` uses :class:`Sandbox` directly; tests use :func:`running_sandbox`, which
also starts the real bot (``bot.app.App``) the way run.py does::

    async with running_sandbox(tmp_path) as sb:
        sb.telegram.add_user(501, "Eve")             # sb.telegram, sb.webchat, sb.cryptopay,
        sb.telegram.send_text(501, "/start")         # sb.kryptoexpress, sb.openrouter, sb.deepseek
        print(sb.chat_url, sb.app.port)              # sb.app (started), sb.settings

Nothing leaves the machine: Telegram (with the web chat on the same port), Crypto Pay,
KryptoExpress, OpenRouter and DeepSeek all run on 127.0.0.1; the payment stand-ins post their
webhooks to the bot's own HTTP app.

Ingest is on: ``SIGNAL_WEBHOOK_SECRET`` is the one set, else a fresh random one, printed at start
with a curl example (:func:`ingest_help`); the web chat's operator panel (sandbox/operator_panel.py) posts
signals, their events and whale trades through the same signed routes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shlex
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from config.settings import Settings
from sandbox.cryptopay import CryptoPayStandIn
from sandbox.deepseek import DeepSeekStandIn
from sandbox.kryptoexpress import KryptoExpressStandIn
from sandbox.openrouter import OpenRouterStandIn
from sandbox.operator_panel import OperatorPanel
from sandbox.s3 import S3StandIn
from sandbox.telegram import TelegramStandIn
from sandbox.webchat import WebChat

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

SANDBOX_TOKEN = "1234567890:SANDBOX-not-a-real-token-000000"
SANDBOX_ADMIN_ID = 1000
SANDBOX_DB = Path("data/sandbox.db")
#: TELEGRAM_CHAT_ID: the channel that receives scheduled posts.
SANDBOX_CHANNEL_ID = -1001000000001
#: PRIVATE_CHANNEL_ID: the paid members' channel (single-use invite links, removal on expiry).
SANDBOX_PRIVATE_CHANNEL_ID = -1001000000002
#: TELEGRAM_CHANNEL_MAP["crypto"]: where crypto signals are posted.
SANDBOX_SIGNALS_CHANNEL_ID = -1001000000003
KRYPTO_EXPRESS_CALLBACK_SECRET = "sandbox-kryptoexpress-callback-secret"
#: The user id @CryptoBot's notes appear under in a user's chat (transfers received).
CRYPTOBOT_ID = 1559501630
#: Users waiting in the web chat's list (the admin is added too).
DEMO_USERS = ((1001, "Alice", "en"), (1002, "Борис", "ru"))
#: DATASETS_S3_BUCKET when the sandbox runs the S3 stand-in (``Sandbox(s3=True)``).
SANDBOX_S3_BUCKET = "sandbox-datasets"


class Sandbox:
    """Every stand-in plus the web chat. :meth:`start` returns the bot's settings."""

    def __init__(self, *, rate_limit: float | None = 30.0, s3: bool = False) -> None:
        self.telegram = TelegramStandIn(rate_limit=rate_limit)
        #: An S3-compatible store for bought datasets (sandbox/s3.py), only when asked for: without it the
        #: buyer's links point at the bot's own GET /data/{token}.
        self.s3: S3StandIn | None = S3StandIn() if s3 else None
        self.webchat = WebChat(self.telegram, admin_id=SANDBOX_ADMIN_ID)  # routes before start()
        self.cryptopay = CryptoPayStandIn()
        self.kryptoexpress = KryptoExpressStandIn(callback_secret=KRYPTO_EXPRESS_CALLBACK_SECRET)
        self.openrouter = OpenRouterStandIn()
        self.deepseek = DeepSeekStandIn()
        self.operator = OperatorPanel(self.telegram, self.cryptopay, self.kryptoexpress)  # routes before start()
        self.cryptopay.on_transfer.append(self._show_transfer)
        self.base_url = ""
        self.settings: Settings | None = None
        #: The bot, when started by :func:`running_sandbox`.
        self.app: App | None = None

    async def start(
        self, settings: Settings, *, host: str = "127.0.0.1", port: int = 0,
        database_url: str | None = None, announce: bool = True,
    ) -> Settings:
        """Start the stand-ins (Telegram and the web chat on ``port``, the others on free ports);
        return ``settings`` pointed at them. The database is ``database_url`` if given, else
        ``DATABASE_URL`` if set, else a fresh ``data/sandbox.db``. Ingest is on (the secret set,
        or a random one); ``announce`` prints its secret and a curl example."""
        admin_ids = list(settings.admin_ids) or [SANDBOX_ADMIN_ID]
        self.webchat.admin_id, self.webchat.admin_ids = admin_ids[0], set(admin_ids)
        try:
            self.base_url = await self.telegram.start(host, port)
            await self.cryptopay.start(host)
            await self.kryptoexpress.start(host)
            await self.openrouter.start(host)
            await self.deepseek.start(host)
            if self.s3 is not None:
                await self.s3.start(host)
                self.s3.create_bucket(SANDBOX_S3_BUCKET)
        except BaseException:
            await self.stop()
            raise
        self.telegram.add_channel(SANDBOX_CHANNEL_ID, "Sandbox Channel", username="sandbox_channel")
        self.telegram.add_channel(SANDBOX_PRIVATE_CHANNEL_ID, "Sandbox VIP (private)")
        self.telegram.add_channel(SANDBOX_SIGNALS_CHANNEL_ID, "Sandbox Crypto Signals",
                                  username="sandbox_crypto_signals")
        self.webchat.ensure_user(admin_ids[0], "Admin", "en")
        for user_id, name, language in DEMO_USERS:
            if user_id not in admin_ids:
                self.webchat.ensure_user(user_id, name, language)
        secret = settings.signal_webhook_secret
        if secret is None or not secret.get_secret_value():
            secret = SecretStr(secrets.token_hex(16))
        self.operator.secret = secret.get_secret_value()
        if settings.web_port:
            self.bind_bot(settings.web_port)
            if announce:
                print(ingest_help(f"http://127.0.0.1:{settings.web_port}", self.operator.secret), flush=True)
                print(api_help(f"http://127.0.0.1:{settings.web_port}"), flush=True)
        overrides: dict[str, Any] = {
            "telegram_bot_token": SecretStr(SANDBOX_TOKEN),
            "telegram_api_url": self.base_url,
            "telegram_webhook_url": None,
            "admin_ids": admin_ids,
            "telegram_chat_id": SANDBOX_CHANNEL_ID,
            "private_channel_id": SANDBOX_PRIVATE_CHANNEL_ID,
            "telegram_channel_map": {"crypto": SANDBOX_SIGNALS_CHANNEL_ID},
            "crypto_pay_token": SecretStr(self.cryptopay.token),
            "crypto_pay_api_url": self.cryptopay.base_url,
            "krypto_express_api_key": SecretStr(self.kryptoexpress.api_key),
            "krypto_express_api_url": self.kryptoexpress.api_url,
            "krypto_express_callback_secret": SecretStr(KRYPTO_EXPRESS_CALLBACK_SECRET),
            "openrouter_api_url": self.openrouter.base_url,
            "openrouter_management_key": SecretStr(self.openrouter.management_key),
            "deepseek_key": SecretStr(self.deepseek.api_key),
            "deepseek_api_url": self.deepseek.base_url,
            "signal_webhook_secret": secret,
        }
        if self.s3 is not None:
            overrides.update(datasets_s3_endpoint_url=self.s3.base_url, datasets_s3_bucket=SANDBOX_S3_BUCKET,
                             datasets_s3_access_key_id=SecretStr(self.s3.access_key_id),
                             datasets_s3_secret_access_key=SecretStr(self.s3.secret_access_key),
                             datasets_s3_region=self.s3.region)
        if database_url:
            overrides["database_url"] = database_url
        elif "DATABASE_URL" not in os.environ:  # a fresh database each time, unless told otherwise
            overrides["database_url"] = fresh_sqlite(SANDBOX_DB)
        # model_copy does not validate: every value above already has the field's type.
        self.settings = settings.model_copy(update=overrides)
        return self.settings

    def _show_transfer(self, transfer: dict) -> None:
        """@CryptoBot tells the receiver of a transfer; the sandbox shows it in their chat."""
        state = self.telegram.chats.get(transfer["user_id"])
        if state is None:
            return
        sender = {"id": CRYPTOBOT_ID, "is_bot": True, "first_name": "Crypto Bot", "username": "CryptoBot"}
        language = str(self.telegram.users.get(transfer["user_id"], {}).get("language_code") or "")
        amount, asset, shop = transfer["amount"], transfer["asset"], self.cryptopay.app_name
        if language.startswith("ru"):  # @CryptoBot speaks its user's language
            text = f"💸 @CryptoBot: вы получили {str(amount).replace('.', ',')} {asset} от {shop}"
        else:
            text = f"💸 @CryptoBot: you received {amount} {asset} from {shop}"
        if transfer.get("comment"):
            text += f"\n{transfer['comment']}"
        self.telegram._new_message(state, sender, {"text": text}, from_bot=False)

    def bind_bot(self, web_port: int, host: str = "127.0.0.1") -> None:
        """Point the payment stand-ins' webhooks at the bot's HTTP app on ``web_port``."""
        base = f"http://{host}:{web_port}"
        self.cryptopay.webhook_url = f"{base}/webhooks/cryptopay"
        self.kryptoexpress.callback_url = f"{base}/webhooks/kryptoexpress"
        self.operator.bind(base, self.operator.secret)

    @property
    def chat_url(self) -> str:
        """The web chat's address."""
        return self.webchat.url if self.telegram.base_url else self.base_url

    async def stop(self) -> None:
        """Stop every stand-in (each is stopped even if another fails)."""
        for stand_in in (self.s3, self.deepseek, self.openrouter, self.kryptoexpress, self.cryptopay, self.telegram):
            if stand_in is None:
                continue
            try:
                await stand_in.stop()
            except Exception:
                log.exception("stopping %s failed", type(stand_in).__name__)


@contextlib.asynccontextmanager
async def running_sandbox(
    data_dir: Path | str | None = None, *, port: int = 0, rate_limit: float | None = None,
    pre_checkout_timeout: float | None = None, s3: bool = False, **overrides: Any,
) -> AsyncIterator[Sandbox]:
    """Start the sandbox and the real bot against it; yield the :class:`Sandbox` (``.app`` is the
    started ``bot.app.App``, ``.settings`` its settings).

    The database is a fresh SQLite file in ``data_dir`` (a temporary directory if None) unless
    ``database_url`` is given. ``overrides`` are further settings (e.g. ``admin_ids=[9001]``);
    the bot's HTTP app listens on a free port unless ``web_port`` is given; ``s3`` runs the S3 stand-in
    (``sb.s3``) and points DATASETS_S3_* at it.
    """
    from bot.app import App  # the bot pulls in aiogram, the database, ...; only when needed

    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="sandbox-"))
        database_url = overrides.pop("database_url", None) or \
            f"sqlite+aiosqlite:///{Path(data_dir) / 'sandbox.db'}"
        base = Settings(_env_file=None, **{"web_port": 0, **overrides})
        sandbox = Sandbox(rate_limit=rate_limit, s3=s3)
        if pre_checkout_timeout is not None:
            sandbox.telegram.pre_checkout_timeout = pre_checkout_timeout
        settings = await sandbox.start(base, port=port, database_url=database_url, announce=False)
        app = App(settings)
        try:
            await app.start()
            sandbox.app = app
            sandbox.bind_bot(app.port or settings.web_port)
            yield sandbox
        finally:
            try:
                await app.stop()
            except Exception:
                log.exception("stopping the bot failed")
            await sandbox.stop()


#: What the curl example posts: a signal every plan's filters let through.
EXAMPLE_SIGNAL = {"id": "curl-1", "ecosystem": "crypto", "symbol": "SOL/USDT", "side": "long",
                  "entry": "142.5", "take_profits": ["150", "158"], "stop_loss": "136", "timeframe": "4h"}


def ingest_help(bot_url: str, secret: str) -> str:
    """What the sandbox prints at start: the ingest secret and a curl example that posts a signal
    (signed as README "Security" says: hex HMAC-SHA256 over ``"{timestamp}." + body``)."""
    body = json.dumps(EXAMPLE_SIGNAL, separators=(",", ":"))
    return (
        f"Ingest is on: SIGNAL_WEBHOOK_SECRET={secret}\n"
        "Post a signal from a shell (or use the web chat's operator panel):\n"
        f"  secret={shlex.quote(secret)}\n"
        f"  body={shlex.quote(body)}\n"
        "  ts=$(date +%s); sig=$(printf '%s.%s' \"$ts\" \"$body\" | openssl dgst -sha256 -hmac \"$secret\""
        " | awk '{print $NF}')\n"
        f"  curl -s {bot_url}/api/signals -H \"X-Timestamp: $ts\" -H \"X-Signature: $sig\""
        " -H 'Content-Type: application/json' -d \"$body\""
    )


def api_help(bot_url: str) -> str:
    """Where the developer API and its docs are (a key comes from /api in the web chat)."""
    return (f"Developer API: {bot_url}/api/v1 (docs: {bot_url}/api/v1/docs); create a key with /api, then:\n"
            f"  curl -s {bot_url}/api/v1/signals -H \"Authorization: Bearer $KEY\"")


def fresh_sqlite(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"
