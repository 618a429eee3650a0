"""Taps a buyer makes in the sandbox's Telegram, shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any


def _newest(sb: Any, user_id: int, fragment: str):
    def check():
        found = [m for m in sb.telegram.chat_messages(user_id, bot_only=True) if fragment in m.get("text", "")]
        return found[-1] if found else None
    return check


async def pay_first_order_with_stars(sb: Any, user_id: int) -> None:
    """From "Choose how to pay": ⭐ Telegram Stars, the terms (asked on a buyer's first order) accepted, and the
    invoice paid on the stand-in."""
    await sb.telegram.wait_for(_newest(sb, user_id, "Choose how to pay"))
    sb.telegram.press_button(user_id, "Telegram Stars")
    await sb.telegram.wait_for(_newest(sb, user_id, "accept our terms"))
    sb.telegram.press_button(user_id, "I accept")
    await sb.telegram.wait_for(lambda: any("invoice" in m for m in sb.telegram.chat_messages(user_id, bot_only=True)))
    paid = await sb.telegram.pay_invoice(user_id)
    assert paid["ok"], paid
