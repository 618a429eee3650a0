"""One screen, reached by a command or by a button: a command gets it as a new message, a tapped button's
message becomes it. The tap is answered here, so a handler serves both and never forgets the spinner.

Every answer to a tap (callback query) is made in this module: `show`, `refuse` and `reply_target` answer
it as part of their work; `acknowledge` (a toast, or just the spinner stopped) and `alert` (a box the user
closes) for a handler whose tap changes something other than the tapped message."""

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
    await acknowledge(event, note)


async def refuse(event: Message | CallbackQuery, text: str) -> None:
    """Why nothing happened: a reply to a command, an alert for a tap."""
    if isinstance(event, Message):
        await event.answer(text)
    else:
        await alert(event, text)


async def reply_target(event: Message | CallbackQuery) -> Message:
    """The message new messages go below: the command, or the tapped one (the tap is answered first, so
    its spinner stops before slow work)."""
    if isinstance(event, CallbackQuery):
        await acknowledge(event)
        return event.message
    return event


async def acknowledge(query: CallbackQuery, note: str | None = None) -> None:
    """Answer a tap: its spinner stops, and `note` (if any) shows briefly as a toast."""
    await query.answer(note)


async def alert(query: CallbackQuery, text: str) -> None:
    """Answer a tap with `text` in a box the user closes (news they should not miss)."""
    await query.answer(text, show_alert=True)
