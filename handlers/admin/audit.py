"""/audit: the admin audit log, newest first, ten a page."""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Index
from bot.screens import reply_target, show
from bot.wiring import Services
from config.settings import Settings
from handlers.admin.panel import AdminMenu
from presentation.formatting import month_day


class AuditPage(CallbackData, prefix="aud"):
    page: Index


class AuditMiddleware(BaseMiddleware):
    """Records every admin command and button tap (who, what, target) before it runs; actions that
    change state also record their before/after themselves."""

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        audit = data["services"].audit
        if isinstance(event, Message) and event.text and event.text.startswith("/"):
            command, _sep, args = event.text.partition(" ")
            await audit.record(event.from_user.id, command.split("@")[0], args)
        elif isinstance(event, CallbackQuery) and event.data and not event.data.startswith("aud:"):
            await audit.record(event.from_user.id, "tap:" + event.data.split(":")[0], event.data)
        return await handler(event, data)


def page_view(entries, page: int, pages: int, settings: Settings) -> tuple[str, InlineKeyboardMarkup]:
    lines = [_("📜 <b>Audit log</b> — page {page} of {pages}").format(page=page + 1, pages=pages)]
    for e in entries:
        change = ""
        if e.before is not None or e.after is not None:
            change = f"\n   {html.escape(json.dumps(e.before, ensure_ascii=False), quote=False)} → " \
                     f"{html.escape(json.dumps(e.after, ensure_ascii=False), quote=False)}"
        # the action and its data as recorded (machine words, shown as code in every language)
        lines.append(f"{month_day(e.created_at, settings.tz, time=True)} · <code>{e.admin_id}</code> · "
                     f"<code>{html.escape(e.action)} {html.escape(e.target)}</code>{change}")
    if not entries:
        lines.append(_("Nothing recorded yet."))
    builder = InlineKeyboardBuilder()
    if page > 0:
        builder.button(text="◀️", callback_data=AuditPage(page=page - 1))
    if page + 1 < pages:
        builder.button(text="▶️", callback_data=AuditPage(page=page + 1))
    return "\n".join(lines), builder.as_markup()


async def audit_log(event: Message | CallbackQuery, services: Services) -> None:
    """/audit and the panel's Audit log button: the first page, as a new message."""
    entries, pages = await services.audit.page(0)
    text, markup = page_view(entries, 0, pages, services.settings)
    await (await reply_target(event)).answer(text, reply_markup=markup)


async def audit_page(query: CallbackQuery, callback_data: AuditPage, services: Services) -> None:
    entries, pages = await services.audit.page(max(0, callback_data.page))
    text, markup = page_view(entries, min(max(0, callback_data.page), pages - 1), pages, services.settings)
    await show(query, text, markup)


def build_router() -> Router:
    router = Router(name="admin_audit")
    router.message.register(audit_log, Command("audit"))
    router.callback_query.register(audit_log, AdminMenu.filter(F.action == "audit"))
    router.callback_query.register(audit_page, AuditPage.filter())
    return router
