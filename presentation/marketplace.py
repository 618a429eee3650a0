"""Marketplace wording: /market (the providers on sale and a provider's card), /provider (the application and
the provider's dashboard), the admins' /providers queue, the applicant's notices, and `marketplace_product`,
the provider-subscription product's registration with this wording."""

from __future__ import annotations

import html
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from aiogram.utils.i18n import ngettext

from db.models import Order
from db.models_marketplace import Provider
from presentation.formatting import date_text, money_text, percent, usd
from services.earnings import Balance, Reversed
from services.marketplace import (
    PRODUCT,
    Problem,
    ProviderSubscriptionFulfiller,
    Review,
    State,
    Subscribed,
)
from services.orders import Status
from services.products import Command, MenuEntry, Product, ProductParts


def _e(value: str | None) -> str:
    return html.escape(value or "", quote=False)


def price_line(cents: int) -> str:
    return _("{price} / month").format(price=usd(cents))


def state_name(state: str) -> str:
    return {State.PENDING: _("under review"), State.APPROVED: _("approved"), State.REJECTED: _("rejected"),
            State.SUSPENDED: _("suspended")}.get(state, state)


# ------------------------------------------------------------------------------------------ /market

def card(provider: Provider, subscribers: int, until, tz: ZoneInfo) -> str:
    lines = [f"📡 <b>{_e(provider.name)}</b>", "", _e(provider.description), "",
             _("Markets: {ecosystems}").format(ecosystems=_e(", ".join(provider.ecosystems))),
             _("Price: {price}").format(price=price_line(provider.price_cents)),
             ngettext("{count} subscriber", "{count} subscribers", subscribers).format(count=subscribers)]
    if provider.approved_at is not None:
        lines.append(_("Verified since {date}: every signal is timestamped on arrival and hash-chained.").format(
            date=date_text(provider.approved_at, tz)))
    if until is not None:
        lines += ["", _("✅ You are subscribed until {date}; another month adds to it.").format(
            date=date_text(until, tz))]
    return "\n".join(lines)


def subscribe_label(provider: Provider) -> str:
    return _("Subscribe · {price}").format(price=price_line(provider.price_cents))


def not_on_sale() -> str:
    return _("This provider is not on sale now.")


# ------------------------------------------------------------------------------------------ /provider

def intro(provider: Provider | None, share: Decimal, days: int) -> str:
    lines = [_("📡 <b>Become a signal provider</b>"), "",
             _("Sell a monthly subscription to your signals. You set the price; you get {share} of each payment "
               "(the platform keeps the rest), payable {days} days after payment. You publish with the developer "
               "API; every signal is timestamped on arrival and hash-chained, so your track record is "
               "verifiable.").format(share=percent(share, digits=2, trim=True), days=days)]
    if provider is not None and provider.status == State.REJECTED:
        lines += ["", _("Your last application was rejected: {reason}").format(reason=_e(provider.reason or "—"))]
    return "\n".join(lines)


def ask_name() -> str:
    return _("Step 1 of 5. Your provider name (2–48 characters), as subscribers will see it:")


def ask_description() -> str:
    return _("Step 2 of 5. Describe your signals: style, markets, how often (10–600 characters):")


def ask_ecosystems() -> str:
    return _("Step 3 of 5. Your markets, separated by commas (e.g. crypto, forex):")


def ask_price(low: Decimal, high: Decimal) -> str:
    return _("Step 4 of 5. Your monthly price in USD, from {low} to {high}:").format(
        low=money_text(low), high=money_text(high))


def ask_payout() -> str:
    return _("Step 5 of 5. How should we pay you?")


def ask_address() -> str:
    return _("Send the address (with its network, e.g. TRC20:T…) your payouts should go to:")


def payout_label(method: str) -> str:
    return _("To this Telegram account (its crypto wallet)") if method == "telegram" else \
        _("An address (manual payout)")


def problem(found: Problem, low: Decimal, high: Decimal) -> str:
    return {
        Problem.NAME: _("The name must be 2 to 48 characters. Send it again:"),
        Problem.DESCRIPTION: _("The description must be 10 to 600 characters. Send it again:"),
        Problem.ECOSYSTEMS: _("Name 1 to 6 markets, such as crypto, forex (letters, digits, - and _). "
                              "Send them again:"),
        Problem.PRICE: _("Send the price as a number of US dollars, such as 25 or 19.99:"),
        Problem.PRICE_RANGE: _("The price must be from {low} to {high} a month. Send it again:").format(
            low=money_text(low), high=money_text(high)),
        Problem.ADDRESS: _("That does not look like an address (10–128 letters, digits, : . _ -). Send it again:"),
        Problem.ALREADY: _("You have already applied: see /provider."),
    }[found]


def summary(name: str, description: str, ecosystems: list[str], price_cents: int, method: str,
            address: str | None) -> str:
    lines = [_("Check your application:"), "", f"<b>{_e(name)}</b>", _e(description),
             _("Markets: {ecosystems}").format(ecosystems=_e(", ".join(ecosystems))),
             _("Price: {price}").format(price=price_line(price_cents)),
             _("Payout: {method}").format(method=payout_label(method))]
    if address:
        lines.append(f"<code>{_e(address)}</code>")
    return "\n".join(lines)


def applied() -> str:
    return _("📨 Application sent. An admin reviews it; you will get a message here.")


def pending(provider: Provider) -> str:
    return _("⏳ Your application as <b>{name}</b> is under review. You will get a message here.").format(
        name=_e(provider.name))


def dashboard(provider: Provider, subscribers: int, balance: Balance, tz: ZoneInfo) -> str:
    lines = [_("📡 <b>{name}</b> · {state}").format(name=_e(provider.name), state=state_name(provider.status))]
    if provider.status == State.SUSPENDED:
        lines.append(_("Publishing is closed: {reason}").format(reason=_e(provider.reason or "—")))
    lines += [_("Price: {price}").format(price=price_line(provider.price_cents)),
              ngettext("{count} subscriber", "{count} subscribers", subscribers).format(count=subscribers), "",
              _("💰 Balance: {amount}").format(amount=money_text(balance.payable))]
    if balance.debt > 0:
        lines.append(_("A refund after the hold left a debt of {amount}; your next earnings pay it back.").format(
            amount=money_text(balance.debt)))
    pending_line = _("⏳ Pending: {amount}").format(amount=money_text(balance.pending))
    if balance.next_release is not None:
        pending_line += " " + _("(next payable {date})").format(date=date_text(balance.next_release, tz))
    lines += [pending_line, _("✅ Paid: {amount}").format(amount=money_text(balance.paid)), ""]
    if provider.status == State.APPROVED:
        lines.append(_("📈 Publish step by step with /signal (or the button below)."))
        lines.append(_("Publish with your API keys (/api): <code>POST /api/v1/provider/signals</code> and "
                       "<code>POST /api/v1/provider/signals/{{id}}/events</code>. Your signals go only to your "
                       "subscribers.").format())
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ notices

def told(review: Review, provider: Provider) -> str:
    """What the applicant is told of an admin's decision."""
    name, reason = _e(provider.name), _e(provider.reason or "—")
    return {
        Review.APPROVE: _("✅ Your provider application <b>{name}</b> is approved. Publish step by step with "
                          "/signal, or with your API keys (/api); see /provider.").format(name=name),
        Review.REJECT: _("Your provider application <b>{name}</b> was rejected: {reason}. You may apply again "
                         "with /provider.").format(name=name, reason=reason),
        Review.SUSPEND: _("⛔ Your provider <b>{name}</b> is suspended: {reason}. Publishing is closed.").format(
            name=name, reason=reason),
        Review.REINSTATE: _("✅ Your provider <b>{name}</b> is reinstated: publishing is open again.").format(
            name=name),
    }[review]


def admins_new_application(provider: Provider) -> str:
    return _("📡 New provider application: <b>{name}</b> ({price}). Review it in /providers.").format(
        name=_e(provider.name), price=price_line(provider.price_cents))


# ------------------------------------------------------------------------------------------ /providers

def queue(providers: list[Provider]) -> str:
    if not providers:
        return _("📡 <b>Providers</b>\n\nNo applications and no providers yet.")
    waiting = sum(1 for p in providers if p.status == State.PENDING)
    return _("📡 <b>Providers</b>\n\n{count} waiting for review. Tap one:").format(count=waiting)


def queue_label(provider: Provider) -> str:
    mark = {State.PENDING: "⏳", State.APPROVED: "✅", State.SUSPENDED: "⛔"}.get(provider.status, "")
    return f"{mark} {provider.name} · {usd(provider.price_cents)}"


def admin_card(provider: Provider, subscribers: int, tz: ZoneInfo) -> str:
    lines = [f"📡 <b>{_e(provider.name)}</b> · {state_name(provider.status)}",
             _("User: <code>{user_id}</code> · applied {date}").format(user_id=provider.user_id,
                                                                        date=date_text(provider.created_at, tz)),
             "", _e(provider.description), "",
             _("Markets: {ecosystems}").format(ecosystems=_e(", ".join(provider.ecosystems))),
             _("Price: {price}").format(price=price_line(provider.price_cents)),
             _("Payout: {method}").format(method=payout_label(provider.payout_method))]
    if provider.payout_address:
        lines.append(f"<code>{_e(provider.payout_address)}</code>")
    lines.append(ngettext("{count} subscriber", "{count} subscribers", subscribers).format(count=subscribers))
    if provider.reason:
        lines.append(_("Reason: {reason}").format(reason=_e(provider.reason)))
    return "\n".join(lines)


def review_label(review: Review) -> str:
    return {Review.APPROVE: _("✅ Approve"), Review.REJECT: _("❌ Reject"), Review.SUSPEND: _("⛔ Suspend"),
            Review.REINSTATE: _("♻️ Reinstate")}[review]


def ask_reason(review: Review) -> str:
    return _("Send the reason for rejecting (the applicant sees it):") if review is Review.REJECT else \
        _("Send the reason for suspending (the provider sees it):")


def reviewed(review: Review, provider: Provider) -> str:
    return _("Done: <b>{name}</b> is now {state}; they were told.").format(
        name=_e(provider.name), state=state_name(provider.status))


def review_stale() -> str:
    return _("This provider is no longer in that state.")


# ------------------------------------------------------------------------------------------ the product

class MarketTexts:
    """The fulfiller's wording (services.marketplace.MarketWording), in the reader's locale."""

    def delivered(self, done: Subscribed) -> str:
        return _("✅ Subscribed to <b>{name}</b> until {date} (UTC). Their signals come here as they publish "
                 "them.").format(name=_e(done.provider), date=date_text(done.until))

    def takes_back(self, order: Order) -> str:
        return _("the unused time of this provider subscription; the provider's share of it is reversed")

    def taken_back(self, taken: timedelta, reversed_: Reversed) -> str:
        days = taken.days
        return ngettext("{count} unused day of the provider subscription was taken back.",
                        "{count} unused days of the provider subscription were taken back.", days).format(count=days)


def marketplace_product(parts: ProductParts) -> Product:
    """Provider subscriptions as the app sells them (handlers: handlers/user/marketplace.py). /orders shows how
    long the buyer's time with the provider runs."""
    market_, texts = parts.marketplace, MarketTexts()

    async def order_lines(orders: list[Order]) -> dict[int, list[str]]:
        lines: dict[int, list[str]] = {}
        latest: dict[int, Order] = {}
        for order in orders:
            if order.product == PRODUCT and order.status == Status.FULFILLED:
                provider_id = int((order.details or {}).get("provider_id") or 0)
                if provider_id and (provider_id not in latest or order.id > latest[provider_id].id):
                    latest[provider_id] = order
        for provider_id, order in latest.items():
            until = await market_.subscribed_until(order.user_id, provider_id)
            lines[order.id] = [_("Subscribed until {date}").format(date=date_text(until)) if until
                               else _("Subscription ended")]
        return lines

    return Product(
        id=PRODUCT, name=__("Provider subscription"),
        fulfiller=ProviderSubscriptionFulfiller(market_, parts.earnings, texts), order_lines=order_lines,
        menu=MenuEntry("market", __("🏪 Signal marketplace")),
        commands=(Command("market", __("Signal providers"), help=__("/market — signal providers: subscribe to one")),
                  Command("provider", __("Become a signal provider"),
                          help=__("/provider — apply as a signal provider; your provider dashboard")),
                  # an admin's /signal is the one-line house signal (handlers/admin/signals.py runs first)
                  Command("signal", __("Publish a signal (providers)"),
                          help=__("/signal — providers: publish a signal step by step, report its targets"),
                          howto=__("/signal ecosystem PAIR side entry targets stop [timeframe] [note] — post a "
                                   "signal"))))
