"""Shared wording: order states and payment-method names, translated."""

from __future__ import annotations

from aiogram.utils.i18n import gettext as _

from services.payments import registry as payment_registry
from services.products import display_name


def status_label(status: str) -> str:
    return {
        "pending": _("⏳ awaiting payment"),
        "paid": _("💰 paid, delivering"),
        "paid_over": _("💰 paid (overpaid), delivering"),
        "paid_partial": _("🟡 partly paid"),
        "paid_late": _("🟡 paid after expiry, under review"),
        "fulfilled": _("✅ delivered"),
        "fulfil_failed": _("⚠️ delivery failed, we're on it"),
        "expired": _("⌛️ expired"),
        "cancelled": _("✖️ cancelled"),
        "refunded": _("↩️ refunded"),
    }.get(status, status)


def asset_name(asset: str | None) -> str:
    """A provider's asset code as people read it: USDT_TRC20 -> "USDT (TRC20)"; XTR, USD unchanged."""
    if not asset:
        return ""
    coin, _sep, network = asset.partition("_")
    return f"{coin} ({network})" if network else coin


def provider_name(provider: str | None) -> str:
    """A payment provider's display name (its module says it); method labels come from checkout."""
    return payment_registry.display_name(provider)


def product_name(product: str) -> str:
    """The name the product was registered with (services.products), in the current locale."""
    return display_name(product)
