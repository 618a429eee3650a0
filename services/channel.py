"""The paid members' channel (PRIVATE_CHANNEL_ID): single-use invite links and removal.

Every call goes through the app's bot (the outgoing gate). Failures are logged and reported as
None/False so a purchase is never lost because the channel is misconfigured: the buyer can ask for
a new link from /plans.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import TelegramAPIError

from db.base import utcnow

log = logging.getLogger(__name__)

MEMBER_STATUSES = frozenset({ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.CREATOR,
                             ChatMemberStatus.RESTRICTED})
#: An invite link is valid for this long (or until the paid time ends, if sooner).
INVITE_TTL = timedelta(days=7)


class PrivateChannel:
    def __init__(self, bot: Bot, chat_id: int | str | None, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.bot, self.chat_id, self.clock = bot, chat_id, clock

    @property
    def enabled(self) -> bool:
        return self.chat_id is not None

    async def is_member(self, user_id: int) -> bool:
        """Whether the user is in the channel now (False when it can't be told)."""
        if not self.enabled:
            return False
        try:
            member = await self.bot.get_chat_member(chat_id=self.chat_id, user_id=user_id)
        except TelegramAPIError as exc:
            log.info("could not look up user %s in the private channel: %s", user_id, exc.message)
            return False
        return getattr(member, "status", None) in MEMBER_STATUSES

    async def invite(self, user_id: int, until: datetime | None = None) -> str | None:
        """A link that admits one person, expiring in INVITE_TTL or at `until`, whichever is first."""
        if not self.enabled:
            return None
        expires = self.clock() + INVITE_TTL
        if until is not None:
            expires = min(expires, until)
        try:  # a removal whose unban failed would leave a lasting ban: lift it first
            await self.bot.unban_chat_member(chat_id=self.chat_id, user_id=user_id, only_if_banned=True)
        except TelegramAPIError as exc:
            log.info("could not check the ban of user %s: %s", user_id, exc.message)
        try:
            link = await self.bot.create_chat_invite_link(
                chat_id=self.chat_id, name=f"user {user_id}"[:32], expire_date=expires, member_limit=1)
        except TelegramAPIError as exc:
            log.warning("could not create an invite link for user %s: %s", user_id, exc.message)
            return None
        return link.invite_link

    async def remove(self, user_id: int) -> bool:
        """Remove the user without a lasting ban (ban, then lift it), so they can rejoin after renewing."""
        if not self.enabled:
            return False
        try:
            await self.bot.ban_chat_member(chat_id=self.chat_id, user_id=user_id)
            await self.bot.unban_chat_member(chat_id=self.chat_id, user_id=user_id, only_if_banned=True)
        except TelegramAPIError as exc:
            log.warning("could not remove user %s from the private channel: %s", user_id, exc.message)
            return False
        return True
