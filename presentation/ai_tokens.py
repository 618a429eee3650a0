"""AI-token wording: the key delivery message, what a refund takes back, the /orders credit line and the
models' price per million tokens. `ai_tokens_product` is the product's registration with this wording."""

from __future__ import annotations

from decimal import Decimal

from aiogram.utils.i18n import gettext as _

from presentation.formatting import money_text, number, usd
from services import ai_tokens
from services.ai_tokens import IssuedKey, price_per_million
from services.openrouter import ModelPrice
from services.products import Product, ProductParts


class AiTokenTexts:
    """services.ai_tokens.AiTokenWording in the reader's language (HTML)."""

    def delivered(self, issued: IssuedKey) -> str:
        return _(
            "🤖 <b>Your AI tokens are ready</b>\n\n"
            "Model: <code>{model}</code> · {tokens} tokens\n"
            "API key (shown only once — save it now):\n<code>{key}</code>\n\n"
            "Base URL: <code>{base_url}</code>\n"
            "Example:\n<pre>curl {base_url}/chat/completions \\\n"
            "  -H \"Authorization: Bearer {key}\" \\\n"
            "  -H \"Content-Type: application/json\" \\\n"
            "  -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'</pre>\n"
            "Check what's left any time in /orders."
        ).format(model=issued.model, tokens=number(issued.tokens), key=issued.key, base_url=issued.base_url)

    def takes_back(self, key_last4: str | None) -> str:
        if key_last4:
            return _("the API key …{last4} is switched off at once").format(last4=key_last4)
        return _("nothing: no key was delivered yet, and none will be")

    def taken_back(self, key_last4: str | None) -> str:
        if key_last4:
            return _("🔑 Your API key …{last4} has been switched off.").format(last4=key_last4)
        return _("🔑 No key will be issued for this order.")

    def credit_left(self, key_last4: str, left: Decimal, limit: Decimal) -> str:
        return _("🔑 Key …{last4}: {left} of {limit} credit left").format(
            last4=key_last4, left=money_text(left), limit=money_text(limit))


def per_million(model: ModelPrice, markup: Decimal) -> str:
    """Our price for a million output tokens, e.g. "$1.23" (the model buttons)."""
    return usd(int(price_per_million(model, markup) * 100))


def ai_tokens_product(parts: ProductParts) -> Product:
    """The AI-token product (services.ai_tokens.ai_tokens_product) told in these words."""
    return ai_tokens.ai_tokens_product(parts, AiTokenTexts())
