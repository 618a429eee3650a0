"""Admin alerts for trouble without a single order to point at: failing scheduled jobs, low
OpenRouter credit, bursts of rejected ingest requests. Each kind is sent at most once per
`every` seconds, so a storm is one message, not hundreds. (Per-order alerts — part-paid, late,
over-paid, failed deliveries — go out as they happen, from the payment and fulfilment code.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal

from aiogram.utils.i18n import gettext as _

from bot.tasks import spawn
from presentation.formatting import money_text
from processing.notify import Notifier, Render
from services.ai_tokens import Headroom

log = logging.getLogger(__name__)

INGEST_BURST = 20  # rejected ingest requests ...
INGEST_WINDOW = 300.0  # ... within this many seconds make an alert


class AdminAlerts:
    def __init__(self, notifier: Notifier, *, every: float = 1800.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier, self.every, self.clock = notifier, every, clock
        self._last: dict[str, float] = {}
        self._rejected: deque[float] = deque()

    async def alert(self, kind: str, render: Render) -> bool:
        """Send unless this kind was sent within `every`; returns whether it was sent."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.every:
            return False
        self._last[kind] = now
        log.warning("admin alert: %s", kind)
        await self.notifier.alert_admins(render)
        return True

    def alert_soon(self, kind: str, render: Render) -> None:
        """`alert` from code that cannot await (scheduler listeners, sync hooks)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop: nothing to send with
            return
        spawn(self.alert(kind, render), name=f"alert:{kind}")

    def task_crashed(self, name: str, error: BaseException) -> None:
        """A background task or worker died of an unexpected error (bot.tasks; a worker is restarted)."""
        text = f"{type(error).__name__}: {error}"[:300]
        self.alert_soon(f"task:{name}", lambda: _(
            "🚨 Background task <code>{task}</code> crashed: {error}. "
            "The worker has been restarted; see the log.").format(
            task=_escape(name), error=_escape(text)))

    def job_failed(self, job_id: str, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"[:300]
        self.alert_soon(f"job:{job_id}", lambda: _("🚨 Scheduled job <code>{job}</code> failed: {error}").format(
            job=job_id, error=_escape(text)))

    def ingest_rejected(self, status: int, reason: str) -> None:
        now = self.clock()
        self._rejected.append(now)
        while self._rejected and now - self._rejected[0] > INGEST_WINDOW:
            self._rejected.popleft()
        if len(self._rejected) >= INGEST_BURST:
            count = len(self._rejected)
            self.alert_soon("ingest", lambda: _(
                "⚠️ {count} ingest requests were rejected in the last {minutes} minutes (latest: {status} "
                "{reason}). A sender may be misconfigured — or someone is probing the API.").format(
                count=count, minutes=int(INGEST_WINDOW // 60), status=status, reason=_escape(reason)))

    async def check_headroom(self, headroom: Headroom, minimum: Decimal) -> None:
        """Scheduled: warn before AI tokens stop selling (free OpenRouter credit below `minimum`)."""
        available = await headroom.available_or_none()
        if available is not None and available < minimum:
            await self.alert("headroom", lambda: _(
                "⚠️ OpenRouter credit is running low: {left} free (below {minimum}). Top up the account, or AI "
                "token sales will stop.").format(left=money_text(available), minimum=money_text(minimum)))

    async def low_headroom_at_sale(self) -> None:
        await self.alert("headroom", lambda: _("⚠️ OpenRouter credit is too low to sell AI tokens. "
                                               "Top up the account."))


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=False)
