"""Admin alerts without an order to point at: each kind at most once per window, bursts only."""

import asyncio
from decimal import Decimal

from processing.alerts import INGEST_BURST, AdminAlerts


class Notifier:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def alert_admins(self, render) -> None:
        self.sent.append(render())


class Headroom:
    def __init__(self, free) -> None:
        self.free = free

    async def available_or_none(self):
        return self.free


def alerts(clock):
    notifier = Notifier()
    return AdminAlerts(notifier, every=600, clock=lambda: clock[0]), notifier


async def test_a_storm_of_job_failures_is_one_message_per_job_and_window(i18n_context):
    clock = [0.0]
    a, notifier = alerts(clock)
    for _ in range(5):
        a.job_failed("poll_payments", RuntimeError("provider <down>"))
    a.job_failed("expire_orders", RuntimeError("db"))
    await asyncio.sleep(0)
    assert len(notifier.sent) == 2 and "&lt;down&gt;" in notifier.sent[0]
    clock[0] += 601
    a.job_failed("poll_payments", RuntimeError("again"))
    await asyncio.sleep(0)
    assert len(notifier.sent) == 3


async def test_ingest_rejections_alert_only_as_a_burst(i18n_context):
    clock = [0.0]
    a, notifier = alerts(clock)
    for _ in range(INGEST_BURST - 1):
        a.ingest_rejected(401, "invalid signature")
        clock[0] += 20  # spread over more than the window: never a burst
    await asyncio.sleep(0)
    assert notifier.sent == []
    for _ in range(INGEST_BURST):
        a.ingest_rejected(401, "invalid signature")
    await asyncio.sleep(0)
    assert len(notifier.sent) == 1 and f"{INGEST_BURST} ingest requests were rejected" in notifier.sent[0]


async def test_low_headroom_warns_once(i18n_context):
    clock = [0.0]
    a, notifier = alerts(clock)
    await a.check_headroom(Headroom(Decimal("20")), Decimal("16.67"))
    await a.check_headroom(Headroom(None), Decimal("16.67"))  # OpenRouter unreachable: no false alarm
    assert notifier.sent == []
    await a.check_headroom(Headroom(Decimal("3.5")), Decimal("16.67"))
    await a.check_headroom(Headroom(Decimal("3.4")), Decimal("16.67"))
    assert len(notifier.sent) == 1 and "$3.50 free" in notifier.sent[0]
