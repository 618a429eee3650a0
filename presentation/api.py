"""Developer API wording: the /api screens (keys, credit, webhook), the credit product's messages, the
webhook worker's notice, and `api_credit_product`, the API-credit product's registration with this wording."""

from __future__ import annotations

import html
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from db.models_api import ApiKey
from db.models_webhooks import ApiWebhook, ApiWebhookDelivery
from presentation.formatting import datetime_text, money_text, usd
from services import api_credit
from services.api_credit import MAX_CENTS, MIN_CENTS, CreditAdded
from services.api_keys import MAX_KEYS
from services.api_webhooks import SIGNAL_CREATED, Refusal
from services.ledger import LedgerLine
from services.placed import PlaceProblem
from services.products import Product, ProductParts


def when(moment: datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return _("never")
    return datetime_text(moment, tz)


def key_label(key: ApiKey) -> str:
    """A key's button: its name and first characters (plain text)."""
    return f"🔑 {key.name} · {key.prefix}…"


def key_line(key: ApiKey, tz: ZoneInfo) -> str:
    line = _("🔑 <b>{name}</b> <code>{prefix}…</code>\ncreated {created} · last used {used}").format(
        name=html.escape(key.name), prefix=key.prefix, created=when(key.created_at, tz),
        used=when(key.last_used_at, tz))
    if key.grace_until is not None:
        line += "\n" + _("rolled: works until {until}").format(until=when(key.grace_until, tz))
    return line


def home(keys: list[ApiKey], credit: Decimal, tz: ZoneInfo, base_url: str | None = None) -> str:
    """/api: the keys (never their secrets), the credit, and where the API's docs are."""
    lines = [_("🔌 <b>Developer API</b>"), "",
             _("Call the API with <code>Authorization: Bearer &lt;key&gt;</code>. Calls beyond your plan's daily "
               "quota are paid from your API credit."), "",
             _("💳 API credit: <b>{credit}</b>").format(credit=money_text(credit)), ""]
    if base_url:
        lines[3:3] = [_("📖 Endpoints and examples: {url}").format(url=html.escape(f"{base_url}/api/v1/docs")), ""]
    if keys:
        live = sum(1 for key in keys if key.grace_until is None)  # rolled keys in their grace do not count
        lines.append(_("Your keys ({count} of {max}):").format(count=live, max=MAX_KEYS))
        lines.extend(key_line(key, tz) for key in keys)
    else:
        lines.append(_("You have no API keys yet."))
    return "\n".join(lines)


def ask_name() -> str:
    return _("✍️ Send a name for the new key (e.g. \"trading bot\"), up to 64 characters.\n\n/cancel to stop.")


def bad_name() -> str:
    return _("Please send a name of 1 to 64 characters. /cancel to stop.")


def too_many_keys() -> str:
    return _("You already have {max} keys. Revoke one you no longer use first.").format(max=MAX_KEYS)


def key_shown(key: ApiKey, raw: str) -> str:
    """The key itself, once: one unbroken token the user can copy."""
    return _("🔑 <b>{name}</b>: your new API key (shown only once — save it now):\n\n<code>{key}</code>\n\n"
             "Use it as <code>Authorization: Bearer …</code>. We keep only a fingerprint of it: if you lose it, "
             "roll it in /api.").format(name=html.escape(key.name), key=raw)


def key_card(key: ApiKey, tz: ZoneInfo) -> str:
    return key_line(key, tz) + "\n\n" + _("Roll: a new key replaces this one (same name). Revoke: it stops "
                                          "working at once.")


def ask_grace(key: ApiKey) -> str:
    return _("🔄 Roll <b>{name}</b> <code>{prefix}…</code>: you get a new key now. How long may the old one keep "
             "working, while you update your programs?").format(name=html.escape(key.name), prefix=key.prefix)


def grace_label(hours: int) -> str:
    if hours == 0:
        return _("Stop it now")
    return _("1 hour") if hours == 1 else _("{hours} hours").format(hours=hours)


def rolled(key: ApiKey, raw: str, old_until: datetime | None, tz: ZoneInfo) -> str:
    text = key_shown(key, raw)
    if old_until is None:
        return text + "\n\n" + _("The old key no longer works.")
    return text + "\n\n" + _("The old key keeps working until {until}.").format(until=when(old_until, tz))


def ask_revoke(key: ApiKey) -> str:
    return _("Revoke <b>{name}</b> <code>{prefix}…</code>? Programs using it stop working at once; this cannot "
             "be undone.").format(name=html.escape(key.name), prefix=key.prefix)


def revoked(key: ApiKey) -> str:
    return _("🚫 Key <b>{name}</b> <code>{prefix}…</code> is revoked: it no longer works.").format(
        name=html.escape(key.name), prefix=key.prefix)


def key_gone() -> str:
    return _("This key no longer exists or was already switched off. See /api.")


def movement(line: LedgerLine) -> str:
    amount = ("+" if line.amount > 0 else "−") + money_text(abs(line.amount))
    label = {"order": _("top-up, order #{ref}"), "refund": _("refund of order #{ref}"),
             "api_call": _("API call"), "dataset": _("dataset")}.get(line.kind, line.kind).format(ref=line.ref)
    return f"{amount} · {label}"


def credit_screen(credit: Decimal, lines: list[LedgerLine]) -> str:
    text = [_("💳 <b>API credit</b>: {credit}").format(credit=money_text(credit)), "",
            _("Once your plan's daily API quota is used, each call is paid from this credit. Unused credit "
              "never expires."), ""]
    if lines:
        text.append(_("Latest movements:"))
        text.extend(movement(line) for line in lines)
        text.append("")
    text.append(_("Choose an amount:"))
    return "\n".join(text)


def ask_amount() -> str:
    return _("✍️ How much credit? Send an amount in USD from {low} to {high}, e.g. 7.50.\n\n/cancel to stop.").format(
        low=usd(MIN_CENTS), high=usd(MAX_CENTS))


def amount_problem(problem: PlaceProblem) -> str:
    if problem == PlaceProblem.TOO_FEW:
        return _("The smallest top-up is {low}. Send an amount from {low} to {high}.").format(
            low=usd(MIN_CENTS), high=usd(MAX_CENTS))
    if problem == PlaceProblem.TOO_MANY:
        return _("The largest top-up is {high}. Send an amount from {low} to {high}.").format(
            low=usd(MIN_CENTS), high=usd(MAX_CENTS))
    return _("Please send an amount in USD, e.g. 7.50, from {low} to {high}. /cancel to stop.").format(
        low=usd(MIN_CENTS), high=usd(MAX_CENTS))


# ------------------------------------------------------------------------------------------ webhook

def _signing() -> str:
    return _("Each request is signed: <code>X-Signature</code> = hex HMAC-SHA256 with your secret over "
             "<code>X-Timestamp</code>, a dot and the body. <code>X-Webhook-Id</code> stays the same when a "
             "delivery is retried.")


def delivery_line(delivery: ApiWebhookDelivery, tz: ZoneInfo) -> str:
    kind = _("signal") if delivery.kind == SIGNAL_CREATED else _("event")
    status = {"delivered": _("✅ received"), "queued": _("⏳ retrying"), "sending": _("⏳ sending"),
              "failed": _("❌ failed"), "skipped": _("skipped (no paid plan)"),
              "cancelled": _("cancelled")}.get(delivery.status, delivery.status)
    line = f"{when(delivery.created_at, tz)} · {kind} · {status}"
    if delivery.status_code is not None:
        line += f" · HTTP {delivery.status_code}"
    return line


def webhook_screen(hook: ApiWebhook | None, deliveries: list[ApiWebhookDelivery], paid: bool, tz: ZoneInfo) -> str:
    """The webhook: its URL and state and the latest deliveries (never the secret)."""
    lines = [_("🔔 <b>Webhook</b>"), "",
             _("We POST every new signal and each of its events to your URL as JSON, instead of you polling "
               "the API."), _signing(), ""]
    if not paid:
        lines += [_("Webhooks are included in paid plans: see /plans."), ""]
    if hook is None:
        lines.append(_("You have no webhook yet."))
        return "\n".join(lines)
    lines.append(_("URL: <code>{url}</code>").format(url=html.escape(hook.url)))
    if not hook.enabled:
        lines.append(_("⛔ Switched off {when}: deliveries failed for a day. Set the URL again to switch it "
                       "back on.").format(when=when(hook.disabled_at, tz)))
    elif hook.failing_since is not None:
        lines.append(_("⚠️ Deliveries failing since {when}; we keep retrying for 24 hours.").format(
            when=when(hook.failing_since, tz)))
    else:
        lines.append(_("✅ On"))
    lines.append("")
    if deliveries:
        lines.append(_("Latest deliveries:"))
        lines.extend(delivery_line(d, tz) for d in deliveries)
    else:
        lines.append(_("No deliveries yet."))
    return "\n".join(lines)


def ask_webhook_url() -> str:
    return _("✍️ Send the https URL we should POST signals to, e.g. https://example.com/hooks/signals\n\n"
             "/cancel to stop.")


def webhook_refused(refusal: Refusal) -> str:
    if refusal == Refusal.PAID_ONLY:
        return _("Webhooks are included in paid plans only: see /plans.")
    reason = {
        Refusal.NOT_HTTPS: _("The URL must start with https://."),
        Refusal.CREDENTIALS: _("The URL must not contain a user name or password."),
        Refusal.UNRESOLVABLE: _("We can't find that host name."),
        Refusal.PRIVATE: _("The URL must point to a public address, not a private, local or reserved one."),
    }.get(refusal, _("Please send a full URL such as https://example.com/hooks/signals."))
    return reason + " " + _("Send another URL, or /cancel to stop.")


def webhook_secret(secret: str) -> str:
    return _("Your signing secret (shown only once — save it now):\n\n<code>{secret}</code>").format(secret=secret)


def webhook_set(hook: ApiWebhook, secret: str) -> str:
    return "\n\n".join((_("🔔 Webhook set: <code>{url}</code>").format(url=html.escape(hook.url)),
                         webhook_secret(secret), _signing()))


def ask_rotate() -> str:
    return _("🔄 Make a new signing secret? The current one stops signing at once: update your receiver "
             "right after.")


def secret_rotated(secret: str) -> str:
    return _("🔄 New secret made; deliveries are signed with it from now on.") + "\n\n" + webhook_secret(secret)


def ask_remove_webhook() -> str:
    return _("Remove the webhook? Nothing more is posted to it, and its delivery log is deleted.")


def webhook_removed() -> str:
    return _("🗑 Webhook removed.")


def webhook_gone() -> str:
    return _("You have no webhook. See /api.")


def webhook_disabled(url: str) -> str:
    """The worker's notice when a hook is switched off."""
    return _("⛔ Your API webhook <code>{url}</code> was switched off: deliveries to it have failed for 24 hours. "
             "Fix the receiver, then set the URL again in /api → 🔔 Webhook.").format(url=html.escape(url))


class ApiCreditTexts:
    """services.api_credit.ApiCreditWording in the reader's language (HTML)."""

    def delivered(self, added: CreditAdded) -> str:
        return _("💳 <b>{amount} of API credit added.</b> Your API credit: {balance}. Manage keys in /api.").format(
            amount=money_text(added.amount), balance=money_text(added.balance))

    def takes_back(self, amount: Decimal) -> str:
        return _("the API credit from this order that is still unused (up to {amount}; credit already spent on "
                 "calls stays spent)").format(amount=money_text(amount))

    def taken_back(self, taken: Decimal) -> str:
        if taken > 0:
            return _("💳 {taken} of unused API credit has been removed.").format(taken=money_text(taken))
        return _("💳 No API credit from this order was left to remove.")

    def credit_left(self, balance: Decimal) -> str:
        return _("💳 API credit left: {balance}").format(balance=money_text(balance))


def api_credit_product(parts: ProductParts) -> Product:
    """The API-credit product (services.api_credit.api_credit_product) told in these words."""
    return api_credit.api_credit_product(parts, parts.ledger, ApiCreditTexts())
