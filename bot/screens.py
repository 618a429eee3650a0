"""One screen, reached by a command or by a button: a command gets it as a new message, a tapped button's
message becomes it. The tap is answered here, so a handler serves both and never forgets the spinner."""

from __future__ import annotations

from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.edits import edit_or_keep


async def show(event: Message | CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None, *,
               note: str | None = None) -> None:
    """Send `text` for a command; for a tap, edit the tapped message to it (already showing it is fine) and
    answer the tap (with `note` as a toast)."""
    if isinstance(event, Message):
        await event.answer(text, reply_markup=markup)
        return
    await edit_or_keep(event.message, text, markup)
    await event.answer(note)


async def refuse(event: Message | CallbackQuery, text: str) -> None:
    """Why nothing happened: a reply to a command, an alert for a tap."""
    if isinstance(event, Message):
        await event.answer(text)
    else:
        await event.answer(text, show_alert=True)


async def reply_target(event: Message | CallbackQuery) -> Message:
    """The message new messages go below: the command, or the tapped one (the tap is answered first, so
    its spinner stops before slow work)."""
    if isinstance(event, CallbackQuery):
        await event.answer()
        return event.message
    return event
