"""Admins: CSV import of wallets or trades (a document with the caption /import_whales) and
/whale_set to mark a wallet verified or set its X handle (ingest never sets those)."""

from __future__ import annotations

import html
import io

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.wiring import Services
from presentation.formatting import validation_reason
from services.whale_input import Invalid, parse_bool, parse_twitter
from services.whales import ImportReport

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_REASONS = 20


def usage() -> str:
    return _("Send a CSV file with the caption /import_whales.\n"
             "Wallets: <code>address,chain,label,twitter,verified</code>\n"
             "Trades: <code>id,wallet,chain,label,symbol,side,usd_value,pnl_usd,ts</code>")


def report_text(report: ImportReport) -> str:
    kinds = {"wallets": _("wallets"), "trades": _("trades")}
    lines = [_("📥 Import of {kind}: {accepted} accepted, {duplicates} already known, {rejected} rejected.").format(
        kind=kinds[report.kind], accepted=report.accepted, duplicates=report.duplicates,
        rejected=len(report.rejected))]
    for r in report.rejected[:MAX_REASONS]:
        lines.append(_("line {line}: {field} {reason}").format(line=r.index, field=html.escape(r.field),
                                                              reason=html.escape(validation_reason(r.reason))))
    if len(report.rejected) > MAX_REASONS:
        lines.append(_("…and {count} more rejected lines.").format(count=len(report.rejected) - MAX_REASONS))
    return "\n".join(lines)


async def import_csv(message: Message, bot: Bot, services: Services) -> None:
    whales = services.whales
    document = message.document
    if document.file_size and document.file_size > MAX_CSV_BYTES:
        await message.answer(_("That file is too big: up to 5 MB per import."))
        return
    buffer = await bot.download(document, destination=io.BytesIO())
    try:
        text = buffer.getvalue().decode("utf-8-sig")
    except UnicodeDecodeError:
        await message.answer(_("The file isn't UTF-8 text. Save it as CSV (UTF-8) and send it again."))
        return
    try:
        report = await whales.import_csv(text)
    except Invalid as exc:
        await message.answer(_("Nothing imported: {field} {reason}").format(
            field=html.escape(exc.field), reason=html.escape(validation_reason(exc.reason))) + "\n\n" + usage())
        return
    whales.forget_rankings()
    await message.answer(report_text(report))


async def import_usage(message: Message) -> None:
    await message.answer(usage())


async def whale_set(message: Message, command: CommandObject, services: Services) -> None:
    whales = services.whales
    parts = (command.args or "").split()
    if len(parts) < 3:
        await message.answer(_("Usage: /whale_set CHAIN ADDRESS verified=yes|no twitter=@handle|- label=Name"))
        return
    chain, address, options = parts[0], parts[1], parts[2:]
    changes: dict = {}
    try:
        for option in options:
            key, _sep, value = option.partition("=")
            if key == "verified":
                changes["verified"] = parse_bool(value, "verified")
            elif key == "twitter":
                changes["twitter"] = parse_twitter(value)
            elif key == "label":
                changes["label"] = value[:64] or None
            else:
                raise Invalid(key, "is not one of verified, twitter, label")
        wallet = await whales.set_wallet(address, chain, **changes)
    except Invalid as exc:
        await message.answer(_("Nothing changed: {field} {reason}").format(
            field=html.escape(exc.field), reason=html.escape(validation_reason(exc.reason))))
        return
    whales.forget_rankings()
    await message.answer(_("Saved: <code>{address}</code> ({chain}) · verified: {verified} · X: {twitter}").format(
        address=html.escape(wallet.address), chain=html.escape(wallet.chain),
        verified=_("yes") if wallet.verified else _("no"),
        twitter="@" + html.escape(wallet.twitter) if wallet.twitter else "—"))


def build_router() -> Router:
    router = Router(name="admin_whales")
    router.message.register(import_csv, Command("import_whales"), F.document)
    router.message.register(import_usage, Command("import_whales"))
    router.message.register(whale_set, Command("whale_set"))
    return router
