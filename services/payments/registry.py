"""The payment providers: the one list of provider modules, and the enabled ones built from settings.

Adding a provider is a module in services/payments/ implementing `PaymentProvider` (base.py), one
entry in `PROVIDERS` and its settings (config/settings.py). Everything else (checkout's methods,
minimums, labels, webhook routes, polling, invoice messages, Telegram's payment updates, refunds)
asks the provider through this module or the built instance; nothing else names a provider.
"""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Bot

from config.settings import Settings
from services.payments.base import PaymentProvider, Wiring
from services.payments.cryptopay import CryptoPayProvider
from services.payments.kryptoexpress import KryptoExpressProvider
from services.payments.stars import StarsProvider

#: Every provider the app knows, in the order checkout offers their methods.
PROVIDERS: tuple[type[PaymentProvider], ...] = (StarsProvider, CryptoPayProvider, KryptoExpressProvider)


def build(settings: Settings, *, bot: Bot, public_url: Callable[[str], str | None] = lambda path: None
          ) -> dict[str, PaymentProvider]:
    """The enabled providers by id, in `PROVIDERS` order: those whose settings (credentials) are set."""
    wiring = Wiring(bot, public_url)
    enabled: dict[str, PaymentProvider] = {}
    for cls in PROVIDERS:
        provider = cls.from_settings(settings, wiring)
        if provider is not None:
            enabled[cls.name] = provider
    return enabled


def provider_class(provider_id: str | None) -> type[PaymentProvider] | None:
    return next((cls for cls in PROVIDERS if cls.name == provider_id), None)


def display_name(provider_id: str | None) -> str:
    """A provider's name as people read it (translated); an unknown id as it is, "—" for none."""
    cls = provider_class(provider_id)
    return cls.title() if cls is not None else (provider_id or "—")


def webhook_routes() -> dict[str, int]:
    """`POST /webhooks/{id}` -> its body cap, for every provider that has a webhook (enabled or not:
    a disabled one answers 404)."""
    return {f"/webhooks/{cls.name}": cls.webhook_max_bytes for cls in PROVIDERS if cls.webhook_max_bytes is not None}


def one_live_invoice(provider_id: str) -> bool:
    """Whether a new invoice of this provider supersedes the order's older live one."""
    cls = provider_class(provider_id)
    return cls is not None and cls.one_live_invoice


def editable_messages(provider_id: str) -> bool:
    """Whether the bot may edit this provider's invoice message (else it is the provider's own)."""
    cls = provider_class(provider_id)
    return cls is None or cls.editable_messages


def telegram_payments_provider() -> str | None:
    """The id of the provider paid through Telegram's own payment updates (pre_checkout_query,
    successful_payment, refunded_payment), if any."""
    return next((cls.name for cls in PROVIDERS if cls.telegram_payments), None)
