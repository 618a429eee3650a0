"""The loop shared by the plan notices and the provider reminders: claim each due item (a lease renewed by a
heartbeat while it is handled), handle it, record how it ended. An item whose handling fails stays due and is
tried again at a later run; an item another replica holds is skipped."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from services.leases import heartbeat

log = logging.getLogger(__name__)


class DueNotices(Protocol):
    async def due(self) -> list[Any]: ...
    async def claim(self, item: Any) -> datetime | None: ...
    async def renew(self, item: Any, held: datetime) -> datetime | None: ...
    async def finish(self, item: Any, status: str) -> None: ...


async def handle_due(notices: DueNotices, handle: Callable[[Any], Awaitable[str]], what: str, *,
                     lease: timedelta) -> int:
    """Handle every due item once; returns how many were acted on. `what` names them in logs."""
    done = 0
    for item in await notices.due():
        held = await notices.claim(item)
        if held is None:
            continue
        try:
            async with heartbeat(functools.partial(_renew, notices, item, [held]), lease,
                                 what=f"{what} {item.kind} of {item.user_id}"):
                status = await handle(item)
        except Exception:
            log.exception("%s %s for user %s failed; retried at a later run", what, item.kind, item.user_id)
            continue
        await notices.finish(item, status)
        done += 1
    return done


async def _renew(notices: DueNotices, item: Any, held: list[datetime]) -> bool:
    renewed = await notices.renew(item, held[0])
    if renewed is None:
        return False
    held[0] = renewed
    return True
