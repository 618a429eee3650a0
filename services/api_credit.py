"""Prepaid API credit as a product: $5 / $10 / $25 or a custom amount ($1 to $500, whole cents), sold
through the payment core like every product. A paid order becomes a top-up in the ledger (once per
order); a refund takes back only the credit still unused (what is left of it, never what was spent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Protocol

from aiogram.utils.i18n import lazy_gettext as __

from db.models import Order
from services.ledger import Cause, LedgerService, api_credit_account
from services.money import cents_to_decimal, usd
from services.orders import OrderService, Status
from services.placed import Placed, PlaceProblem
from services.products import Command, Delivery, MenuEntry, Product, TakenBack

if TYPE_CHECKING:
    from services.products import ProductParts

PRODUCT = "api_credit"
PACKAGES_CENTS: tuple[int, ...] = (500, 1_000, 2_500)
MIN_CENTS = 100  # $1: below it a card or chain fee would eat the top-up
MAX_CENTS = 50_000  # $500: more than a year of over-quota calls for a busy integrator


def product_ref(cents: int) -> str:
    return f"usd:{cents}"


def parse_amount(value: str | None) -> tuple[int | None, PlaceProblem | None]:
    """(cents, None) or (None, problem) for a typed custom amount: "7", "7.50", "$12" are fine."""
    text = (value or "").strip().removeprefix("$").strip().replace(",", ".")
    if not text or not text.isascii() or text.count(".") > 1 or not text.replace(".", "").isdigit() \
            or len(text) > 12:
        return None, PlaceProblem.NOT_A_NUMBER
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None, PlaceProblem.NOT_A_NUMBER
    if amount != amount.quantize(Decimal("0.01")):
        return None, PlaceProblem.NOT_A_NUMBER  # fractions of a cent
    cents = int(amount * 100)
    if cents < MIN_CENTS:
        return None, PlaceProblem.TOO_FEW
    if cents > MAX_CENTS:
        return None, PlaceProblem.TOO_MANY
    return cents, None


class ApiCreditShop:
    def __init__(self, orders: OrderService, *, ttl: timedelta) -> None:
        self.orders, self.ttl = orders, ttl

    async def place(self, user_id: int, cents: int) -> Placed:
        """The pending order for `cents` of credit; an amount out of bounds (a forged button) is refused."""
        if cents < MIN_CENTS:
            return Placed(problem=PlaceProblem.TOO_FEW)
        if cents > MAX_CENTS:
            return Placed(problem=PlaceProblem.TOO_MANY)
        order = await self.orders.create(
            user_id=user_id, product=PRODUCT, product_ref=product_ref(cents), amount_cents=cents, ttl=self.ttl,
            title=f"API credit · {usd(cents)}", details={"credit_usd": str(cents_to_decimal(cents))})
        return Placed(order=order)


@dataclass(frozen=True, slots=True)
class CreditAdded:
    amount: Decimal  # this order's credit
    balance: Decimal  # the user's credit now


class ApiCreditWording(Protocol):
    """How the fulfiller's results are put to people (presentation.api.ApiCreditTexts), in the reader's
    locale."""

    def delivered(self, added: CreditAdded) -> str: ...

    def takes_back(self, amount: Decimal) -> str: ...

    def taken_back(self, taken: Decimal) -> str: ...

    def credit_left(self, balance: Decimal) -> str:
        """An /orders line: the user's API credit now (plain text)."""
        ...


def order_credit(order: Order) -> Decimal:
    return Decimal((order.details or {}).get("credit_usd") or cents_to_decimal(order.amount_cents))


class ApiCreditFulfiller:
    """Records the paid credit in the ledger, once per order (the top-up's cause is the order)."""

    product = PRODUCT

    def __init__(self, ledger: LedgerService, wording: ApiCreditWording) -> None:
        self.ledger, self.wording = ledger, wording

    async def fulfil(self, order: Order) -> Delivery:
        amount = order_credit(order)
        await self.ledger.top_up(order.user_id, amount, Cause("order", str(order.id)))
        added = CreditAdded(amount, await self.ledger.credit(order.user_id))
        return Delivery(text=lambda: self.wording.delivered(added), record={"credit_usd": str(amount)})

    def takes_back(self, order: Order) -> str:
        return self.wording.takes_back(order_credit(order))

    async def revoke(self, order: Order) -> TakenBack:
        """Take back what is left of this order's credit (all of it if unused, none if spent). Before the
        top-up nothing is taken (the fulfilment worker calls this again if a top-up lands afterwards)."""
        account = api_credit_account(order.user_id)
        if await self.ledger.moved(account, Cause("order", str(order.id))) is None:
            taken = Decimal(0)
        else:
            taken = await self.ledger.take_back(order.user_id, order_credit(order), Cause("refund", str(order.id)))
        return TakenBack(lambda: self.wording.taken_back(taken),
                         {"credit_taken_usd": str(taken), "credit_usd": str(order_credit(order))})


def api_credit_product(parts: ProductParts, ledger: LedgerService, wording: ApiCreditWording) -> Product:
    """API credit as the app sells it, told in `wording` (the app registers presentation.api.api_credit_product;
    handlers: handlers/user/api.py). /orders shows the credit left under the latest credit order."""

    async def order_lines(orders: list[Order]) -> dict[int, list[str]]:
        mine = [o for o in orders if o.product == PRODUCT and o.status == Status.FULFILLED]
        if not mine:
            return {}
        latest = max(mine, key=lambda o: o.id)
        return {latest.id: [wording.credit_left(await ledger.credit(latest.user_id))]}

    return Product(
        id=PRODUCT, name=__("API credit"), fulfiller=ApiCreditFulfiller(ledger, wording), order_lines=order_lines,
        menu=MenuEntry("api", __("🔌 Developer API")),
        commands=(Command("api", __("Developer API keys and credit"),
                          help=__("/api — developer API: your keys (create, roll, revoke) and prepaid credit")),))
