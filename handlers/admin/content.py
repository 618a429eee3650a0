"""Admins and the channel: /post_now [kind], /preview [kind] (Publish / Regenerate / Discard), /schedule."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import RowId
from bot.screens import acknowledge, refuse, show
from bot.wiring import Services
from config.settings import Settings
from handlers.admin.panel import AdminMenu, panel_keyboard
from presentation.content import with_header
from presentation.formatting import month_day, weekday_time
from processing.content import PostResult, PostStatus
from services.content import KINDS, ContentService, Draft


class DraftAction(CallbackData, prefix="cdraft"):
    action: str  # pub, regen, drop
    id: RowId


def draft_keyboard(draft_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("✅ Publish"), callback_data=DraftAction(action="pub", id=draft_id))
    builder.button(text=_("🔄 Regenerate"), callback_data=DraftAction(action="regen", id=draft_id))
    builder.button(text=_("🗑 Discard"), callback_data=DraftAction(action="drop", id=draft_id))
    builder.adjust(3)
    return builder.as_markup()


# What the admin reads for each kind (the kinds themselves are the /post_now and /preview arguments).
KIND_NAMES = {"market": __("market"), "tip": __("tip"), "promo": __("promo"), "community": __("community")}


def kind_name(kind: str) -> str:
    return str(KIND_NAMES.get(kind, kind))


def parse_kind(command: CommandObject) -> str | bool | None:
    """The kind asked for, None for "the next in rotation", False for a word that is not a kind."""
    arg = (command.args or "").strip().lower()
    if not arg:
        return None
    return arg if arg in KINDS else False


def usage(command: str) -> str:
    return _("Usage: /{command} [kind], kind is one of: {kinds}. Without a kind, the next one in the "
             "rotation.").format(command=command, kinds=", ".join(KINDS))


def draft_text(draft: Draft) -> str:
    header = _("📝 <b>Draft</b> · {kind} · {topic}").format(kind=kind_name(draft.kind), topic=html.escape(draft.topic))
    if draft.fallback_used:
        header += "\n" + _("The AI was unavailable ({error}); this is the template.").format(
            error=html.escape(draft.error or "?"))
    return with_header(header, draft.text)


def result_text(result: PostResult) -> str:
    topic = html.escape(result.topic or "")
    if result.status == PostStatus.POSTED:
        text = _("✅ The {kind} post on “{topic}” is in the channel.").format(kind=kind_name(result.kind), topic=topic)
    elif result.status == PostStatus.DRY_RUN:
        text = _("🧪 Dry run: the {kind} post on “{topic}” went to the admins, not to the channel.").format(
            kind=kind_name(result.kind), topic=topic)
    elif result.status == PostStatus.FAILED:
        return _("❌ The post was not published: {error}").format(error=html.escape(result.error or "?"))
    else:
        return _("This post has already been handled.")
    if result.fallback_used:
        text += "\n" + _("The AI was unavailable, so the template was used.")
    return text


STATUS_ICONS = {"posted": "✅", "dry_run": "🧪", "failed": "❌", "skipped": "⏭", "interrupted": "⚠️", "claimed": "⏳"}


def status_label(status: str) -> str:
    labels = {"posted": _("posted"), "dry_run": _("dry run"), "failed": _("failed"), "skipped": _("skipped"),
              "interrupted": _("interrupted"), "claimed": _("posting")}
    return f"{STATUS_ICONS.get(status, '•')} {labels.get(status, status)}"


async def schedule_text(content: ContentService, settings: Settings) -> str:
    tz = settings.tz
    lines = [_("🗓 <b>Channel posts</b>")]
    if settings.telegram_content_enabled:
        lines.append(_("Scheduled posts are on: {slots} ({tz}).").format(
            slots=", ".join(settings.telegram_content_schedules), tz=settings.timezone))
        if settings.telegram_content_dry_run:
            lines.append(_("Dry run: posts go to the admins, not to the channel."))
        lines.append("")
        lines.append(_("<b>Next slots</b>"))
        lines += [f"• {weekday_time(at, tz)}" for at in content.upcoming(5)]
    else:
        lines.append(_("Scheduled posts are off (TELEGRAM_CONTENT_ENABLED). /post_now and /preview still work."))
    posts = await content.recent(10)
    lines.append("")
    lines.append(_("<b>Last posts</b>"))
    if not posts:
        lines.append(_("None yet."))
    for post in posts:
        what = _("missed slot") if post.status == "skipped" else f"{kind_name(post.kind)} · {html.escape(post.topic)}"
        line = f"• {month_day(post.slot_at, tz, time=True)} · {what} · {status_label(post.status)}"
        if post.error and post.status in ("failed", "skipped", "interrupted"):
            line += f" ({html.escape(post.error[:120])})"
        lines.append(line)
    return "\n".join(lines)


async def post_now(message: Message, command: CommandObject, services: Services) -> None:
    kind = parse_kind(command)
    if kind is False:
        await message.answer(usage("post_now"))
        return
    status = await message.answer(_("✍️ Writing and publishing a post…"))
    result = await services.publisher.post_now(f"{message.chat.id}:{message.message_id}", kind or None)
    await message.bot.edit_message_text(result_text(result), chat_id=status.chat.id,
                                        message_id=status.message_id)


async def preview(message: Message, command: CommandObject, services: Services) -> None:
    content = services.content
    kind = parse_kind(command)
    if kind is False:
        await message.answer(usage("preview"))
        return
    status = await message.answer(_("✍️ Writing a draft…"))
    kind, topic = await content.choose(kind or None)
    draft = await content.generate(kind, topic)
    draft_id = await content.save_draft(message.from_user.id, draft)
    await message.bot.edit_message_text(draft_text(draft), chat_id=status.chat.id, message_id=status.message_id,
                                        reply_markup=draft_keyboard(draft_id), disable_web_page_preview=True)


async def draft_button(query: CallbackQuery, callback_data: DraftAction, services: Services) -> None:
    content = services.content
    new_status = {"pub": "published", "regen": "replaced", "drop": "discarded"}.get(callback_data.action)
    draft = await content.take_draft(callback_data.id, query.from_user.id, new_status) if new_status else None
    if draft is None:
        await refuse(query, _("This draft is no longer available. Make a new one with /preview."))
        return
    if callback_data.action == "drop":
        await acknowledge(query, _("Discarded."))
        await query.message.edit_reply_markup(reply_markup=None)
        return
    if callback_data.action == "regen":
        await acknowledge(query, _("✍️ Writing a new draft…"))
        fresh = await content.generate(draft.kind, draft.topic)
        fresh_id = await content.save_draft(query.from_user.id, fresh)
        await query.message.edit_text(draft_text(fresh), reply_markup=draft_keyboard(fresh_id),
                                      disable_web_page_preview=True)
        return
    await acknowledge(query, _("Publishing…"))
    await query.message.edit_reply_markup(reply_markup=None)
    result = await services.publisher.publish_draft(draft.id, draft.kind, draft.topic, draft.text, draft.generation_id)
    await query.message.answer(result_text(result))


async def schedule(event: Message | CallbackQuery, services: Services) -> None:
    """/schedule; the panel's Content button also names the commands that make posts and keeps the panel."""
    text = await schedule_text(services.content, services.settings)
    if isinstance(event, Message):
        await show(event, text)
        return
    await show(event, text + "\n\n" + _(
        "/preview [kind] — a draft to publish, regenerate or discard\n/post_now [kind] — publish at once"),
        panel_keyboard())


def build_router() -> Router:
    router = Router(name="admin_content")
    router.message.register(post_now, Command("post_now"))
    router.message.register(preview, Command("preview"))
    router.callback_query.register(draft_button, DraftAction.filter())
    router.message.register(schedule, Command("schedule"))
    router.callback_query.register(schedule, AdminMenu.filter(F.action == "content"))
    return router
