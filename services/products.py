"""A product is one registration (`Product`): its id, name, fulfiller, /orders lines, menu entry and
commands. The app builds its `Catalog` once (`build_catalog`) and everything else reads it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from db.models import Order

if TYPE_CHECKING:  # the shops import this module: their types are only named here
    from aiogram import Bot

    from config.settings import Settings
    from db.engine import Database
    from services.ai_tokens import AiTokenShop
    from services.channel import PrivateChannel
    from services.checkout import CheckoutService
    from services.earnings import EarningsService
    from services.ledger import LedgerService
    from services.marketplace import MarketplaceService
    from services.openrouter import OpenRouterClient
    from services.orders import OrderService
    from services.plan_sales import PlanShop
    from services.subscriptions import SubscriptionService
    from services.users import UserService
    from services.vault import SecretVault


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the buyer is sent, and what is kept about it (never a secret).

    `text` renders the message and `link` its button (label, URL), if any; both are called in the buyer's
    locale."""

    text: Callable[[], str]
    record: dict = field(default_factory=dict)
    link: Callable[[], tuple[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class TakenBack:
    """What a refund took back. `text` says it to the buyer and the admin (called in their locale);
    `record` goes to the audit log."""

    text: Callable[[], str]
    record: dict = field(default_factory=dict)


class FulfilmentFailed(Exception):
    """Fulfilment cannot succeed by retrying (e.g. the product no longer exists)."""


class Fulfiller(Protocol):
    product: str

    async def fulfil(self, order: Order) -> Delivery:
        """Deliver `order`; idempotent per order id (a retried job may call it again)."""
        ...

    def takes_back(self, order: Order) -> str:
        """What refunding `order` will take back, in words, for the admin's confirmation."""
        ...

    async def revoke(self, order: Order) -> TakenBack:
        """Take back what `order` delivered, at once, so nothing of it stays usable. Idempotent (a
        retried refund may call it again) and safe before delivery (nothing to take back yet).
        Raises when it could not be done; the refund retries it."""
        ...


Text = Callable[[], str]
"""Translatable wording: a lazy gettext proxy or a function, turned into text in the reader's locale."""


@dataclass(frozen=True, slots=True)
class Command:
    """One bot command, declared once: the command menu (setMyCommands), /help, the admin panel's
    howto and the refusal filter all read it. `menu` None: not in the command menu; `help` / `howto`:
    its line in /help / in the admin howto (None: not there); `admin`: only admins may run it
    (anyone else gets a plain refusal)."""

    name: str
    menu: Text | str | None = None
    help: Text | str | None = None
    howto: Text | str | None = None
    admin: bool = False


@dataclass(frozen=True, slots=True)
class MenuEntry:
    """A main-menu button: it sends `Menu(section=section)` (bot.keyboards), which the product handles."""

    section: str
    label: Text | str


OrderLines = Callable[[list[Order]], Awaitable[dict[int, list[str]]]]
"""Given a buyer's orders (any product's), the lines /orders shows under this product's ones: live state
such as credit left. Called in the buyer's locale; plain text, escaped by the caller's wording."""


@dataclass(frozen=True, slots=True)
class Product:
    """Everything the app knows about a product, declared in one place. `router` builds the handlers of
    a product whose handlers do not live in handlers/ (e.g. one added by a plug-in or a test)."""

    id: str
    name: Text | str
    fulfiller: Fulfiller
    order_lines: OrderLines | None = None
    menu: MenuEntry | None = None
    commands: tuple[Command, ...] = ()
    router: Callable[[], Any] | None = None


def text(value: Text | str | None) -> str:
    """Wording in the current locale (lazy proxies and functions are resolved now)."""
    if value is None:
        return ""
    if isinstance(value, str) or not callable(value) or hasattr(value, "value"):  # str, or babel's LazyProxy
        return str(value)
    return value()


class Catalog:
    """The products on sale, in menu order. Checkout, fulfilment, refunds, /orders, analytics, /help,
    the main menu and the command lists read it."""

    def __init__(self, products: Iterable[Product]) -> None:
        self.products: tuple[Product, ...] = tuple(products)
        ids = [p.id for p in self.products]
        if len(set(ids)) != len(ids):
            raise ValueError(f"a product is registered twice: {ids}")
        for product in self.products:
            _NAMES[product.id] = product.name

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products)

    def __contains__(self, product_id: object) -> bool:
        return any(p.id == product_id for p in self.products)

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.products]

    @property
    def fulfillers(self) -> dict[str, Fulfiller]:
        return {p.id: p.fulfiller for p in self.products}

    @property
    def commands(self) -> list[Command]:
        return [c for p in self.products for c in p.commands]

    @property
    def menu(self) -> list[MenuEntry]:
        return [p.menu for p in self.products if p.menu is not None]

    def routers(self) -> list:
        return [p.router() for p in self.products if p.router is not None]

    async def order_lines(self, orders: list[Order]) -> dict[int, list[str]]:
        """Every product's live-state lines for these orders, by order id."""
        lines: dict[int, list[str]] = {}
        for product in self.products:
            if product.order_lines is None or not any(o.product == product.id for o in orders):
                continue
            for order_id, more in (await product.order_lines(orders)).items():
                lines.setdefault(order_id, []).extend(more)
        return lines


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductParts:
    """What a product is built from: the app's parts that exist before its catalog (bot/wiring.py builds
    them; fulfilment, payments and refunds come after, as they read the catalog)."""

    settings: Settings
    db: Database
    bot: Bot
    users: UserService
    orders: OrderService
    checkout: CheckoutService
    openrouter: OpenRouterClient
    vault: SecretVault
    ai_tokens: AiTokenShop
    subscriptions: SubscriptionService
    channel: PrivateChannel
    plan_shop: PlanShop
    ledger: LedgerService
    marketplace: MarketplaceService
    earnings: EarningsService


ProductBuilder = Callable[[ProductParts], Product]
"""Builds a product from the app's parts, e.g. `ai_tokens_product(parts)`."""

_REGISTERED: list[ProductBuilder] = []
_NAMES: dict[str, Text | str] = {}


def register(builder: ProductBuilder) -> ProductBuilder:
    """Add a product to every app built from now on (after the built-in ones). Usable as a decorator."""
    _REGISTERED.append(builder)
    return builder


def unregister(builder: ProductBuilder) -> None:
    _REGISTERED.remove(builder)


@contextmanager
def registered(*builders: ProductBuilder) -> Iterator[None]:
    """Products registered for the apps built inside the block (tests, plug-ins that come and go)."""
    for builder in builders:
        register(builder)
    try:
        yield
    finally:
        for builder in builders:
            unregister(builder)


def build_catalog(parts: ProductParts, built_in: Iterable[ProductBuilder]) -> Catalog:
    """The app's products: the built-in ones, then every registered one, each built from `parts`."""
    return Catalog(builder(parts) for builder in (*built_in, *_REGISTERED))


def display_name(product_id: str) -> str:
    """A product's name in the current locale (its id if no app has registered it)."""
    name = _NAMES.get(product_id)
    return text(name) if name is not None else product_id
