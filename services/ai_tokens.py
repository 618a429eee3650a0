"""AI-token packages: OpenRouter credit for a chosen model, sold with a markup, bought only after payment.

Price rule: base = tokens × the model's completion price per token; total = base × (1 + markup),
rounded up to the cent. An order whose total exceeds the cap is not sold. The buyer gets a
fresh OpenRouter key named `order-<id>` whose limit is the base cost; nothing is bought earlier.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Protocol

from aiogram.utils.i18n import lazy_gettext as __
from sqlalchemy import select

from db.engine import Database
from db.models import Order
from services.money import plain
from services.openrouter import KeyInfo, ModelPrice, OpenRouterClient, OpenRouterError
from services.orders import Status
from services.placed import Placed, PlaceProblem
from services.products import Command, Delivery, FulfilmentFailed, MenuEntry, Product, TakenBack
from services.vault import SecretVault

if TYPE_CHECKING:
    from services.products import ProductParts

log = logging.getLogger(__name__)

PRODUCT = "ai_tokens"
PACKAGES: tuple[tuple[str, int], ...] = (
    ("starter", 1_000), ("standard", 5_000), ("professional", 10_000), ("enterprise", 20_000))
MAX_INPUT_DIGITS = 9
MAX_PACKAGE_SCALE_DIGITS = 6  # a cheap model's packages are at most a million times PACKAGES
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Quote:
    model: str
    tokens: int
    base: Decimal  # USD we pay OpenRouter (the key's limit)
    total_cents: int  # USD cents the buyer pays


class PriceRules:
    def __init__(self, markup: Decimal, cap_usd: Decimal, min_tokens: int) -> None:
        self.markup, self.cap, self.min_tokens = markup, cap_usd, min_tokens

    def quote(self, model: ModelPrice, tokens: int) -> Quote:
        base = model.completion * tokens
        total = (base * (1 + self.markup)).quantize(CENT, rounding=ROUND_CEILING)
        return Quote(model.id, tokens, base, int(total * 100))

    def max_tokens(self, model: ModelPrice) -> int:
        """Most tokens of this model one order may hold under the cap (the cap is whole cents, so
        rounding the total up to the cent never crosses it)."""
        per_token = model.completion * (1 + self.markup)
        if per_token <= 0:
            return 0
        return int((self.cap / per_token).to_integral_value(rounding=ROUND_FLOOR))

    def sellable(self, model: ModelPrice) -> bool:
        return model.completion > 0 and self.max_tokens(model) >= self.min_tokens

    def packages(self, model: ModelPrice) -> list[tuple[str, Quote]]:
        """The packages on sale for this model, each at its own price. For a model so cheap that two of
        PACKAGES would cost the same (1,000, 5,000 and 10,000 tokens all at $0.01 tell a buyer nothing) the
        sizes are scaled up by tens, as long as no package that fits under the cap is lost; what still costs
        the same then is one package, the one with the most tokens."""
        limit = self.max_tokens(model)
        chosen: list[tuple[str, Quote]] = []
        for scale in (10**k for k in range(MAX_PACKAGE_SCALE_DIGITS + 1)):
            quotes = [(name, self.quote(model, tokens * scale)) for name, tokens in PACKAGES if tokens * scale <= limit]
            if scale > 1 and len(quotes) < len(chosen):
                break
            chosen = quotes
            if len({quote.total_cents for _name, quote in quotes}) == len(quotes):
                break
        by_price: dict[int, tuple[str, Quote]] = {}
        for name, quote in chosen:  # ascending tokens: the last of a price holds the most
            by_price[quote.total_cents] = (name, quote)
        return [package for package in by_price.values() if package[1].total_cents > 0]

    def parse_custom(self, text: str | None, model: ModelPrice) -> tuple[int | None, PlaceProblem | None]:
        """(tokens, None) or (None, problem): NOT_A_NUMBER, TOO_FEW or TOO_MANY."""
        value = (text or "").strip().replace(",", "").replace(" ", "")  # "5,000" and "5 000" are fine
        if not (value.isascii() and value.isdigit()):  # letters, signs, decimals, other scripts' digits
            return None, PlaceProblem.NOT_A_NUMBER
        if len(value) > MAX_INPUT_DIGITS:
            return None, PlaceProblem.TOO_MANY
        tokens = int(value)
        if tokens < self.min_tokens:
            return None, PlaceProblem.TOO_FEW
        if tokens > self.max_tokens(model):
            return None, PlaceProblem.TOO_MANY
        return tokens, None


class PriceBook:
    """Live OpenRouter prices for the offered models, refreshed in the background; the last good
    prices are kept while OpenRouter is down."""

    def __init__(self, client: OpenRouterClient, model_ids: list[str], *, max_age: float = 600,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.model_ids, self.max_age, self.clock = client, model_ids, max_age, clock
        self._prices: dict[str, ModelPrice] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> bool:
        async with self._lock:
            try:
                models = {m.id: m for m in await self.client.models()}
            except OpenRouterError as exc:
                log.warning("OpenRouter prices not refreshed (keeping the last good ones): %s", exc)
                return False
            self._prices = {mid: models[mid] for mid in self.model_ids if mid in models}
            missing = [mid for mid in self.model_ids if mid not in models]
            if missing:
                log.warning("models not offered by OpenRouter: %s", ", ".join(missing))
            self._fetched_at = self.clock()
            return True

    async def models(self) -> list[ModelPrice]:
        """The offered models in configured order; empty only if prices were never fetched."""
        if self._fetched_at is None or self.clock() - self._fetched_at > self.max_age:
            await self.refresh()
        return [self._prices[mid] for mid in self.model_ids if mid in self._prices]

    async def model(self, index: int) -> ModelPrice | None:
        if not 0 <= index < len(self.model_ids):
            return None
        return self._prices.get(self.model_ids[index]) if await self.models() else None

    def index(self, model_id: str) -> int:
        return self.model_ids.index(model_id)


class Headroom:
    """Can the operator's OpenRouter account cover a new order's base cost?

    Free credit = account balance − credit still open on issued keys − base cost of orders paid
    but not yet delivered."""

    def __init__(self, client: OpenRouterClient, database: Database) -> None:
        self.client, self.db = client, database

    async def available(self) -> Decimal:
        balance = await self.client.credits()
        open_on_keys = sum((k.remaining or Decimal(0) for k in await self.client.keys()
                            if k.name.startswith("order-") and not k.disabled), Decimal(0))
        async with self.db.session() as session:
            rows = await session.scalars(select(Order.details).where(
                Order.product == PRODUCT, Order.status.in_((Status.PAID, Status.PAID_OVER))))
            reserved = sum((Decimal(d["base_usd"]) for d in rows), Decimal(0))
        return balance - open_on_keys - reserved

    async def available_or_none(self) -> Decimal | None:
        try:
            return await self.available()
        except OpenRouterError as exc:
            log.warning("OpenRouter headroom unknown: %s", exc)
            return None

    async def covers(self, base: Decimal) -> bool:
        """False also when OpenRouter cannot be asked: never sell what may not be deliverable."""
        available = await self.available_or_none()
        return available is not None and available >= base


def key_name(order_id: int) -> str:
    return f"order-{order_id}"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """What the buyer of an AI-token order is sent: the key (shown once, never kept in the order's
    record), its model and size, and where to use it."""

    key: str
    model: str
    tokens: int
    base_url: str


class AiTokenWording(Protocol):
    """How the fulfiller's results are put to people (presentation.ai_tokens.AiTokenTexts); each is
    called in the reader's locale. `key_last4` None: no key was delivered."""

    def delivered(self, issued: IssuedKey) -> str: ...

    def takes_back(self, key_last4: str | None) -> str: ...

    def taken_back(self, key_last4: str | None) -> str: ...

    def credit_left(self, key_last4: str, left: Decimal, limit: Decimal) -> str:
        """An /orders line: USD left of the key's limit (plain text)."""
        ...


class AiTokenFulfiller:
    """Creates the order's OpenRouter key. Idempotent: an existing `order-<id>` key is looked up first.

    The secret is kept encrypted (services.vault) from creation until the delivery is recorded: a
    retry after a crash (even one after the message went out) sends the same key again. A key whose
    secret was never kept (the attempt died right after creating it, before anyone saw it) is
    deleted and issued afresh, so the buyer always ends with exactly one working key."""

    product = PRODUCT

    def __init__(self, client: OpenRouterClient, vault: SecretVault, wording: AiTokenWording) -> None:
        self.client, self.vault, self.wording = client, vault, wording

    async def fulfil(self, order: Order) -> Delivery:
        if not self.client.can_issue_keys:
            raise FulfilmentFailed("OPENROUTER_MANAGEMENT_KEY is not set")
        name, limit = key_name(order.id), Decimal(order.details["base_usd"])
        try:
            existing = await self.client.find_key(name)
            kept = await self.vault.get(order.id) if existing else None
            key_hash, _sep, key = (kept or "").partition(":")
            if not any(k.hash == key_hash and not k.disabled for k in existing):
                key_hash = key = ""
            for stale in existing:
                if stale.hash != key_hash:
                    log.warning("order %s: replacing key %s left by an earlier attempt", order.id, stale.hash[:8])
                    await self.client.delete_key(stale.hash)
            if not key:
                issued = await self.client.create_key(name, limit)
                key_hash, key = issued.info.hash, issued.key
                await self.vault.put(order.id, f"{key_hash}:{key}")
            else:
                log.warning("order %s: delivering the key issued by an earlier attempt again", order.id)
        except OpenRouterError as exc:
            if not exc.retryable:
                raise FulfilmentFailed(str(exc)) from None
            raise
        issued = IssuedKey(key, order.details["model"], order.details["tokens"], self.client.api_url)
        return Delivery(
            text=lambda: self.wording.delivered(issued),
            record={"key_hash": key_hash, "key_last4": key[-4:], "limit_usd": format(limit, "f"),
                    "model": issued.model, "tokens": issued.tokens})

    def takes_back(self, order: Order) -> str:
        return self.wording.takes_back((order.delivery or {}).get("key_last4") or None)

    async def revoke(self, order: Order) -> TakenBack:
        """Switch off every key made for the order (the delivered one, and any an unfinished
        attempt left); usage so far stays on OpenRouter's record."""
        keys = [k for k in await self.client.find_key(key_name(order.id)) if not k.disabled]
        used = Decimal(0)
        for info in keys:
            used += (await self.client.disable_key(info.hash)).usage
        last4 = (order.delivery or {}).get("key_last4")
        record = {"keys_disabled": [k.hash[:12] for k in keys], "used_usd": plain(used), "key_last4": last4}
        return TakenBack(lambda: self.wording.taken_back(last4 or None), record)


class AiTokenShop:
    def __init__(self, prices: PriceBook, rules: PriceRules, headroom: Headroom, orders, *,
                 ttl) -> None:
        self.prices, self.rules, self.headroom, self.orders, self.ttl = prices, rules, headroom, orders, ttl

    @property
    def can_deliver(self) -> bool:
        """Whether keys can be issued at all (OpenRouter's management key is set)."""
        return self.prices.client.can_issue_keys

    async def place(self, user_id: int, model_index: int, tokens: int) -> Placed:
        """Quote, check the operator can deliver, and create the pending order. Buys nothing."""
        if not self.can_deliver:
            return Placed(problem=PlaceProblem.NOT_CONFIGURED)
        model = await self.prices.model(model_index)
        if model is None or not self.rules.sellable(model):
            return Placed(problem=PlaceProblem.UNKNOWN_MODEL)
        if tokens < self.rules.min_tokens:
            return Placed(problem=PlaceProblem.TOO_FEW)
        if tokens > self.rules.max_tokens(model):
            return Placed(problem=PlaceProblem.TOO_MANY)
        quote = self.rules.quote(model, tokens)
        if not await self.headroom.covers(quote.base):
            return Placed(problem=PlaceProblem.NO_HEADROOM)
        order = await self.orders.create(
            user_id=user_id, product=PRODUCT, product_ref=model.id, amount_cents=quote.total_cents, ttl=self.ttl,
            title=f"{tokens:,} tokens · {model.name}"[:200],
            details={"model": model.id, "tokens": tokens, "base_usd": plain(quote.base),
                     "completion_price": plain(model.completion),
                     "markup": format(self.rules.markup, "f")})
        return Placed(order=order)

    async def credit_left(self, orders: list[Order]) -> dict[int, tuple[Decimal, Decimal]]:
        """(remaining, limit) USD of each delivered key, asked of OpenRouter; orders it can't answer for
        are left out."""
        keyed = [o for o in orders if o.product == PRODUCT and (o.delivery or {}).get("key_hash")
                 and o.status != Status.REFUNDED]

        async def one(order: Order) -> tuple[int, KeyInfo | None]:
            try:
                return order.id, await self.prices.client.get_key(order.delivery["key_hash"])
            except OpenRouterError:
                return order.id, None

        results = await asyncio.gather(*(one(o) for o in keyed[:10]))
        return {oid: (info.remaining, info.limit) for oid, info in results
                if info is not None and info.limit is not None}


def price_per_million(model: ModelPrice, markup: Decimal) -> Decimal:
    """Our price (USD) for a million output tokens, for comparing models at a glance."""
    return (model.completion * 1_000_000 * (1 + markup)).quantize(CENT, rounding=ROUND_CEILING)


def ai_tokens_product(parts: ProductParts, wording: AiTokenWording) -> Product:
    """AI tokens as the app sells them, told in `wording` (the app registers
    presentation.ai_tokens.ai_tokens_product, which passes its own; handlers: handlers/user/ai_tokens.py).
    /orders shows the credit left on each delivered key, asked of OpenRouter."""
    shop = parts.ai_tokens

    async def order_lines(orders: list[Order]) -> dict[int, list[str]]:
        keys = {o.id: (o.delivery or {}).get("key_last4", "") for o in orders}
        return {order_id: [wording.credit_left(keys[order_id], left, limit)]
                for order_id, (left, limit) in (await shop.credit_left(orders)).items()}

    return Product(
        id=PRODUCT, name=__("AI tokens"), fulfiller=AiTokenFulfiller(parts.openrouter, parts.vault, wording),
        order_lines=order_lines, menu=MenuEntry("tokens", __("🤖 AI tokens")),
        commands=(Command("tokens", __("Buy AI tokens"),
                          help=__("/tokens — buy AI tokens: pick a model and a package, pay, get your API key")),))

